"""One registry of model builders (timm's ``@register_model``), and the names users type."""
from __future__ import annotations

import difflib
import fnmatch
import inspect
from typing import Callable

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` is a shell-style wildcard like ``'*cifar*'``."""
    names = sorted(_MODELS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, _MODELS, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ValueError(f"unknown model {name!r}.{hint} See list_models() for all "
                      f"{len(_MODELS)} names.")


def create_model(name: str, num_classes: int | None = None, **kwargs) -> nn.Module:
    """Build a registered model: ``create_model('inception_v3', num_classes=10, aux_logits=False)``.

    ``num_classes`` defaults to the builder's own: 1000 (ImageNet) for the full-size networks,
    10 for the ``*_cifar`` ones.
    """
    if name not in _MODELS:
        raise _unknown(name)
    builder = _MODELS[name]
    params = inspect.signature(builder).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [k for k in kwargs if k not in params]
    if unknown and not accepts_any:
        options = [p for p in params if p != "num_classes"]
        raise ValueError(f"{name} does not take {', '.join(map(repr, unknown))}; "
                         f"its options are: {', '.join(options)}")
    if num_classes is None:
        num_classes = params["num_classes"].default
    model = builder(num_classes=num_classes, **kwargs)
    # What built it, so a training checkpoint can rebuild it (inception_edu.train.load_model).
    model.create_args = (name, {"num_classes": num_classes, **kwargs})
    return model
