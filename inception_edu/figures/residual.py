"""Residual scaling: why Inception-ResNet scales each residual by 0.1-0.3 before adding it.

Szegedy, Ioffe, Vanhoucke & Alemi (2017, Sec. 3.3) found that "if the number of filters
exceeded 1000, the residual variants started to exhibit instabilities and the network has just
'died' early in the training, meaning that the last layer before the average pooling started
to produce only zeros". Scaling the residuals down "by factors between 0.1 and 0.3" before the
addition stabilised training. An Inception-ResNet block computes

    x_{l+1} = relu(x_l + s * r_l),   r_l = proj(concat(branches(x_l)))

(:class:`inception_edu.layers.ResidualBranches`). The branches start with BatchNorm'd
convolutions, so ``r_l`` has about the same size whatever ``x_l``'s size; nothing normalizes
the trunk ``x``. At initialization the trunk's mean square therefore grows by about
``s^2 * E[r^2]`` per block (while the ReLU after the sum clips little):

    E[x_L^2] ~ E[x_0^2] + s^2 * sum_l E[r_l^2]

and every step of gradient descent on ``proj`` moves the trunk ``s`` times less (``s^2`` times
less with plain SGD, whose gradient is itself scaled by ``s``). This module measures both.

* :class:`~inception_edu.models.inception_resnet.ResidualStack` (in the models) -- a stem
  and ``depth`` Inception-ResNet-A blocks of ``width``
  channels (the paper's Fig. 16 branches), pooled to a classifier: the deep, wide residual
  stack of the experiment;
* :func:`activation_stats` -- per block: the trunk's root mean square, the scaled residual's,
  and the fraction of trunk values that are exactly zero ("died");
* :func:`residual_scaling_data` / :func:`plot_residual_scaling` -- the same stack at several
  scales, at initialization and after a few SGD steps at a high learning rate;
* :func:`growth_data` / :func:`plot_activation_growth` / :func:`explore_residual_scaling` --
  the live explorer: activation growth with depth, at any scale and width (initialization
  only, so it is fast).
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from . import check_whole
# The stack is a model: it lives with the other Inception-ResNets (this module draws it).
from ..models.inception_resnet import (V2_A_BRANCHES, ResidualStack,  # noqa: F401  (re-exported)
                                       check_residual_scale)

#: Scales compared by default: unscaled, and the two ends of the paper's 0.1-0.3.
SCALES = (1.0, 0.3, 0.1)
_COLORS = {1.0: "tab:red", 0.3: "tab:blue", 0.1: "tab:green"}


def _check(**values) -> None:
    check_whole(**{k: v for k, v in values.items() if k in ("width", "depth")})
    if "scale" in values:
        check_residual_scale(values["scale"])


@contextlib.contextmanager
def _frozen_batchnorm_stats(model: nn.Module):
    """Train-mode BatchNorm (batch statistics, as in training) without updating running stats."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in bns]
    was_training = model.training
    try:
        for m in bns:
            m.momentum = 0.0      # running = (1 - 0) * running + 0 * batch: unchanged
        model.train()
        yield
    finally:
        for m, (momentum, tracked) in zip(bns, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)
        model.train(was_training)


def _rms(t: torch.Tensor) -> float:
    return float(t.double().pow(2).mean().sqrt())


@torch.no_grad()
def activation_stats(stack: ResidualStack, x: torch.Tensor) -> dict:
    """What flows through the trunk of ``stack`` for the batch ``x`` (BN in training mode).

    Lists indexed by position in the trunk (0 = the stem's output, l = after block l):

    * ``trunk_rms``: root mean square of the trunk, sqrt(mean(x_l^2));
    * ``residual_rms``: RMS of what block l adds, ``scale * r_l`` (index 0: 0.0);
    * ``update_ratio``: ``residual_rms[l] / trunk_rms[l - 1]``, how much block l changes its
      input (index 0: 0.0);
    * ``zero_fraction``: share of trunk values that are exactly 0 (1.0 = "died").
    """
    with _frozen_batchnorm_stats(stack):
        h = stack.stem(x)
        stats = {"trunk_rms": [_rms(h)], "residual_rms": [0.0], "update_ratio": [0.0],
                 "zero_fraction": [float((h == 0).double().mean())]}
        for block in stack.blocks:
            added = block.scale * block.residual(h)
            before = stats["trunk_rms"][-1]
            h = block.act(h + added)
            stats["trunk_rms"].append(_rms(h))
            stats["residual_rms"].append(_rms(added))
            stats["update_ratio"].append(_rms(added) / before if before > 0 else math.inf)
            stats["zero_fraction"].append(float((h == 0).double().mean()))
    return stats


