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
                     label_smoothing: float = 0.0) -> dict:
    """Per stage with parameters: ``||d loss / d theta_stage||_2`` for three losses.

    * ``main``: the main classifier's cross-entropy;
    * ``aux``: ``aux_weight * sum(cross-entropy of each auxiliary head)`` (0 without heads);
    * ``total``: their sum, the loss GoogLeNet trains with (``main + 0.3 aux1 + 0.3 aux2``).

    The batch runs in training mode (that is when the heads exist), after which every
    parameter and buffer (BatchNorm's running statistics) is put back and the gradients
    are left untouched: measuring changes nothing. Returns a dict of lists, one entry per
    stage, plus ``aux_taps`` (the stages the heads read) and ``weight``.
    """
    from ..train.losses import split_outputs

    rows = _stage_params(model)
    params = [p for _, ps in rows for p in ps]
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.train()
    try:
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
