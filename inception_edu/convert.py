"""``from_reference``: load a published implementation's ``state_dict`` into our model.

Each model file registers, next to the model it maps to, how one reference's names and
layouts become ours (:func:`register_reference`). This module holds the machinery they share
and the one public entry point.
"""
from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass, field
from importlib import resources
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


@functools.cache
def reference_keys() -> dict[str, tuple[str, ...]]:
    """Each reference's own ``state_dict`` keys, in the order its modules register them.

    Package data (``inception_edu/data/reference_keys.json``), the key lists of
    ``tests/data/reference_models.json``, which were read from the references themselves
    (torchvision 0.29.1, timm 1.0.31, pretrainedmodels 0.7.4, facenet-pytorch 2.6.0). A test
    keeps the two equal.
    """
    text = resources.files(__package__).joinpath("data").joinpath("reference_keys.json").read_text()
    return {key: tuple(keys) for key, keys in json.loads(text).items()}


def reorder_like_reference(key: str, state_dict: StateDict) -> dict[str, torch.Tensor]:
    """``state_dict`` in the order reference ``key`` registers its modules.

    The converters pair entries by order, and a state dict does not always come in it:
    ``safetensors`` stores its tensors sorted by name, and a dict rebuilt by hand may be in any
    order. Keys the reference does not have keep their relative order, after the known ones
    (the converter then says what does not fit). A BatchNorm whose ``num_batches_tracked`` is
    absent (files saved before PyTorch 0.4.1, as torchvision's and pretrainedmodels' older
    ones were) gets a 0 counter, as ``nn.BatchNorm2d`` itself does when it loads such a file.
    """
    order = {k: i for i, k in enumerate(reference_keys().get(key, ()))}
    items = dict(state_dict)
    for k in order:
        stem = k[: -len("num_batches_tracked")]
        if k.endswith("num_batches_tracked") and k not in items and stem + "running_mean" in items:
            items[k] = torch.tensor(0, dtype=torch.long)
    return dict(sorted(items.items(), key=lambda kv: order.get(kv[0], len(order))))


def check_fits(ours: StateDict, converted: StateDict, what: str) -> None:
    """Raise a ``ValueError`` listing the missing, unexpected and mis-shaped entries, if any."""
    missing = sorted(set(ours) - set(converted))
    unexpected = sorted(set(converted) - set(ours))
    wrong = [f"{k}: {tuple(v.shape)} != {tuple(ours[k].shape)}" for k, v in converted.items()
             if k in ours and tuple(v.shape) != tuple(ours[k].shape)]
    if missing or unexpected or wrong:
        lines = ([f"missing: {k}" for k in missing[:5]] + [f"unexpected: {k}" for k in unexpected[:5]]
                 + [f"shape: {w}" for w in wrong[:5]])
        raise ValueError(f"the state dict does not fit {what}:\n  " + "\n  ".join(lines))


def from_reference(key: str, state_dict: StateDict, **model_kwargs) -> nn.Module:
    """Build our model for reference ``key`` and load that implementation's ``state_dict``.

    >>> model = from_reference("torchvision.inception_v3", torchvision_model.state_dict())

    The result computes the same function as the reference (checked in the tests on
    deterministic fingerprint weights). The entries may come in any order (a ``.safetensors``
    file returns them sorted): they are put back in the reference's own. Unknown keys or
    mismatched shapes raise a ``ValueError`` listing what differs.
    """
    from .registry import create_model

    ref = get_reference(key)
    model = create_model(ref.model, **{**ref.kwargs, **model_kwargs})
    ours = model.state_dict()
    converted = ref.convert(reorder_like_reference(key, state_dict), model)
    check_fits(ours, converted, f"{ref.model} as {key}")
    floats = [v.dtype for v in converted.values() if v.dtype.is_floating_point]
    if floats:
        model = model.to(floats[0])
    model.load_state_dict(converted)
    return model
