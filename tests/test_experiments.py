"""run_seeds and Results: routing of options, the table, the comparison rule, calibration."""
import math

import numpy as np
import pytest
import torch

from inception_edu.train.experiments import (Results, Run, calibration, fit_temperature,
                                             nin_with_head, plain_cnn, reduction_net, run_seeds)

TINY = dict(data="cluttered", data_kw=dict(num_train=128, num_val=64, num_test=64),
            epochs=1, batch_size=64)


def _results(values: dict, metric="test_top1", num_test=0) -> Results:
    """Results with given reported values (accuracies in %, stored as fractions as fit does)."""
    scale = 100 if metric.endswith("top1") else 1
    runs = [Run(v, s, [], {metric: x / scale}, 0.0) for v, xs in values.items()
            for s, x in enumerate(xs)]
    return Results(runs, num_test=num_test)


@pytest.fixture(scope="module")
def two_variants():
    seen = []

    def build(num_classes, width_mult=1.0):
        seen.append(width_mult)
        return plain_cnn(num_classes, width_mult=width_mult)

    res = run_seeds(build, {"narrow": dict(width_mult=0.25), "narrow, smoothed":
                            dict(width_mult=0.25, label_smoothing=0.2)}, seeds=(0, 1), **TINY)
    return res, seen


def test_options_go_to_the_builder_or_the_recipe(two_variants):
    res, seen = two_variants
    assert seen == [0.25] * 4                      # label_smoothing never reached the builder
    assert res.config["variants"]["narrow, smoothed"]["label_smoothing"] == 0.2
    assert [(r.variant, r.seed) for r in res.runs] == [("narrow", 0), ("narrow", 1),
                                                       ("narrow, smoothed", 0), ("narrow, smoothed", 1)]
    # smoothing changes the training loss of the same seed (same init, same batches)
    a, b = res.runs[0].history[0]["train_loss"], res.runs[2].history[0]["train_loss"]
    assert a != b


def test_table_rows_and_percentages(two_variants):
    res, _ = two_variants
    t = res.table()
    assert list(t.index.get_level_values("seed")) == ["0", "1", "mean", "std"] * 2
    per_seed = [100 * r.metrics["test_top1"] for r in res.runs[:2]]
    assert t.loc[("narrow", "0"), "test_top1"] == pytest.approx(per_seed[0], abs=0.005)
    assert t.loc[("narrow", "mean"), "test_top1"] == pytest.approx(np.mean(per_seed), abs=0.005)
    assert t.loc[("narrow", "std"), "test_top1"] == pytest.approx(np.std(per_seed, ddof=1), abs=0.005)
    assert 0 <= t["test_top1"].min() and t["test_top1"].max() <= 100
    assert res.num_test == 64


def test_a_seed_repeats_exactly_and_seeds_differ(two_variants):
    res, _ = two_variants
    again = run_seeds(lambda num_classes, width_mult: plain_cnn(num_classes, width_mult=width_mult),
                      {"narrow": dict(width_mult=0.25)}, seeds=(1,), **TINY)
    assert again.runs[0].metrics == res.runs[1].metrics
    assert res.runs[0].history[0]["train_loss"] != res.runs[1].history[0]["train_loss"]


def test_test_accuracy_is_of_the_trained_weights_not_their_average(two_variants):
    res, _ = two_variants
    ema = run_seeds(lambda num_classes, width_mult: plain_cnn(num_classes, width_mult=width_mult),
                    {"narrow": dict(width_mult=0.25, ema_decay=0.9999)}, seeds=(0,), **TINY)
    m = ema.runs[0].metrics
    assert m["test_top1"] == res.runs[0].metrics["test_top1"]     # averaging changes no step
    assert "test_top1_ema" in m


def test_curves_have_integer_epoch_ticks(two_variants):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res, _ = two_variants
    fig = res.curves(("train_loss", "val_top1"))
    ax = fig.axes[1]
    assert len(ax.lines) == 2 * 2 + 2             # every seed thin, one mean per variant
    assert all(float(t).is_integer() for t in ax.get_xticks())
    assert ax.lines[0].get_ydata()[0] == pytest.approx(100 * res.runs[0].history[0]["val_top1"])
    plt.close(fig)