def _digits_batch(n: int, seed: int):
    """``n`` training digits at their native 8x8 (3 channels, normalized), in a seeded order."""
    from ..train.data import load_digits

    ds = load_digits("train", size=8)
    g = torch.Generator().manual_seed(seed)
    if not 1 <= n <= len(ds):
        raise ValueError(f"asked for {n} digits; the training part has {len(ds)}: use fewer steps or a smaller batch")
    idx = torch.randperm(len(ds), generator=g)[:n]
    x, y = ds.tensors
    return x[idx], y[idx]


def train_steps(stack: ResidualStack, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float,
                batch_size: int = 32, momentum: float = 0.9) -> list[float]:
    """``steps`` SGD steps (momentum, no weight decay) on consecutive batches of (x, y).

    Returns the loss of every step; stops early (returning what it has) if the loss is no
    longer finite -- the run has diverged.
    """
    opt = torch.optim.SGD(stack.parameters(), lr=lr, momentum=momentum)
    stack.train()
    losses = []
    for i in range(steps):
        lo = (i * batch_size) % max(1, len(x) - batch_size + 1)
        xb, yb = x[lo:lo + batch_size], y[lo:lo + batch_size]
        loss = nn.functional.cross_entropy(stack(xb), yb)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return losses


def residual_scaling_data(scales=SCALES, width: int = 1024, depth: int = 10, steps: int = 10,
                          lr: float = 0.5, batch_size: int = 32, seed: int = 0) -> dict:
    """The stack at each scale: activation statistics at initialization and after ``steps``
    SGD steps at learning rate ``lr`` on the digits (8x8, so the trunk runs on a 4x4 grid).

    Every scale starts from the same weights (same seed) and sees the same batches, so the
    scale is the only difference. Returns ``{'scales', 'width', 'depth', 'steps', 'lr',
    'init': {s: stats}, 'trained': {s: stats}, 'loss': {s: [loss per step]}}`` with the stats
    of :func:`activation_stats` measured on one fixed held-back batch.
    """
    _check(width=width, depth=depth)
    scales = tuple(float(s) for s in scales)
    for s in scales:
        _check(scale=s)
    if steps < 0:
        raise ValueError(f"steps must be 0 or more; got {steps}")
    x, y = _digits_batch(batch_size * (steps + 1), seed)
    probe, (xt, yt) = x[:batch_size], (x[batch_size:], y[batch_size:])
    out = {"scales": scales, "width": width, "depth": depth, "steps": steps, "lr": lr,
           "init": {}, "trained": {}, "loss": {}}
    for s in scales:
        torch.manual_seed(seed)
        stack = ResidualStack(width, depth, s)
        out["init"][s] = activation_stats(stack, probe)
        out["loss"][s] = train_steps(stack, xt, yt, steps=steps, lr=lr, batch_size=batch_size)
        out["trained"][s] = activation_stats(stack, probe)
    return out


def _label(s: float) -> str:
    return "s = 1 (unscaled)" if s == 1.0 else f"s = {s:g}"


def _color(s: float, i: int) -> str:
    return _COLORS.get(s, f"C{i}")


def _plain_log_axis(ax, axis: str = "y") -> None:
    """Log scale with tick labels written as plain numbers (0.1, 0.5, 2) rather than 10^-1."""
    from matplotlib.ticker import FormatStrFormatter

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FormatStrFormatter("%g"))
    target.set_minor_formatter(FormatStrFormatter("%g"))
    ax.tick_params(axis=axis, which="minor", labelsize=7)


