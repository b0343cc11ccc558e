"""The surface every network shares, and the stage table it is built from.

A model is a list of :class:`Stage` rows -- the paper's table in code -- plus a head. The
book reads the same rows to print shape tables and per-stage costs
(:func:`inception_edu.cost.stage_table`), so nothing hard-codes indices like
``'features.17'``.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import torch
from torch import nn


@dataclass
class Stage:
    """One row of a network's table."""

    #: Key of the stage in ``model.features`` and in the book's tables (e.g. ``"Mixed_5b"``).
    name: str
    #: The layers of the row.
    module: nn.Module
    #: The row's name in the paper's table, when it has one (e.g. ``"inception (3a)"``).
    label: str = ""
    #: What kind of row it is, so a chapter can colour or group rows:
    #: ``stem``, ``inception``, ``reduction``, ``residual``, ``pool``, ``classifier``.
    kind: str = "stem"


class InceptionOutputs(NamedTuple):
    """What a model with auxiliary heads returns in training mode (torchvision's idea)."""

    logits: torch.Tensor
    #: One tensor per auxiliary head, ordered from the earliest tap to the latest.
    aux_logits: tuple[torch.Tensor, ...]


class InceptionNet(nn.Module):
    """A trunk of stages, optional auxiliary heads, and a pool -> dropout -> linear head.

    Surface (timm's): ``forward_features``, ``forward_head(x, pre_logits=False)``,
    ``reset_classifier(num_classes)``, ``num_features``; plus ``stages`` (the table) and
    ``min_size`` (the smallest input side the trunk accepts).
    """

    def __init__(self, name: str, stages: Sequence[Stage], num_features: int, num_classes: int = 1000,
                 *, min_size: int, in_chans: int = 3, drop_rate: float = 0.0,
                 aux_heads: dict[str, nn.Module] | None = None, pre_logits: nn.Module | None = None,
                 head_features: int | None = None, transform_input: bool = False,
                 default_size: int = 224):
        super().__init__()
        self.name = name
        self.stages = list(stages)
        self.min_size = min_size
        self.default_size = default_size  # the native input side, used for cost tables
        self.in_chans = in_chans
        self.transform_input = transform_input
        self.num_classes = num_classes
        #: Width of the pooled features (what ``forward_head(pre_logits=True)`` returns,
        #: before ``pre_logits`` maps it to ``head_features``).
        self.num_features = num_features
        self.features = nn.Sequential(OrderedDict((s.name, s.module) for s in self.stages))
        # Auxiliary heads, keyed by the stage whose output they read.
        self.aux = nn.ModuleDict(aux_heads or {})
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        # An optional projection between the pooled features and the classifier
        # (facenet's Inception-ResNet-v1 has Linear(1792, 512) + BatchNorm1d there).
        self.pre_logits = pre_logits if pre_logits is not None else nn.Identity()
        self.head_features = head_features or num_features
        self.fc = nn.Linear(self.head_features, num_classes) if num_classes > 0 else nn.Identity()

    # -- input ----------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` that says what to do, before any convolution fails."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{self.name} expects a batch of images shaped (N, {self.in_chans}, H, W); "
                             f"got {shape}. Add a batch dimension with x.unsqueeze(0) for one image.")
        if x.shape[1] != self.in_chans:
            raise ValueError(f"{self.name} expects {self.in_chans} input channels; got {x.shape[1]}. "
                             f"Convert the images (e.g. grayscale -> x.repeat(1, 3, 1, 1)) or "
                             f"create the model with in_chans={x.shape[1]}.")
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            raise ValueError(f"{self.name} needs inputs of at least {self.min_size}x{self.min_size} "
                             f"pixels; got {h}x{w}. Resize the images (native size "
                             f"{self.default_size}x{self.default_size}) or use a model made for small "
                             f"inputs (see list_models('*cifar*')).")

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        # torchvision's transform_input: turn ImageNet-normalized input into the [-1, 1]
        # scaling the original TF weights were trained with.
        if not self.transform_input:
            return x
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        chans = [x[:, i:i + 1] * (std[i] / 0.5) + (mean[i] - 0.5) / 0.5 for i in range(3)]
        return torch.cat(chans, 1)

    # -- trunk ----------------------------------------------------------------------------
    def _trunk(self, x: torch.Tensor, with_aux: bool):
        aux = []
        for name, stage in self.features.named_children():
            x = stage(x)
            if with_aux and name in self.aux:
                aux.append(self.aux[name](x))
        return x, tuple(aux)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._trunk(self._transform_input(x), with_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.global_pool(x), 1)
        x = self.pre_logits(self.head_drop(x))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor):
        self.check_input(x)
        with_aux = self.training and len(self.aux) > 0
        x, aux = self._trunk(self._transform_input(x), with_aux)
        logits = self.forward_head(x)
        return InceptionOutputs(logits, aux) if with_aux else logits

    # -- classifier -----------------------------------------------------------------------
    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (and the auxiliary heads' last layers) for ``num_classes``."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.head_features, num_classes) if num_classes > 0 else nn.Identity()
        for head in self.aux.values():
            if hasattr(head, "reset_classifier"):
                head.reset_classifier(num_classes)

    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]
