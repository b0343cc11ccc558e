"""``cluttered``: multi-scale digits in clutter, generated offline from a seed.

A harder offline task than the plain digits, in the manner of the *cluttered MNIST* of
Jaderberg, Simonyan, Zisserman & Kavukcuoglu, *Spatial Transformer Networks* (NeurIPS 2015,
arXiv 1506.02025, Sec. 4.1 and appendix A.1), which places each MNIST digit at a random
position on a larger canvas and adds "random 6x6 crops of other digits" as clutter. Here the
digits are scikit-learn's 1,797 8x8 digits (they ship with scikit-learn: nothing downloads),
and each one is also drawn at a random *scale*, because recognising the same pattern at
several sizes is what Inception's parallel branches of several kernel sizes are for.

Construction (all from ``seed``, with numpy's ``default_rng``)
-------------------------------------------------------------
1. **Split the sources first.** The 1,797 source digits are split 70 / 15 / 15 %
   (stratified by class, :func:`~inception_edu.train.data.stratified_split` with ``seed``)
   into train / val / test sources *before* any image is made, so no source digit -- and no
   fragment of one -- appears in two splits. ``sources(split)`` returns each sample's source.
2. **Scale.** Each 8x8 digit (grey levels 0-16 scaled to [0, 1]) is upsampled bilinearly to
   a side drawn uniformly from ``scales`` (10 to 20 pixels by default: from 1.25x to 2.5x,
   the digit filling a tenth to two fifths of the 32x32 canvas).
3. **Place.** It is pasted at a uniformly random position where it fits whole on a black
   ``canvas`` x ``canvas`` image (32x32).
4. **Clutter.** ``fragments`` square crops (``fragment_size`` pixels, 6 by default as in
   the paper) are cut at random places from *other* source digits of the same split, each
   drawn at its own random scale, and laid at random positions anywhere on the canvas (over the
   digit too; pixels combine by maximum, as overlapping ink does).
5. **Noise.** Gaussian pixel noise of standard deviation ``noise`` is added and the image
   clipped to [0, 1].
6. **Normalize.** The loaders subtract the training split's mean and divide by its standard
   deviation, and repeat the grey channel three times for the three-channel networks.

Train, val and test get ``num_train``, ``num_val``, ``num_test`` samples; each sample draws
its source digit uniformly from its split's sources, so a training source appears several
times (at other scales, places and clutter). Generation takes well under a second and is
cached in memory per (seed, sizes, config), so every seed of an experiment reuses it.

The samples are fixed: the training loader does not augment (the random placement is the
augmentation, drawn once). A chapter shows a grid of samples with
:func:`plot_cluttered_samples`.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from .data import Loaders, make_loader, stratified_split

PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class ClutterConfig:
    """How hard the task is; the defaults are the ones the baselines were measured with."""

    #: Side of the square canvas in pixels (the networks' 32x32 input).
    canvas: int = 32
    #: Smallest and largest side of the upsampled digit (inclusive), in pixels.
    scales: tuple[int, int] = (10, 20)
    #: Number of clutter fragments per image (Jaderberg et al. use 4 on 40x40, 8 on 60x60).
    fragments: int = 6
    #: Side of each square fragment in pixels (Jaderberg et al.'s 6x6).
    fragment_size: int = 6
    #: Standard deviation of the Gaussian pixel noise (pixels are in [0, 1]).
    noise: float = 0.15

    def check(self) -> None:
        lo, hi = self.scales
        if not (8 <= lo <= hi <= self.canvas):
            raise ValueError(f"scales must satisfy 8 <= min <= max <= canvas ({self.canvas}); "
                             f"got {self.scales}")
        if self.fragments < 0 or not 1 <= self.fragment_size <= lo:
            raise ValueError(f"fragments must be >= 0 and fragment_size from 1 to the smallest "
                             f"scale ({lo}); got {self.fragments}, {self.fragment_size}")
        if not 0 <= self.noise < 1:
            raise ValueError(f"noise is a standard deviation in [0, 1); got {self.noise}")


def _source_digits():
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)   # N x 8 x 8


def _upsampled(images: np.ndarray, sides) -> dict[int, np.ndarray]:
    """Every source digit at every side: ``{side: N x side x side}`` (bilinear)."""
    x = torch.from_numpy(images).unsqueeze(1)                                       # N x 1 x 8 x 8
    return {s: F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)[:, 0].numpy()
            for s in sides}


def _render(rng, pool: np.ndarray, by_side: dict, n: int, cfg: ClutterConfig):
    """``n`` canvases from the sources ``pool`` (indices into the 1,797): images, sources."""
    c, f, k = cfg.canvas, cfg.fragment_size, cfg.fragments
    lo, hi = cfg.scales
    out = np.zeros((n, c, c), dtype=np.float32)
    # Every random number drawn up front (fast); the loop below only copies pixels.
    pick = rng.integers(0, len(pool), size=n)
    src, sides = pool[pick], rng.integers(lo, hi + 1, size=n)
    place = rng.random((n, 2))                                     # digit position, as a fraction
    # Fragment sources: another digit of the split (the next one in the pool if we drew itself).
    other = rng.integers(0, len(pool), size=(n, k))
    other = np.where(other == pick[:, None], (other + 1) % len(pool), other)
    other = pool[other]
    frag_side = rng.integers(lo, hi + 1, size=(n, k))
    cut = (rng.random((n, k, 2)) * (frag_side[..., None] - f + 1)).astype(int)   # crop corner
    put = rng.integers(0, c - f + 1, size=(n, k, 2))                # where the fragment goes
    for i in range(n):
        canvas = out[i]
        for j in range(k):
            (oy, ox), (py, px) = cut[i, j], put[i, j]
            piece = by_side[int(frag_side[i, j])][other[i, j], oy:oy + f, ox:ox + f]
            np.maximum(canvas[py:py + f, px:px + f], piece, out=canvas[py:py + f, px:px + f])
        s = int(sides[i])
        py, px = (place[i] * (c - s + 1)).astype(int)
        np.maximum(canvas[py:py + s, px:px + s], by_side[s][src[i]], out=canvas[py:py + s, px:px + s])
    if cfg.noise:
        out += rng.normal(0.0, cfg.noise, size=out.shape).astype(np.float32)
        np.clip(out, 0.0, 1.0, out=out)
    return out, src


@functools.lru_cache(maxsize=8)
def _generate(seed: int, counts: tuple[int, int, int], cfg: ClutterConfig):
    """``{part: (images N x canvas x canvas in [0, 1], labels, source indices)}``, cached."""
    images, labels = _source_digits()
    splits = stratified_split(labels, seed=seed)                     # sources split first
    by_side = _upsampled(images, range(cfg.scales[0], cfg.scales[1] + 1))
    rng = np.random.default_rng(seed)
    data = {}
    for part, pool, n in zip(PARTS, splits, counts):
        x, src = _render(rng, pool, by_side, n, cfg)
        for a in (x, src):
            a.flags.writeable = False                                 # shared by every caller
        data[part] = (x, labels[src], src)
    return data


def _check(split: str | None, counts, seed) -> None:
    if split is not None and split not in PARTS:
        raise ValueError(f"split must be one of {PARTS}; got {split!r}")
    if any(not isinstance(n, (int, np.integer)) or n < 1 for n in counts):
        raise ValueError(f"num_train, num_val and num_test must be positive integers; got {counts}")
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer; got {seed!r}")


def cluttered_arrays(split: str = "train", *, seed: int = 0, num_train: int = 3000,
                     num_val: int = 600, num_test: int = 1000,
                     config: ClutterConfig | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One split as numpy arrays: images (N x 32 x 32, in [0, 1], read-only), labels, and the
    index of each sample's source digit in scikit-learn's 1,797 (``load_digits()``)."""
    counts = (num_train, num_val, num_test)
    _check(split, counts, seed)
    cfg = config or ClutterConfig()
    cfg.check()
    return _generate(int(seed), tuple(int(n) for n in counts), cfg)[split]


