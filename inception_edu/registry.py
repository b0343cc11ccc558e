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


def create_model(name: str, num_classes: int | None = None, pretrained=False, **kwargs) -> nn.Module:
    """Build a registered model: ``create_model('inception_v3', num_classes=10, aux_logits=False)``.

    ``num_classes`` defaults to the builder's own: 1000 (ImageNet) for the full-size networks,
    10 for the ``*_cifar`` ones.

    ``pretrained``: ``True`` (or a weights name from ``list_pretrained()``) loads the weights
    the reference library publishes, downloaded once into torch.hub's cache; a path loads a
    local ``.pth`` / ``.pt`` / ``.bin`` / ``.safetensors`` file (see
    :mod:`inception_edu.pretrained`). ``progress=False`` hides the download bar.

    Every model carries ``model.pretrained_cfg``: which weights it holds and the input they
    expect (``input_size``, ``crop_pct``, ``interpolation``, ``mean``, ``std``, ...), for
    :func:`inception_edu.eval_transform`; without weights, its native size.
    """
    from .pretrained import build_pretrained, native_cfg

    if name not in _MODELS:
        raise _unknown(name)
    # timm's features_only=True, out_indices=...: the network cut after its last requested
    # tap, whose forward returns the list of feature maps (inception_edu.features.FeatureNet).
    features_only, out_indices = kwargs.pop("features_only", False), kwargs.pop("out_indices", None)
    if features_only or out_indices is not None:
        if not features_only:
            raise ValueError("out_indices picks the feature maps that features_only=True returns; pass both")
        from .features import FeatureNet
        return FeatureNet(create_model(name, num_classes, pretrained=pretrained, **kwargs), out_indices)
    if pretrained is not False and pretrained is not None:
        return build_pretrained(name, pretrained, num_classes=num_classes, **kwargs)
    builder = _MODELS[name]
    params = inspect.signature(builder).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [k for k in kwargs if k not in params]
    if unknown and not accepts_any:
        options = [p for p in params if p != "num_classes"]
        raise ValueError(f"{name} does not take {', '.join(map(repr, unknown))}; "
                         f"its options are: {', '.join(options)}, pretrained")
    if num_classes is None:
        num_classes = params["num_classes"].default
    model = builder(num_classes=num_classes, **kwargs)
    # What built it, so a training checkpoint can rebuild it (inception_edu.train.load_model).
    model.create_args = (name, {"num_classes": num_classes, **kwargs})
    model.pretrained_cfg = native_cfg(model)
    return model
