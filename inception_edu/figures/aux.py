"""Auxiliary classifiers: how much gradient each stage of a network gets, and from which loss.

GoogLeNet (Szegedy et al. 2014, Sec. 5) put two small classifiers on intermediate layers,
(4a) and (4d), "expected to encourage discrimination in the lower stages in the classifier,
increase the gradient signal that gets propagated back, and provide additional
regularization"; their losses are added to the main loss with weight 0.3 and the heads are
dropped at inference. *Rethinking the Inception Architecture* (Szegedy et al. 2016, Sec. 4)
found they do not speed up early training and act mostly as regularizers.

* :func:`stage_grad_norms` -- for one batch, the L2 norm of the gradient that reaches each
  stage's parameters from the main loss, from the weighted auxiliary losses, and from their sum;
* :func:`plot_stage_grad_norms` -- that as a figure, one line per source (or per run).
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

SOURCES = {"main": "main loss", "aux": "auxiliary losses (weighted)", "total": "total loss"}


def _stage_params(model) -> list[tuple[str, list[torch.nn.Parameter]]]:
    stages = getattr(model, "stages", None)
    if not stages:
        raise ValueError("stage_grad_norms needs an inception_edu model with a stage table (model.stages)")
    rows = [(s.name, [p for p in s.module.parameters() if p.requires_grad]) for s in stages]
    return [(name, params) for name, params in rows if params]      # pooling stages have none


def _norm(grads) -> float:
    squares = [g.detach().double().pow(2).sum() for g in grads if g is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


def stage_grad_norms(model, x: torch.Tensor, y: torch.Tensor, aux_weight: float = 0.3,
                     label_smoothing: float = 0.0, seed: int = 0) -> dict:
    """Per stage with parameters: ``||d loss / d theta_stage||_2`` for three losses.

    * ``main``: the main classifier's cross-entropy;
    * ``aux``: ``aux_weight * sum(cross-entropy of each auxiliary head)`` (0 without heads);
    * ``total``: their sum, the loss GoogLeNet trains with (``main + 0.3 aux1 + 0.3 aux2``).

    The batch runs in training mode (that is when the heads exist), after which every
    parameter and buffer (BatchNorm's running statistics) is put back and the gradients
    are left untouched: measuring changes nothing. Training mode means dropout (the heads'
    70 %): its masks are drawn from a generator seeded with ``seed``, apart from the global
    one, so the same model and batch always give the same norms (and the caller's random
    stream is not moved). Returns a dict of lists, one entry per
    stage, plus ``aux_taps`` (the stages the heads read) and ``weight``.
    """
    from ..train.losses import split_outputs

    rows = _stage_params(model)
    params = [p for _, ps in rows for p in ps]
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.train()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            logits, aux = split_outputs(model(x))
        main = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        aux_loss = (aux_weight * sum(F.cross_entropy(a, y, label_smoothing=label_smoothing) for a in aux)
                    if aux else None)
        g_main = torch.autograd.grad(main, params, retain_graph=aux_loss is not None, allow_unused=True)
        g_aux = (torch.autograd.grad(aux_loss, params, allow_unused=True) if aux_loss is not None
                 else [None] * len(params))
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
    out = {"stages": [], "main": [], "aux": [], "total": []}
    i = 0
    for name, ps in rows:
        gm, ga = g_main[i:i + len(ps)], g_aux[i:i + len(ps)]
        i += len(ps)
        both = [a if b is None else (b if a is None else a + b) for a, b in zip(gm, ga)]
        out["stages"].append(name)
        out["main"].append(_norm(gm))
        out["aux"].append(_norm(ga))
        out["total"].append(_norm(both))
    out["aux_taps"] = list(getattr(model, "aux", {}) or [])
    out["weight"] = aux_weight
    return out


def plot_stage_grad_norms(norms: Mapping, sources=("main", "aux", "total"), title: str = ""):
    """Gradient norm per stage (log scale), input on the left, output on the right.

    ``norms``: one result of :func:`stage_grad_norms` (one line per source in ``sources``), or
    a mapping ``{'run name': result}`` (one line per run, its ``total``). Dotted lines mark the
    stages the auxiliary heads read.
    """
    import matplotlib.pyplot as plt

    runs = {"": norms} if "stages" in norms else dict(norms)
    if not runs:
        raise ValueError("plot_stage_grad_norms needs a result of stage_grad_norms, or {'name': result}")
    fig, ax = plt.subplots(figsize=(10, 3.6))
    first = next(iter(runs.values()))
    stages = first["stages"]
    xs = range(len(stages))
    if "stages" in norms:
        for source in sources:
            if source == "aux" and not any(first["aux"]):
                continue
            label = SOURCES[source] + (f" (x {first['weight']})" if source == "aux" else "")
            # No gradient (a stage above every head) cannot sit on a log axis: leave a gap.
            values = [v if v > 0 else float("nan") for v in first[source]]
            ax.semilogy(xs, values, marker="o", ms=4, label=label, ls="--" if source == "total" else "-")
    else:
        for name, run in runs.items():
            if run["stages"] != stages:
                raise ValueError("every run must have the same stages to share one plot")
            ax.semilogy(xs, run["total"], marker="o", ms=4, label=name)
    taps = {t for run in runs.values() for t in run.get("aux_taps", [])}
    labels = []
    for i, s in enumerate(stages):
        labels.append(s.replace("inception", "") + ("\n+ aux head" if s in taps else ""))
        if s in taps:
            ax.axvline(i, color="gray", ls=":", lw=1)
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_xlabel("stage (input -> output)")
    ax.set_ylabel("gradient norm of the stage's weights")
    ax.grid(alpha=0.3, which="both")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# -- the explorer: the heads' weight, with and without BatchNorm --------------------------------
def grad_norm_setup(seed: int = 0, batch_size: int = 128, size: int = 16) -> dict:
    """Chapter 3's measurement set-up: one batch of digits and ``googlenet_cifar`` (heads on
    (4a) and (4d)) with BatchNorm (``True``) and without, Xavier-initialized (``False``).

    Built in the chapter's order from ``seed``: the batch and the BN network first, then the
    network without BN from a fresh seed. Returns ``{'images', 'labels', 'networks': {bn: model}}``.
    """
    from .. import create_model
    from ..train import digits_loaders, seed_everything
    from ..layers import remove_batchnorm

    seed_everything(seed)
    images, labels = next(iter(digits_loaders(batch_size=batch_size, size=size, seed=seed).train))
    small = create_model("googlenet_cifar", num_classes=10, aux_logits=True).train()
    seed_everything(seed)
    # As the chapter builds it: BatchNorm out, conv biases back (GoogLeNet 2014), Xavier init.
    plain = remove_batchnorm(create_model("googlenet_cifar", num_classes=10, aux_logits=True), init="xavier")
    return {"images": images, "labels": labels, "networks": {False: plain, True: small}}


def draw_grad_norms(norms: Mapping):
    """:func:`plot_stage_grad_norms` titled with the heads' weight (the explorer's figure)."""
    return plot_stage_grad_norms(norms, title=f"heads weighted {norms['weight']:g}")


def grad_norm_numbers(norms: Mapping) -> dict:
    """The first stage's gradient norm from each loss (the stage farthest from the main head)."""
    first = norms["stages"][0]
    return {f"{first}: from the main loss": norms["main"][0], f"{first}: from the heads": norms["aux"][0]}


#: The web page's heads' weights (with BatchNorm on and off: 22 frames).
AUX_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def explore_stage_grad_norms(aux_weight: float = 0.3, batch_norm: bool = False, setup: Mapping | None = None):
    """Live explorer: the heads' weight (0 switches them off) and BatchNorm on or off, on the
    gradient norm per stage. ``setup``: what :func:`grad_norm_setup` returns (built if None)."""
    from ..widgets import Explorer, checkbox, slider

    s = setup if setup is not None else grad_norm_setup()

    def compute(aux_weight, batch_norm):
        return stage_grad_norms(s["networks"][bool(batch_norm)], s["images"], s["labels"], aux_weight=aux_weight)

    controls = {"aux_weight": slider(aux_weight, 0.0, 1.0, 0.1, "heads' weight"),
                "batch_norm": checkbox(batch_norm, "batch normalization")}
    return Explorer(compute, draw_grad_norms, controls, title="gradient per stage", name="explore_stage_grad_norms",
                    grid={"aux_weight": list(AUX_WEIGHTS)}, numbers=grad_norm_numbers)
