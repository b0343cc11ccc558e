"""Feature maps out of a network, with timm's names and meaning.

timm's conventions, which users of feature pyramids, detectors and segmenters already know:

* ``model.feature_info``: one dict per *tap* -- the last stage at each grid reduction --
  with ``num_chs`` (channels), ``reduction`` (input side / map side, a power of two) and
  ``module`` (the tapped module's name in the model), in the order the stages run.
* ``model.forward_intermediates(x, indices=None, norm=False, stop_early=False,
  output_fmt="NCHW", intermediates_only=False)``: the maps at the taps ``indices`` picks
  (``None``: all; an int ``n``: the last ``n``; a list: those, negative counting from the end),
  and the final features unless ``intermediates_only``.
* ``create_model(name, features_only=True, out_indices=...)``: a :class:`FeatureNet`, a module
  whose forward returns the list of maps; its ``feature_info`` is a :class:`FeatureInfo`.

See timm's ``timm/models/_features.py`` (``feature_take_indices``, ``FeatureInfo``) and
``FeatureGetterNet``, whose semantics these follow.
"""
from __future__ import annotations

from copy import deepcopy
from typing import Sequence

import torch
from torch import nn


def feature_take_indices(num_features: int, indices: int | Sequence[int] | None = None) -> tuple[list[int], int]:
    """The absolute tap indices ``indices`` selects, and the largest (timm's function).

    ``None`` -> all ``num_features`` taps; an int ``n`` -> the last ``n``; a sequence ->
    those taps, negative ones counted from the end.
    """
    if indices is None:
        indices = num_features
    if isinstance(indices, bool) or not isinstance(indices, (int, Sequence)) or isinstance(indices, str):
        raise TypeError(f"indices must be None, an int (the last n taps) or a list of tap indices; "
                        f"got {indices!r}")
    if isinstance(indices, int):
        if not 0 < indices <= num_features:
            raise ValueError(f"indices={indices} asks for the last {indices} taps; this model has "
                             f"{num_features} (see model.feature_info): pass 1 to {num_features}")
        take = list(range(num_features - indices, num_features))
    else:
        take = []
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"tap indices must be whole numbers; got {i!r} in {indices!r}")
            idx = num_features + i if i < 0 else i
            if not 0 <= idx < num_features:
                raise ValueError(f"tap index {i} is out of range: this model has {num_features} taps "
                                 f"(0 to {num_features - 1}, or -{num_features} to -1; see model.feature_info)")
            take.append(idx)
        if not take:
            raise ValueError("indices is empty: ask for at least one tap (None takes them all)")
    return take, max(take)


class FeatureInfo:
    """timm's ``FeatureInfo``: the taps' dicts, and accessors for those ``out_indices`` picks."""

    def __init__(self, feature_info: Sequence[dict], out_indices: Sequence[int]):
        self.info = [dict(fi, index=i) for i, fi in enumerate(feature_info)]
        self.out_indices = tuple(out_indices)

    def from_other(self, out_indices: Sequence[int]) -> FeatureInfo:
        return FeatureInfo(deepcopy(self.info), out_indices)

    def get(self, key: str, idx: int | Sequence[int] | None = None):
        """``key`` of every output tap (``idx=None``), of tap ``idx``, or of the taps in ``idx``."""
        if idx is None:
            return [self.info[i][key] for i in self.out_indices]
        if isinstance(idx, (list, tuple)):
            return [self.info[i][key] for i in idx]
        return self.info[idx][key]

    def get_dicts(self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None):
        pick = lambda d: dict(d) if keys is None else {k: d[k] for k in keys}  # noqa: E731
        if idx is None:
            return [pick(self.info[i]) for i in self.out_indices]
        if isinstance(idx, (list, tuple)):
            return [pick(self.info[i]) for i in idx]
        return pick(self.info[idx])

    def channels(self, idx=None):
        return self.get("num_chs", idx)

    def reduction(self, idx=None):
        return self.get("reduction", idx)

    def module_name(self, idx=None):
        return self.get("module", idx)

    def __getitem__(self, item):
        return self.info[item]

    def __len__(self) -> int:
        return len(self.info)

    def __repr__(self) -> str:
        return f"FeatureInfo(out_indices={self.out_indices}, info={self.info})"


class FeatureNet(nn.Module):
    """What ``create_model(name, features_only=True, out_indices=...)`` returns (timm's
    ``FeatureGetterNet``): the network cut after its last requested tap, without its head;
    ``forward(x)`` is the list of feature maps at ``out_indices``, shallowest first."""

    def __init__(self, model: nn.Module, out_indices: int | Sequence[int] | None = None):
        super().__init__()
        if not hasattr(model, "forward_intermediates"):
            raise TypeError(f"features_only needs a model with forward_intermediates; got {type(model).__name__}")
        info = model.feature_info
        take, _ = feature_take_indices(len(info), out_indices)
        model.prune_intermediate_layers(take, prune_head=True)
        self.model = model
        self.out_indices = tuple(take)
        self.feature_info = FeatureInfo(info, take)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.model.set_grad_checkpointing(enable)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model.forward_intermediates(x, list(self.out_indices), intermediates_only=True)