def test_the_rule_is_welchs_standard_error():
    from scipy import stats

    a, b = [71.0, 74.5, 72.0], [66.0, 70.5, 64.0]
    res = _results({"a": a, "b": b})
    c = res.compare("a", "b")
    t = stats.ttest_ind(a, b, equal_var=False).statistic
    assert c.diff / c.se == pytest.approx(t)
    assert c.better == (t > 2) and c.better
    assert res.assert_better("a", "b") == c
    with pytest.raises(AssertionError, match="not better"):
        res.assert_better("b", "a")
    with pytest.raises(AssertionError, match="differ beyond"):
        res.assert_within_noise("a", "b")
    assert res.compare("a", "b", rule="range").better        # worst a (71) > best b (70.5)
    overlap = _results({"a": [90.0] * 4, "b": [70.0, 70.0, 70.0, 90.5]})
    assert overlap.compare("a", "b").better and not overlap.compare("a", "b", rule="range").better


def test_within_noise_and_the_floor():
    res = _results({"a": [70.0, 75.0, 72.0], "b": [71.0, 74.0, 70.0]})
    assert res.assert_within_noise("a", "b").within_noise
    same = _results({"a": [70.0] * 3, "b": [69.9] * 3}, num_test=1000)   # 0.1 point = 1 image
    c = same.compare("a", "b")
    assert c.se == pytest.approx(0.1 * math.sqrt(2 / 3)) and not c.better


def test_lower_is_better_for_losses_and_ece():
    res = _results({"a": [0.5, 0.52, 0.49], "b": [0.9, 0.95, 0.93]}, metric="test_ece")
    assert res.compare("a", "b", "test_ece").better
    assert not res.compare("a", "b", "test_ece", lower_is_better=False).better


def test_assert_above():
    res = _results({"a": [30.0, 32.0, 34.0]})
    assert res.assert_above("a", 10) == pytest.approx(32 - 2 * 2 / math.sqrt(3))
    with pytest.raises(AssertionError, match="not above"):
        res.assert_above("a", 31)


class _Blows(torch.nn.Module):
    """A linear classifier whose logits turn NaN from its second batch on."""

    def __init__(self, num_classes):
        super().__init__()
        self.fc, self.calls = torch.nn.Linear(3 * 32 * 32, num_classes), 0

    def forward(self, x):
        self.calls += 1
        z = self.fc(x.flatten(1))
        return z * float("nan") if self.calls > 1 and self.training else z


def test_a_diverged_run_is_kept():
    res = run_seeds(_Blows, {"blows up": {}}, seeds=(0,), **{**TINY, "batch_size": 32})
    assert res.runs[0].diverged and bool(res.table()["diverged"].iloc[0])
    assert res.runs[0].history == []                # no epoch finished
    assert not math.isnan(res.runs[0].metrics["test_top1"])


def test_temperature_scaling_recovers_a_known_temperature():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(20000, 10, generator=g)
    targets = torch.multinomial((logits / 2.5).softmax(1), 1, generator=g)[:, 0]
    assert fit_temperature(logits, targets) == pytest.approx(2.5, rel=0.05)


def test_calibration_measure_and_round_trip():
    res = run_seeds(lambda num_classes: plain_cnn(num_classes, width_mult=0.25), {"p": {}},
                    seeds=(0,), measure=calibration, **TINY)
    m = res.runs[0].metrics
    assert {"test_ece", "test_ece_ts", "temperature"} <= set(m) and m["temperature"] > 0
    back = Results.from_dict(res.to_dict())
    assert back.table().equals(res.table())


def test_builders_shapes_and_costs():
    import inception_edu as ie

    x = torch.zeros(2, 3, 32, 32)
    assert plain_cnn()(x).shape == (2, 10)
    # "about googlenet_cifar's multiply-adds": within 5 %
    g = ie.count_macs(ie.create_model("googlenet_cifar"), 32)
    assert abs(ie.count_macs(plain_cnn(), 32) / g - 1) < 0.05
    assert nin_with_head(head="fc")(x).shape == nin_with_head(head="gap")(x).shape == (2, 10)
    costs = {r: ie.count_macs(reduction_net(reduction=r), 32)
             for r in ("pool_expand", "expand_pool", "parallel")}
    assert costs["parallel"] < costs["pool_expand"] < costs["expand_pool"]
    for r in costs:
        assert reduction_net(reduction=r)(x).shape == (2, 10)


def test_bad_input():
    with pytest.raises(ValueError, match="variants is empty"):
        run_seeds("plain", {})
    with pytest.raises(TypeError, match="build_model"):
        run_seeds(3, {"a": {}})
    with pytest.raises(ValueError, match="seeds"):
        run_seeds("googlenet_cifar", {"a": {}}, seeds=())
    res = _results({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="no variant"):
        res.values("b")
    with pytest.raises(ValueError, match="rule"):
        res.compare("a", "a", rule="t")
    with pytest.raises(ValueError, match="head"):
        nin_with_head(head="dense")
    with pytest.raises(ValueError, match="reduction"):
        reduction_net(reduction="stride")