def _tensors(seed, counts, cfg, size: int, channels: int):
    data = _generate(int(seed), counts, cfg)
    train_x = data["train"][0]
    mean, std = float(train_x.mean()), float(train_x.std())          # training split only
    out = {}
    for part, (x, y, _) in data.items():
        t = (torch.from_numpy(x.copy()).unsqueeze(1) - mean) / std  # N x 1 x C x C
        if size != cfg.canvas:
            t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=size < cfg.canvas)
        out[part] = TensorDataset(t.expand(-1, channels, -1, -1), torch.from_numpy(y.copy()))
    return out


def _checked_tensors(split, counts, seed: int, config, size: int, channels: int) -> dict:
    """The three splits' tensors, after checking the arguments both public loaders take."""
    _check(split, counts, seed)
    cfg = config or ClutterConfig()
    cfg.check()
    if size < 8:
        raise ValueError(f"size must be at least 8; got {size}")
    return _tensors(seed, counts, cfg, size, channels)


def load_cluttered(split: str = "train", size: int = 32, *, channels: int = 3, seed: int = 0,
                   num_train: int = 3000, num_val: int = 600, num_test: int = 1000,
                   config: ClutterConfig | None = None) -> TensorDataset:
    """One split as a ``TensorDataset`` of (channels x size x size, label), normalized with
    the training split's mean and standard deviation (resized from the canvas if ``size``
    differs)."""
    return _checked_tensors(split, (num_train, num_val, num_test), seed, config, size, channels)[split]


