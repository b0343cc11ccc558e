"""The losses the Inception papers train with.

* Label smoothing (Szegedy et al. 2016, Sec. 7): replace the one-hot target q by
  q' = (1 - eps) q + eps u, with u the uniform distribution over K classes. Cross-entropy is
  linear in the target, so H(q', p) = (1 - eps) H(q, p) + eps H(u, p).
* Auxiliary classifiers (Szegedy et al. 2014, Sec. 5): the side heads' losses are added to the
  main loss with a discount weight: total = main + w * sum(aux).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """H(q', p) written out; equals ``F.cross_entropy(logits, target, label_smoothing=eps)``.

    logits: N x K, target: N class indices. Returns the mean over the batch.
    """
    log_p = F.log_softmax(logits, dim=1)                           # N x K
    h_q = -log_p.gather(1, target.unsqueeze(1)).squeeze(1)         # N   H(q, p): the usual NLL
    h_u = -log_p.mean(dim=1)                                       # N   H(u, p) = -sum_k log p_k / K
    return ((1 - eps) * h_q + eps * h_u).mean()


def split_outputs(output) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """(main logits, aux logits) from whatever a model returned.

    Handles plain logits, our ``InceptionOutputs(logits, aux_logits)`` and torchvision's
    ``InceptionOutputs``/``GoogLeNetOutputs`` (fields ``aux_logits``, ``aux_logits1``, ...).
    """
    if isinstance(output, torch.Tensor):
        return output, ()
    if hasattr(output, "_fields") and "logits" in output._fields:
        aux: list[torch.Tensor] = []
        for name in output._fields:
            if name.startswith("aux"):
                value = getattr(output, name)
                if isinstance(value, torch.Tensor):
                    aux.append(value)
                elif value is not None:
                    aux.extend(v for v in value if v is not None)
        return output.logits, tuple(aux)
    raise TypeError(f"cannot read logits from a model output of type {type(output).__name__}")


def inception_loss(output, target: torch.Tensor, *, label_smoothing: float = 0.0,
                   aux_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """total = main + aux_weight * sum(aux) (cross-entropy each, smoothed alike).

    Returns (total loss, main logits). Losses are computed in float32 even under autocast.
    """
    logits, aux = split_outputs(output)
    loss = F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)
    if aux and aux_weight:
        loss = loss + aux_weight * sum(F.cross_entropy(a.float(), target, label_smoothing=label_smoothing)
                                       for a in aux)
    return loss, logits
