"""The figures of the book's part II (label smoothing and calibration).

The explorer is driven the way a reader drives it (``.set(...)``); its numbers are checked
against PyTorch's own label-smoothed cross-entropy and against arithmetic done here by hand.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inception_edu.figures import label_smoothing as ls


def _torch_loss(gap, k, eps):
    # PyTorch's label-smoothed cross-entropy of logits [g, 0, ..., 0] with target class 0.
    logits = torch.zeros(1, k, dtype=torch.float64)
    logits[0, 0] = gap
    return float(F.cross_entropy(logits, torch.tensor([0]), label_smoothing=eps))


@pytest.mark.parametrize("k,eps", [(10, 0.1), (1000, 0.1), (2, 0.3), (100, 0.0)])
def test_target_is_a_distribution_with_the_papers_values(k, eps):
    q = ls.smoothed_target(k, eps, label=1)
    assert q.sum() == pytest.approx(1.0)
    assert q[1] == pytest.approx(1 - eps + eps / k)
    assert np.allclose(np.delete(q, 1), eps / k)


@pytest.mark.parametrize("k,eps", [(10, 0.1), (1000, 0.1), (2, 0.4), (10, 0.0)])
def test_gap_loss_is_torchs_label_smoothed_cross_entropy(k, eps):
    for g in (-1.0, 0.0, 2.5, 9.0):
        assert ls.gap_loss(g, k, eps) == pytest.approx(_torch_loss(g, k, eps), rel=1e-12)


@pytest.mark.parametrize("k,eps", [(10, 0.1), (1000, 0.1), (5, 0.25)])
def test_optimal_gap_is_where_gradient_descent_on_full_logits_ends(k, eps):
    # Minimize torch's smoothed loss over all K logits (no assumption that the others are
    # equal) and read off the gap between the correct logit and each other one.
    z = torch.zeros(1, k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([z], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z, torch.tensor([0]), label_smoothing=eps)
        loss.backward()
        return loss

    opt.step(closure)
    gaps = (z[0, 0] - z[0, 1:]).detach()
    assert torch.allclose(gaps, torch.full_like(gaps, ls.optimal_logit_gap(k, eps)), atol=1e-5)
    # by hand for the paper's setting: K = 1000, eps = 0.1 -> log(0.9001 / 0.0001)
    assert ls.optimal_logit_gap(1000, 0.1) == pytest.approx(math.log(9001))


def test_one_hot_target_has_no_finite_optimum():
    assert ls.optimal_logit_gap(10, 0.0) == math.inf
    losses = ls.gap_loss(np.array([1.0, 5.0, 10.0, 20.0]), 10, 0.0)
    assert np.all(np.diff(losses) < 0)  # always better to push the gap further


def test_explorer_follows_its_controls():
    ex = ls.explore_label_smoothing()
    assert ex.data["optimal_gap"] == pytest.approx(math.log(0.91 / 0.01))  # K = 10, eps = 0.1
    ex.set(eps=0.2, num_classes=100)
    d = ex.data
    assert d["target_correct"] == pytest.approx(0.8 + 0.002)
    assert d["target_other"] == pytest.approx(0.002)
    assert d["optimal_gap"] == pytest.approx(math.log(0.802 / 0.002))
    # the curve's minimum is at the optimum, and the softmax there is the target
    i = int(np.argmin(d["loss_smoothed"]))
    assert abs(d["gaps"][i] - d["optimal_gap"]) <= d["gaps"][1] - d["gaps"][0]
    p = torch.softmax(torch.tensor([d["optimal_gap"]] + [0.0] * 99, dtype=torch.float64), 0)
    assert float(p[0]) == pytest.approx(d["optimal_confidence"])
    # the optimum gap falls as eps grows, for this K
    assert np.all(np.diff(d["gap_by_eps"]) < 0)
    assert ex.image.value[:4] == b"\x89PNG"
    ex.set(eps=0.0)  # the one-hot end draws too
    assert ex.data["optimal_gap"] == math.inf and ex.image.value[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no control"):
        ex.set(epsilon=0.1)


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="eps"):
        ls.label_smoothing_data(10, 1.0)
    with pytest.raises(ValueError, match="num_classes"):
        ls.smoothed_target(1, 0.1)
    with pytest.raises(ValueError, match="softmax"):
        ls.expected_calibration_error(np.array([[3.0, -1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="rows"):
        ls.reliability_data(np.array([[0.7, 0.3], [0.2, 0.8]]), np.array([0, 1, 1]))


def test_ece_on_a_hand_made_case():
    # Four predictions over 3 classes, 10 bins:
    #   two at confidence 0.85 (bin (0.8, 0.9]), one right, one wrong: accuracy 0.5
    #   two at confidence 0.65 (bin (0.6, 0.7]), both right:            accuracy 1.0
    # ECE = 2/4 * |0.5 - 0.85| + 2/4 * |1.0 - 0.65| = 0.175 + 0.175 = 0.35
    probs = np.array([[0.85, 0.10, 0.05],
                      [0.85, 0.05, 0.10],
                      [0.10, 0.65, 0.25],
                      [0.25, 0.10, 0.65]])
    targets = np.array([0, 1, 1, 2])
    r = ls.reliability_data(probs, targets, n_bins=10)
    assert r["ece"] == pytest.approx(0.35)
    assert r["count"].tolist() == [0, 0, 0, 0, 0, 0, 2, 0, 2, 0]
    assert r["accuracy"][8] == pytest.approx(0.5) and r["confidence"][8] == pytest.approx(0.85)
    assert r["accuracy"][6] == pytest.approx(1.0) and r["confidence"][6] == pytest.approx(0.65)
    assert r["accuracy_all"] == pytest.approx(0.75)
    assert r["mean_confidence"] == pytest.approx(0.75)
    # one bin: |overall accuracy - mean confidence| = |0.75 - 0.75| = 0
    assert ls.expected_calibration_error(probs, targets, n_bins=1) == pytest.approx(0.0)
    # torch tensors work the same
    assert ls.expected_calibration_error(torch.tensor(probs), torch.tensor(targets)) == pytest.approx(0.35)


def test_ece_is_zero_when_confidence_matches_accuracy():
    # 10 predictions at confidence 0.8, 8 of them right: calibrated.
    probs = np.tile([0.8, 0.2], (10, 1))
    targets = np.array([0] * 8 + [1] * 2)
    assert ls.expected_calibration_error(probs, targets) == pytest.approx(0.0)
    # all right at 0.8: underconfident by 0.2
    assert ls.expected_calibration_error(probs, np.zeros(10, int)) == pytest.approx(0.2)


def test_logit_gaps_by_hand_and_softmax_invariance():
    z = np.array([[4.0, 1.0, 1.0, -2.0], [0.0, 3.0, 0.0, 0.0]])
    assert ls.logit_gaps(z).tolist() == pytest.approx([4 - 0.0, 3.0])
    logp = torch.log_softmax(torch.tensor(z), 1).numpy()  # a per-row constant shift
    assert ls.logit_gaps(logp) == pytest.approx(ls.logit_gaps(z))


def test_plots_return_figures():
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 10, generator=g) * 3
    targets = torch.randint(0, 10, (50,), generator=g)
    probs = logits.softmax(1)
    for fig in (ls.plot_label_smoothing(), ls.plot_label_smoothing(1000, 0.0),
                ls.plot_confidence({"a": probs, "b": (logits / 3).softmax(1)}),
                ls.plot_reliability({"a": (probs, targets)}),
                ls.plot_logit_gaps({"a": logits}, eps=0.1)):
        assert fig.axes
        plt.close(fig)
    with pytest.raises(ValueError, match="dict"):
        ls.plot_reliability([(probs, targets)])
