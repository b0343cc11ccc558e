"""Label smoothing (Szegedy et al. 2016, *Rethinking*, Sec. 7) and what it does to confidence.

Label smoothing trains against the target

    q'(k) = (1 - eps) delta(k, y) + eps / K

instead of the one-hot delta(k, y). Cross-entropy is linear in the target, so
H(q', p) = (1 - eps) H(q, p) + eps H(u, p) with u the uniform distribution over K classes.

Two halves:

* **The target and the logit gap it asks for** (pure arithmetic). With logits ``[g, 0, ..., 0]``
  (the correct class ``g`` above the others) the smoothed loss is
  ``log(e^g + K - 1) - q'_y g``, smallest where the softmax equals the target, at
  ``g* = log((1 - eps + eps/K) / (eps/K))``; the one-hot loss (eps = 0) keeps falling as
  ``g`` grows, so it rewards ever larger logits. :func:`label_smoothing_data`,
  :func:`plot_label_smoothing`, :func:`explore_label_smoothing`.
* **A trained network's confidence** (arrays in, numbers and figures out): the confidence
  (largest probability) of each prediction, the reliability diagram and the expected
  calibration error (ECE, Guo et al. 2017, "On Calibration of Modern Neural Networks"),
  and each prediction's logit gap. :func:`reliability_data`,
  :func:`expected_calibration_error`, :func:`logit_gaps`, :func:`plot_confidence`,
  :func:`plot_reliability`, :func:`plot_logit_gaps`.

Arrays may be numpy arrays or torch tensors (on any device).
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

#: What the explorer offers for K: a coin flip, the digits, CIFAR-100, ImageNet.
CLASS_CHOICES = (2, 10, 100, 1000)


# -- the smoothed target and its optimum -----------------------------------------------------------
def _check_eps_k(num_classes, eps) -> None:
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be a whole number of at least 2; got {num_classes!r}")
    if not 0 <= eps < 1:
        raise ValueError(f"eps must be in [0, 1) (0 = one-hot target, the paper uses 0.1); got {eps!r}")


def smoothed_target(num_classes: int = 10, eps: float = 0.1, label: int = 0) -> np.ndarray:
    """q'(k) = (1 - eps) [k == label] + eps / K, as a length-K array summing to 1."""
    _check_eps_k(num_classes, eps)
    if not 0 <= label < num_classes:
        raise ValueError(f"label must be a class index in 0..{num_classes - 1}; got {label}")
    q = np.full(num_classes, eps / num_classes)
    q[label] += 1 - eps
    return q


def optimal_logit_gap(num_classes: int = 10, eps: float = 0.1) -> float:
    """The gap between the correct logit and every other one that minimizes H(q', p).

    The minimum of cross-entropy over p is at p = q', so z_y - z_k = log(q'_y / q'_k) =
    log((1 - eps + eps/K) / (eps/K)) for every k != y; ``inf`` for eps = 0 (no finite optimum).
    """
    _check_eps_k(num_classes, eps)
    if eps == 0:
        return math.inf
    k = num_classes
    return math.log((1 - eps + eps / k) / (eps / k))


def gap_loss(gap, num_classes: int = 10, eps: float = 0.1) -> np.ndarray:
    """H(q', softmax([g, 0, ..., 0])) for the correct class ``g`` above K - 1 equal others.

    = -q'_y log p_y - (1 - q'_y) log p_other = log(e^g + K - 1) - q'_y g.
    """
    _check_eps_k(num_classes, eps)
    g = np.asarray(gap, dtype=float)
    q_y = 1 - eps + eps / num_classes
    return np.logaddexp(g, math.log(num_classes - 1)) - q_y * g


