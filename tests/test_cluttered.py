"""The cluttered digits: sources split before generating, deterministic, fast, cached, loadable."""
import time

import numpy as np
import pytest
import torch

from inception_edu.train import make_loaders
from inception_edu.train.cluttered import (ClutterConfig, cluttered_arrays, cluttered_loaders,
                                           load_cluttered, plot_cluttered_samples)

SMALL = dict(num_train=300, num_val=100, num_test=100)


def _sources(seed, **counts):
    return {p: cluttered_arrays(p, seed=seed, **counts)[2] for p in ("train", "val", "test")}


@pytest.mark.parametrize("seed", [0, 3])
def test_no_source_digit_in_two_splits(seed):
    src = _sources(seed, **SMALL)
    train, val, test = (set(s.tolist()) for s in src.values())
    assert not train & val and not train & test and not val & test
    # the splits' source pools are disjoint too (fragments come from the same pool)
    from sklearn.datasets import load_digits

    from inception_edu.train.data import stratified_split
    pools = stratified_split(load_digits().target, seed=seed)
    for part, pool in zip(("train", "val", "test"), pools):
        assert set(src[part].tolist()) <= set(pool.tolist())
    assert sum(len(p) for p in pools) == 1797


def test_labels_are_the_source_digits_labels():
    from sklearn.datasets import load_digits

    x, y, src = cluttered_arrays("val", seed=0, **SMALL)
    np.testing.assert_array_equal(y, load_digits().target[src])
    assert x.shape == (100, 32, 32) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1


def test_deterministic_per_seed_and_different_across_seeds():
    cfg = ClutterConfig(fragments=3)            # another config: not served from the cache
    a = cluttered_arrays("train", seed=1, config=cfg, **SMALL)[0]
    from inception_edu.train import cluttered
    cluttered._generate.cache_clear()
    b = cluttered_arrays("train", seed=1, config=cfg, **SMALL)[0]
    c = cluttered_arrays("train", seed=2, config=cfg, **SMALL)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_digit_is_drawn_whole_at_its_scale():
    """Without clutter and noise, each canvas holds exactly the bilinearly upsampled source."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    cfg = ClutterConfig(fragments=0, noise=0.0, scales=(16, 16))
    x, _, src = cluttered_arrays("test", seed=0, config=cfg, **SMALL)
    digit = torch.tensor(load_digits().images[src[:5]] / 16.0, dtype=torch.float32)[:, None]
    ref = F.interpolate(digit, size=(16, 16), mode="bilinear", align_corners=False)[:, 0].numpy()
    for canvas, r in zip(x[:5], ref):
        hits = [(a, b) for a in range(17) for b in range(17)
                if np.allclose(canvas[a:a + 16, b:b + 16], r)]
        assert len(hits) == 1, hits
        a, b = hits[0]
        outside = canvas.copy()
        outside[a:a + 16, b:b + 16] = 0
        assert not outside.any()                       # nothing else on the canvas


def test_generation_is_fast_and_cached():
    from inception_edu.train import cluttered
    cluttered._generate.cache_clear()
    start = time.perf_counter()
    cluttered_arrays("train", seed=5)                   # the default sizes: 3,000 / 600 / 1,000
    first = time.perf_counter() - start
    start = time.perf_counter()
    cluttered_arrays("test", seed=5)
    again = time.perf_counter() - start
    assert first < 5.0, first
    assert again < 0.05, again


def test_loaders_and_make_loaders_agree():
    a = cluttered_loaders(batch_size=50, seed=0, **SMALL)
    b = make_loaders("cluttered", 50, seed=0)           # the CLI's path (default sizes)
    assert a.num_classes == b.num_classes == 10
    xa, ya = next(iter(a.test))
    assert xa.shape == (50, 3, 32, 32) and ya.dtype == torch.long
    train = torch.cat([x for x, _ in a.train])
    assert abs(float(train.mean())) < 1e-3 and abs(float(train.std()) - 1) < 1e-2  # normalized
    assert len(b.train.dataset) == 3000 and len(b.test.dataset) == 1000
    small = load_cluttered("val", size=16, seed=0, **SMALL)
    assert small[0][0].shape == (3, 16, 16)


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="split must be one of"):
        cluttered_arrays("training")
    with pytest.raises(ValueError, match="positive integers"):
        cluttered_loaders(num_train=0)
    with pytest.raises(ValueError, match="scales"):
        cluttered_arrays("train", config=ClutterConfig(scales=(4, 40)))
    with pytest.raises(ValueError, match="fragment_size"):
        cluttered_arrays("train", config=ClutterConfig(fragment_size=12))
    with pytest.raises(TypeError, match="seed"):
        cluttered_arrays("train", seed=0.5)


def test_plot_cluttered_samples():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plot_cluttered_samples(2, 3, split="test")
    shown = [a for a in fig.axes if a.images]
    x, y, _ = cluttered_arrays("test")
    assert len(shown) == 6
    np.testing.assert_array_equal(shown[4].images[0].get_array(), x[4])
    assert shown[4].get_title() == str(y[4])
    plt.close(fig)