def cluttered_loaders(batch_size: int = 64, size: int = 32, *, seed: int = 0, num_train: int = 3000,
                      num_val: int = 600, num_test: int = 1000, config: ClutterConfig | None = None,
                      num_workers: int = 0, device=None, loader_seed: int | None = None) -> Loaders:
    """Train / val / test loaders of the cluttered digits (train shuffled, no augmentation).

    ``seed`` fixes the data (the source split and every image); ``loader_seed`` (default:
    ``seed``) the shuffle order -- the trainer reseeds it with its own seed anyway.
    """
    parts = _checked_tensors(None, (num_train, num_val, num_test), seed, config, size, 3)
    kw = dict(seed=seed if loader_seed is None else loader_seed, num_workers=num_workers,
              device=device)
    return Loaders(make_loader(parts["train"], batch_size, train=True, **kw),
                   make_loader(parts["val"], batch_size, train=False, **kw),
                   make_loader(parts["test"], batch_size, train=False, **kw),
                   10, tuple(str(d) for d in range(10)))


def plot_cluttered_samples(rows: int = 4, cols: int = 8, *, split: str = "train", seed: int = 0,
                           config: ClutterConfig | None = None, ax=None):
    """A grid of the first ``rows * cols`` samples of ``split``, each titled with its label.

    Returns the matplotlib figure (chapter 1 shows it beside the plain digits).
    """
    import matplotlib.pyplot as plt

    if rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be at least 1; got {rows}, {cols}")
    counts = {"num_train": 3000, "num_val": 600, "num_test": 1000}   # the loaders' defaults
    key = f"num_{split}" if split in PARTS else "num_train"
    counts[key] = max(counts[key], rows * cols)
    x, y, _ = cluttered_arrays(split, seed=seed, config=config, **counts)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.35 * rows), squeeze=False)
    for i, a in enumerate(axes.flat):
        a.imshow(x[i], cmap="gray", vmin=0, vmax=1)
        a.set_title(str(int(y[i])), fontsize=9)
        a.set_axis_off()
    cfg = config or ClutterConfig()
    fig.suptitle(f"cluttered digits ({split}, seed {seed}): sides {cfg.scales[0]}-{cfg.scales[1]} px "
                 f"on {cfg.canvas}x{cfg.canvas}, {cfg.fragments} fragments, noise {cfg.noise:g}",
                 fontsize=9)
    fig.tight_layout()
    return fig


def config_dict(config: ClutterConfig | None = None) -> dict:
    """The construction's settings as a plain dict (for result files)."""
    d = asdict(config or ClutterConfig())
    d["scales"] = list(d["scales"])
    return d