def label_smoothing_data(num_classes: int = 10, eps: float = 0.1, max_gap: float = 15.0) -> dict:
    """The numbers behind :func:`plot_label_smoothing`.

    ``target_correct``/``target_other``: q' of the correct class and of each other class;
    ``optimal_gap`` and ``optimal_confidence`` (= ``target_correct``, the softmax at the optimum);
    ``gaps`` with ``loss_smoothed`` and ``loss_onehot`` (the loss against the gap);
    ``eps_grid`` with ``gap_by_eps`` (the optimum gap for every eps, this K).
    """
    _check_eps_k(num_classes, eps)
    if not max_gap > 0:
        raise ValueError(f"max_gap must be positive; got {max_gap!r}")
    k = int(num_classes)
    gaps = np.linspace(-2.0, float(max_gap), 241)
    eps_grid = np.linspace(0.01, 0.5, 50)
    return {
        "num_classes": k, "eps": float(eps),
        "target_correct": 1 - eps + eps / k, "target_other": eps / k,
        "optimal_gap": optimal_logit_gap(k, eps), "optimal_confidence": 1 - eps + eps / k,
        "gaps": gaps, "loss_smoothed": gap_loss(gaps, k, eps), "loss_onehot": gap_loss(gaps, k, 0.0),
        "eps_grid": eps_grid, "gap_by_eps": np.array([optimal_logit_gap(k, e) for e in eps_grid]),
    }


def draw_label_smoothing(data: dict):
    """Three panels: the target, the loss against the logit gap, the optimum gap against eps."""
    import matplotlib.pyplot as plt

    d = data
    k, eps, g_opt = d["num_classes"], d["eps"], d["optimal_gap"]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.4), gridspec_kw={"width_ratios": [0.8, 1.2, 1.1]})
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.16, top=0.86, wspace=0.32)

    # 1. the target: one-hot vs smoothed, correct class and each other class
    x = np.arange(2)
    a.bar(x - 0.18, [1.0, 0.0], width=0.36, color="tab:gray", label="one-hot q")
    a.bar(x + 0.18, [d["target_correct"], d["target_other"]], width=0.36, color="tab:blue",
          label=f"smoothed q' (eps={eps:g})")
    a.text(1 + 0.18, d["target_other"] + 0.03, f"{d['target_other']:.3g}", ha="center", fontsize=8)
    a.text(0 + 0.18, d["target_correct"] + 0.03, f"{d['target_correct']:.3g}", ha="center", fontsize=8)
    a.set_xticks(x, ["correct class", f"each of the\nother {k - 1}"])
    a.set_ylim(0, 1.45)
    a.set_ylabel("target probability")
    a.legend(frameon=False, fontsize=8, loc="upper right")
    a.set_title(f"the target, K = {k}", fontsize=10)

    # 2. the loss against the gap between the correct logit and the others
    b.plot(d["gaps"], d["loss_onehot"], color="tab:gray", label="one-hot: falls forever")
    b.plot(d["gaps"], d["loss_smoothed"], color="tab:blue", label="smoothed")
    if math.isfinite(g_opt) and g_opt <= d["gaps"][-1]:
        b.plot([g_opt], [gap_loss(g_opt, k, eps)], "o", color="k", mfc="none", ms=8)
        b.axvline(g_opt, color="tab:blue", ls=":", lw=1)
        b.text(g_opt, b.get_ylim()[1] * 0.6, f" optimum\n gap {g_opt:.2f}", fontsize=8, va="top")
    b.set_xlabel("logit gap  z_correct - z_other")
    b.set_ylabel("cross-entropy")
    b.legend(frameon=False, fontsize=8, loc="upper right")
    b.grid(alpha=0.3)
    b.set_title("the loss has a minimum only when smoothed", fontsize=10)

    # 3. where the optimum sits as eps moves
    c.plot(d["eps_grid"], d["gap_by_eps"], color="tab:blue")
    if math.isfinite(g_opt):
        c.plot([eps], [g_opt], "o", color="k", mfc="none", ms=8)
        c.set_title(f"optimum gap {g_opt:.2f}, confidence {d['optimal_confidence']:.3f}", fontsize=10)
    else:
        c.set_title("eps = 0: no finite optimum gap", fontsize=10)
    c.set_xlabel("eps")
    c.set_ylabel(f"optimum logit gap (K = {k})")
    c.grid(alpha=0.3)
    return fig


