"""``from_reference``: load a published implementation's ``state_dict`` into our model.

Each model file registers, next to the model it maps to, how one reference's names and
layouts become ours (:func:`register_reference`). This module holds the machinery they share
and the one public entry point.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Reference:
    #: The key in ``reference_models.json``, e.g. ``"torchvision.inception_v3"``.
    key: str
    #: Our registry name and the options that make it the reference's architecture.
    model: str
    kwargs: dict = field(default_factory=dict)
    #: Maps the reference's state dict to ours (names and layouts).
    convert: Callable[[StateDict, nn.Module], dict[str, torch.Tensor]] = None
    #: The input side the reference was fingerprinted at.
    input_size: int = 224


_REFERENCES: dict[str, Reference] = {}


def register_reference(key: str, model: str, input_size: int, **kwargs):
    """Decorator for a converter ``fn(their_state_dict, our_model) -> our_state_dict``."""
    def deco(fn):
        _REFERENCES[key] = Reference(key, model, kwargs, fn, input_size)
        return fn
    return deco


def list_references() -> list[str]:
    return sorted(_REFERENCES)


def get_reference(key: str) -> Reference:
    if key not in _REFERENCES:
        close = difflib.get_close_matches(key, _REFERENCES, n=3, cutoff=0.3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown reference {key!r}.{hint} Known references: "
                         f"{', '.join(list_references())}")
    return _REFERENCES[key]


def match_by_order(theirs: StateDict, ours: StateDict, skip_theirs: Callable[[str], bool] | None = None
                   ) -> dict[str, torch.Tensor]:
    """Pair two state dicts entry by entry, in order, checking every shape.

    Works when both implementations register their layers in the same order (true for most of
    the family, whose modules are written in the paper's branch order). A model whose order
    differs reorders ``theirs`` first. Raises a ``ValueError`` listing the first mismatches.
    """
    their_items = [(k, v) for k, v in theirs.items() if not (skip_theirs and skip_theirs(k))]
    our_keys = list(ours.keys())
    problems = []
    if len(their_items) != len(our_keys):
        problems.append(f"the reference has {len(their_items)} entries, our model {len(our_keys)}")
    out = {}
    for (tk, tv), ok in zip(their_items, our_keys):
        if tuple(tv.shape) != tuple(ours[ok].shape):
            problems.append(f"{tk} {tuple(tv.shape)} -> {ok} {tuple(ours[ok].shape)}")
        out[ok] = tv
    if problems:
        raise ValueError("the state dict does not fit this model:\n  " + "\n  ".join(problems[:10])
                         + ("\n  ..." if len(problems) > 10 else ""))
    return out


def from_reference(key: str, state_dict: StateDict, **model_kwargs) -> nn.Module:
    """Build our model for reference ``key`` and load that implementation's ``state_dict``.

    >>> model = from_reference("torchvision.inception_v3", torchvision_model.state_dict())

    The result computes the same function as the reference (checked in the tests on
    deterministic fingerprint weights). Unknown keys or mismatched shapes raise a
    ``ValueError`` listing what differs.
    """
    from .registry import create_model

    ref = get_reference(key)
    model = create_model(ref.model, **{**ref.kwargs, **model_kwargs})
    ours = model.state_dict()
    converted = ref.convert(dict(state_dict), model)
    missing = sorted(set(ours) - set(converted))
    unexpected = sorted(set(converted) - set(ours))
    wrong = [f"{k}: {tuple(v.shape)} != {tuple(ours[k].shape)}" for k, v in converted.items()
             if k in ours and tuple(v.shape) != tuple(ours[k].shape)]
    if missing or unexpected or wrong:
        lines = ([f"missing: {k}" for k in missing[:5]] + [f"unexpected: {k}" for k in unexpected[:5]]
                 + [f"shape: {w}" for w in wrong[:5]])
        raise ValueError(f"the state dict does not fit {ref.model} as {key}:\n  " + "\n  ".join(lines))
    dtype = next(iter(converted.values())).dtype if converted else torch.float32
    if dtype.is_floating_point:
        model = model.to(dtype)
    model.load_state_dict(converted)
    return model