def draw_residual_scaling(data: dict):
    """Three panels: trunk RMS vs depth at init, the same after training, and the loss."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.7))
    depth = list(range(data["depth"] + 1))
    for i, s in enumerate(data["scales"]):
        c = _color(s, i)
        axes[0].plot(depth, data["init"][s]["trunk_rms"], marker="o", ms=3, color=c, label=_label(s))
        trained = [v if math.isfinite(v) and v > 0 else float("nan") for v in data["trained"][s]["trunk_rms"]]
        axes[1].plot(depth, trained, marker="o", ms=3, color=c, label=_label(s))
        zeros = data["trained"][s]["zero_fraction"][-1]
        last = next((v for v in reversed(trained) if v == v), None)
        if last is not None:
            axes[1].annotate(f" {zeros:.0%} zeros", (depth[-1], last), color=c, fontsize=8, va="center")
        losses = [v if math.isfinite(v) else float("nan") for v in data["loss"][s]]
        axes[2].plot(range(1, len(losses) + 1), losses, marker="o", ms=3, color=c, label=_label(s))
    for ax in axes[:2]:
        _plain_log_axis(ax)
        ax.set_xlabel("block l (0 = stem)")
        ax.set_ylabel("trunk RMS, sqrt(mean x_l^2)")
        ax.grid(alpha=0.3, which="both")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set_xlim(-0.5, data["depth"] * 1.3 + 0.5)
    axes[0].set_title(f"at initialization ({data['depth']} blocks, {data['width']} channels)", fontsize=10)
    axes[1].set_title(f"after {data['steps']} SGD steps at lr {data['lr']:g}; zeros in the last layer",
                      fontsize=10)
    _plain_log_axis(axes[2])
    axes[2].set_xlabel("SGD step")
    axes[2].set_ylabel("training loss")
    axes[2].set_title("the loss during those steps", fontsize=10)
    axes[2].grid(alpha=0.3, which="both")
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def plot_residual_scaling(scales=SCALES, width: int = 1024, depth: int = 10, steps: int = 10,
                          lr: float = 0.5, batch_size: int = 32, seed: int = 0, data: dict | None = None):
    """Static figure of :func:`residual_scaling_data` (pass ``data`` to draw numbers you have)."""
    if data is None:
        data = residual_scaling_data(scales, width, depth, steps, lr, batch_size, seed)
    return draw_residual_scaling(data)


# -- the explorer: growth with depth at initialization -----------------------------------------

def growth_data(scale: float = 1.0, depth: int = 20, width: int = 256, batch_size: int = 16,
                seed: int = 0) -> dict:
    """Trunk statistics through ``depth`` fresh blocks at ``scale`` and, for comparison, at 1.0.

    Initialization only (one forward pass each, no training), on a fixed batch of digits.
    ``predicted_rms`` is the formula of the module docstring evaluated with the measured
    residuals: sqrt(rms_0^2 + sum_{k<=l} residual_rms_k^2).
    """
    _check(scale=scale, depth=depth, width=width)
    x, _ = _digits_batch(batch_size, seed)
    out = {"scale": float(scale), "depth": depth, "width": width}
    for key, s in (("scaled", float(scale)), ("unscaled", 1.0)):
        torch.manual_seed(seed)
        stats = activation_stats(ResidualStack(width, depth, s), x)
        r0, acc, pred = stats["trunk_rms"][0], 0.0, []
        for r in stats["residual_rms"]:
            acc += r * r
            pred.append(math.sqrt(r0 * r0 + acc))
        stats["predicted_rms"] = pred
        stats["growth"] = stats["trunk_rms"][-1] / stats["trunk_rms"][0]
        out[key] = stats
    return out


def draw_growth(data: dict):
    """Left: trunk RMS vs depth, measured and by the formula; right: each block's relative change."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.6))
    depth = list(range(data["depth"] + 1))
    s = data["scale"]
    for key, color, label in (("unscaled", "tab:red", "s = 1 (unscaled)"), ("scaled", "tab:blue", f"s = {s:g}")):
        st = data[key]
        left.plot(depth, st["trunk_rms"], marker="o", ms=3, color=color, label=label + " (measured)")
        left.plot(depth, st["predicted_rms"], ls="--", color=color, alpha=0.7, label=label + " (formula)")
        right.plot(depth[1:], st["update_ratio"][1:], marker="o", ms=3, color=color, label=label)
    left.set_xlabel("block l (0 = stem)")
    left.set_ylabel("trunk RMS")
    left.set_title(f"trunk at initialization, {data['width']} channels: "
                   f"x{data['unscaled']['growth']:.2f} vs x{data['scaled']['growth']:.2f}", fontsize=10)
    _plain_log_axis(right)
    right.set_xlabel("block l")
    right.set_ylabel("RMS(s r_l) / RMS(x_{l-1})")
    right.set_title("how much each block changes its input", fontsize=10)
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend(frameon=False, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def plot_activation_growth(scale: float = 0.2, depth: int = 20, width: int = 256):
    """Static figure of :func:`growth_data`: what :func:`explore_residual_scaling` shows first."""
    return draw_growth(growth_data(scale, depth, width))


def explore_residual_scaling(scale: float = 0.2, depth: int = 20, width: int = 256):
    """Live explorer: trunk growth with depth at initialization, at ``scale`` beside 1.0."""
    from ..widgets import Explorer, dropdown, slider

    controls = {
        "scale": slider(scale, 0.05, 1.0, 0.05, "residual scale s"),
        "depth": slider(depth, 1, 40, 1, "blocks"),
        "width": dropdown([64, 128, 256, 512, 1024], width, "trunk channels"),
    }
    return Explorer(growth_data, draw_growth, controls, title="residual scaling", name="explore_residual_scaling",
                    grid=GROWTH_GRID, numbers=growth_numbers)


#: The web page's values (60 frames): the paper's 0.1-0.3 and around, depths and widths.
GROWTH_GRID = {"scale": [0.1, 0.2, 0.3, 0.5, 1.0], "depth": [5, 10, 20, 40], "width": [64, 128, 256]}


def growth_numbers(d: dict) -> dict:
    return {"trunk growth, scaled": d["scaled"]["growth"], "trunk growth, s = 1": d["unscaled"]["growth"]}