def plot_label_smoothing(num_classes: int = 10, eps: float = 0.1):
    """Static figure of :func:`label_smoothing_data` (the digits' 10 classes, eps = 0.1)."""
    return draw_label_smoothing(label_smoothing_data(num_classes, eps))


def explore_label_smoothing(num_classes: int = 10, eps: float = 0.1):
    """Live :func:`plot_label_smoothing`: eps and the number of classes K."""
    from ..widgets import Explorer, dropdown, slider

    controls = {
        "eps": slider(eps, 0.0, 0.5, 0.01, "eps"),
        "num_classes": dropdown(sorted({*CLASS_CHOICES, int(num_classes)}), int(num_classes), "classes K"),
    }
    return Explorer(label_smoothing_data, draw_label_smoothing, controls, title="label smoothing",
                    name="explore_label_smoothing", grid={"eps": list(EPS_GRID)},
                    numbers=label_smoothing_numbers)


#: The web page's eps values (with every K of :data:`CLASS_CHOICES`: 52 frames).
EPS_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def label_smoothing_numbers(d: dict) -> dict:
    return {"target, correct class": d["target_correct"], "target, each other class": d["target_other"],
            "optimum logit gap": d["optimal_gap"]}


# -- a trained network's confidence -----------------------------------------------------------------
def _array(x, name: str, ndim: int) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s) (N{' x K' if ndim == 2 else ''}); "
                         f"got shape {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{name} is empty")
    return a


def _probs(probs) -> np.ndarray:
    p = _array(probs, "probs", 2).astype(float)
    if (p < 0).any() or not np.allclose(p.sum(1), 1, atol=1e-3):
        raise ValueError("probs must be probabilities (rows >= 0 summing to 1); for logits pass "
                         "logits.softmax(dim=1)")
    return p


def confidence(probs) -> np.ndarray:
    """The confidence of each prediction: its largest probability."""
    return _probs(probs).max(axis=1)


def logit_gaps(logits) -> np.ndarray:
    """The largest logit minus the mean of the others, per row.

    At the smoothed loss's optimum every other logit is equal, and this gap is
    :func:`optimal_logit_gap`. It does not change when a constant is added to a row, as softmax
    does not, so ``np.log(probs)`` gives the same gaps as the logits (when no probability is 0).
    """
    z = _array(logits, "logits", 2).astype(float)
    if z.shape[1] < 2:
        raise ValueError("logit gaps need at least two classes")
    top = z.max(axis=1)
    return top - (z.sum(axis=1) - top) / (z.shape[1] - 1)


def reliability_data(probs, targets, n_bins: int = 10) -> dict:
    """Bin the predictions by confidence (equal-width bins over [0, 1], each ``(lo, hi]``).

    Per bin: ``count``, mean ``confidence`` and ``accuracy`` (NaN where a bin is empty).
    ``ece`` = sum over bins of count/N * |accuracy - confidence| (Guo et al. 2017, Eq. 3);
    also the overall ``accuracy`` and ``mean_confidence``.
    """
    p = _probs(probs)
    y = _array(targets, "targets", 1).astype(int)
    if len(y) != len(p):
        raise ValueError(f"probs has {len(p)} rows but targets has {len(y)} labels")
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive whole number; got {n_bins!r}")
    n_bins = int(n_bins)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    correct = (pred == y).astype(float)
    # bin b holds (b/n, (b+1)/n]; a confidence of exactly 0 joins the first bin
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        bin_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        bin_acc = np.bincount(idx, weights=correct, minlength=n_bins) / count
    filled = count > 0
    ece = float(np.sum(count[filled] / len(y) * np.abs(bin_acc[filled] - bin_conf[filled])))
    return {"edges": np.linspace(0, 1, n_bins + 1), "count": count, "confidence": bin_conf,
            "accuracy": bin_acc, "ece": ece, "accuracy_all": float(correct.mean()),
            "mean_confidence": float(conf.mean())}


def expected_calibration_error(probs, targets, n_bins: int = 10) -> float:
    """ECE: how far confidence is from accuracy, averaged over confidence bins (0 = calibrated)."""
    return reliability_data(probs, targets, n_bins)["ece"]


def _runs(runs: Mapping, what: str) -> Mapping:
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError(f"pass the runs as a dict {{'name': {what}, ...}}")
    return runs


COLORS = ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red")


def plot_confidence(runs: Mapping, bins: int = 20):
    """Histogram of the confidence (largest probability) of each run's predictions.

    ``runs``: ``{'name': probs}`` (N x K probabilities each).
    """
    import matplotlib.pyplot as plt

    runs = _runs(runs, "probs")
    fig, ax = plt.subplots(figsize=(5, 3.4))
    edges = np.linspace(0, 1, bins + 1)
    for (name, probs), color in zip(runs.items(), COLORS):
        conf = confidence(probs)
        ax.hist(conf, bins=edges, color=color, alpha=0.55, label=f"{name} (mean {conf.mean():.2f})")
    ax.set_xlabel("confidence (largest probability)")
    ax.set_ylabel("predictions")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.set_title("how sure the network is", fontsize=10)
    fig.tight_layout()
    return fig


def plot_reliability(runs: Mapping, n_bins: int = 10):
    """Reliability diagram: accuracy against confidence per bin, one line per run.

    ``runs``: ``{'name': (probs, targets)}``. Points below the diagonal are overconfident
    bins (sure but wrong more often than they claim), points above it underconfident ones.
    """
    import matplotlib.pyplot as plt

    runs = _runs(runs, "(probs, targets)")
    fig, ax = plt.subplots(figsize=(4.4, 4))
    ax.plot([0, 1], [0, 1], color="k", ls="--", lw=1, label="perfectly calibrated")
    for (name, (probs, targets)), color in zip(runs.items(), COLORS):
        r = reliability_data(probs, targets, n_bins)
        filled = r["count"] > 0
        share = r["count"][filled] / r["count"].sum()
        ax.plot(r["confidence"][filled], r["accuracy"][filled], "-", color=color, lw=1, alpha=0.7)
        # marker area follows the share of predictions in the bin: a bin of 3 predictions
        # should not look as important as a bin of 200
        ax.scatter(r["confidence"][filled], r["accuracy"][filled], s=12 + 300 * share, color=color,
                   alpha=0.8, label=f"{name} (ECE {r['ece']:.3f})")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence (mean of the bin)")
    ax.set_ylabel("accuracy (of the bin)")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.set_title(f"reliability diagram ({n_bins} bins; area = share)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_logit_gaps(runs: Mapping, eps: float = 0.1, bins: int = 30):
    """Histogram of each run's logit gaps, with the smoothed loss's optimum marked.

    ``runs``: ``{'name': logits}`` (N x K). ``eps``: the smoothing whose optimum gap
    (:func:`optimal_logit_gap`) is drawn.
    """
    import matplotlib.pyplot as plt

    runs = _runs(runs, "logits")
    gaps = {name: logit_gaps(z) for name, z in runs.items()}
    k = _array(next(iter(runs.values())), "logits", 2).shape[1]
    hi = max(float(g.max()) for g in gaps.values())
    lo = min(0.0, min(float(g.min()) for g in gaps.values()))
    edges = np.linspace(lo, hi * 1.02 + 1e-9, bins + 1)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for (name, g), color in zip(gaps.items(), COLORS):
        ax.hist(g, bins=edges, color=color, alpha=0.55, label=f"{name} (median {np.median(g):.1f})")
    if eps > 0:
        g_opt = optimal_logit_gap(k, eps)
        ax.axvline(g_opt, color="k", ls="--", lw=1, label=f"optimum of the eps={eps:g} loss: {g_opt:.2f}")
    ax.set_xlabel("logit gap (largest logit - mean of the others)")
    ax.set_ylabel("predictions")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.set_title("how far the top logit stands out", fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["smoothed_target", "optimal_logit_gap", "gap_loss", "label_smoothing_data",
           "draw_label_smoothing", "plot_label_smoothing", "explore_label_smoothing", "confidence",
           "logit_gaps", "reliability_data", "expected_calibration_error", "plot_confidence",
           "plot_reliability", "plot_logit_gaps", "CLASS_CHOICES"]
