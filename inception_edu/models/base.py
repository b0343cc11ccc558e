"""The surface every network shares, and the stage table it is built from.

A model is a list of :class:`Stage` rows -- the paper's table in code -- plus a head. The
book reads the same rows to print shape tables and per-stage costs
(:func:`inception_edu.cost.stage_table`), so nothing hard-codes indices like
``'features.17'``.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..features import feature_take_indices


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
    ``reset_classifier(num_classes)``, ``num_features``, ``feature_info``,
    ``forward_intermediates``, ``set_grad_checkpointing``; plus ``stages`` (the table),
    ``forward_with_aux`` (logits and aux logits in any mode), ``min_size`` (the smallest input
    side the trunk accepts, in every mode) and ``aux_min_size`` (the heads', training only).
    """

    def __init__(self, name: str, stages: Sequence[Stage], num_features: int, num_classes: int = 1000,
                 *, min_size: int, in_chans: int = 3, drop_rate: float = 0.0,
                 aux_heads: dict[str, nn.Module] | None = None, pre_logits: nn.Module | None = None,
                 head_features: int | None = None, transform_input: bool = False,
                 default_size: int = 224, aux_min_size: int | None = None):
        super().__init__()
        self.name = name
        self.stages = list(stages)
        #: The smallest input side the trunk accepts: the minimum in eval mode, and in training
        #: mode without auxiliary heads.
        self.min_size = min_size
        #: The smallest side for the auxiliary heads, which run in training mode only (and in
        #: :meth:`forward_with_aux`); ``min_size`` where the heads take whatever the trunk does.
        self.aux_min_size = max(min_size, aux_min_size or min_size) if aux_heads else min_size
        #: :meth:`set_grad_checkpointing`: recompute each stage in backward instead of storing it.
        self.grad_checkpointing = False
        self._tap_cache: list[int] | None = None
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
        """Raise a ``ValueError`` that says what to do, before any convolution fails.

        The trunk's rules apply in every mode; the auxiliary heads' larger minimum only in
        training mode, the only mode that runs them (as in torchvision).
        """
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
        if self.training and len(self.aux) > 0:
            self._check_aux_input(x)

    def _check_aux_input(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        if min(h, w) < self.aux_min_size:
            a = self.aux_min_size
            raise ValueError(f"{self.name} in training mode (and forward_with_aux) runs its auxiliary heads, "
                             f"which need inputs of "
                             f"at least {a}x{a} pixels; got {h}x{w}. Resize the images to {a}x{a}, build "
                             f"the model with aux_logits=False to train without the heads, or call "
                             f"model.eval() for inference (the trunk alone takes {self.min_size}x"
                             f"{self.min_size} and up).")

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        # torchvision's transform_input: turn ImageNet-normalized input into the [-1, 1]
        # scaling the original TF weights were trained with.
        if not self.transform_input:
            return x
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        chans = [x[:, i:i + 1] * (std[i] / 0.5) + (mean[i] - 0.5) / 0.5 for i in range(3)]
        return torch.cat(chans, 1)

    def _checked(self, x: torch.Tensor, run: Callable[[torch.Tensor], object], with_aux: bool = False):
        """``run(transformed x)`` after the input checks, in eager mode.

        Tracing (``torch.fx`` hands a ``Proxy``, which has no shape to check) skips the checks,
        so ``symbolic_trace`` and torchvision's ``create_feature_extractor`` work;
        ``torch.compile`` keeps them (they read static shapes, no graph break).
        """
        if isinstance(x, torch.fx.Proxy):
            return run(self._transform_input(x))
        self.check_input(x)
        if with_aux and not self.training:
            self._check_aux_input(x)
        if self.training and x.shape[0] == 1 and not torch.compiler.is_compiling():
            with self._batch_of_one_guard():
                return run(self._transform_input(x))
        return run(self._transform_input(x))

    @contextmanager
    def _batch_of_one_guard(self):
        """Training on one image: name the BatchNorm that would see one value per channel.

        torch refuses such a layer ("Expected more than 1 value per channel"); in this family
        it is an auxiliary head's BatchNorm on its 1x1 map, a trunk stage on a 1x1 grid at the
        smallest inputs, or a BatchNorm1d after the pooled features.
        """
        def hook(module, args, name):
            t = args[0]
            if module.training and t.dim() >= 2 and t.numel() // t.shape[1] == 1:
                raise ValueError(f"{self.name} in training mode cannot take a batch of one image here: "
                                 f"BatchNorm '{name}' would normalize a single value per channel (its "
                                 f"input is {tuple(t.shape)}). Train with batches of at least 2 images, "
                                 f"or call model.eval() for inference (BatchNorm then uses its running "
                                 f"statistics).")
        handles = [m.register_forward_pre_hook(partial(hook, name=n)) for n, m in self.named_modules()
                   if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    # -- trunk ----------------------------------------------------------------------------
    def _run_stage(self, stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled() and not isinstance(x, torch.fx.Proxy):
            # Keep the activations of stage boundaries only; recompute inside in backward.
            # The recomputation must not update BatchNorm's running statistics a second time.
            return checkpoint(stage, x, use_reentrant=False,
                              context_fn=lambda: (nullcontext(), _keep_running_stats(stage)))
        return stage(x)

    def _trunk(self, x: torch.Tensor, with_aux: bool):
        aux = []
        for name, stage in self.features.named_children():
            x = self._run_stage(stage, x)
            if with_aux and name in self.aux:
                aux.append(self.aux[name](x))
        return x, tuple(aux)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._trunk(self._transform_input(x), with_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.global_pool(x), 1)
        x = self.pre_logits(self.head_drop(x))
        return x if pre_logits else self.fc(x)

    def forward_with_aux(self, x: torch.Tensor) -> InceptionOutputs:
        """Logits *and* every auxiliary head's logits, in any mode (what training runs).

        In eval mode the heads use BatchNorm's running statistics and dropout is off: the
        inference-rule cost of the heads (:func:`inception_edu.cost.count_macs`'s
        ``with_aux=True``). The input must suit the heads (``aux_min_size``).
        """
        def run(x):
            x, aux = self._trunk(x, with_aux=True)
            return InceptionOutputs(self.forward_head(x), aux)
        return self._checked(x, run, with_aux=True)

    def forward(self, x: torch.Tensor):
        if self.training and len(self.aux) > 0:
            return self.forward_with_aux(x)
        return self._checked(x, lambda x: self.forward_head(self._trunk(x, with_aux=False)[0]))

    # -- feature maps (timm's API, see inception_edu.features) ---------------------------
    @property
    def feature_info(self) -> list[dict]:
        """One dict per tap -- the last stage at each grid reduction -- derived from the stage
        table: ``num_chs``, ``reduction`` (input side over map side) and ``module``, the
        stage's name in the model (``"features.Mixed_6e"``), as timm's ``feature_info``."""
        return [dict(num_chs=c, reduction=r, module=f"features.{name}", stage=i)
                for i, name, c, r in self._taps()]

    def _taps(self) -> list[tuple[int, str, int, int]]:
        """(stage index, name, channels, reduction) of each tap, from the modules' strides
        and widths (no forward pass, so tracing and compiling see plain numbers)."""
        rows, chans, red = [], self.in_chans, 1
        for i, s in enumerate(self.stages):
            chans, red = _out_channels(s.module, chans), red * _stride(s.module)
            if rows and rows[-1][3] == red:
                rows[-1] = (i, s.name, chans, red)
            else:
                rows.append((i, s.name, chans, red))
        return rows

    def _tap_stages(self) -> list[int]:
        # The taps' stage indices, read once: strides do not change after construction
        # (reset_classifier may change a width, never a stride).
        if self._tap_cache is None:
            self._tap_cache = [t[0] for t in self._taps()]
        return self._tap_cache

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = "NCHW",
                              intermediates_only: bool = False):
        """The feature maps at the taps ``indices`` picks, as timm's ``forward_intermediates``.

        ``indices``: ``None`` all taps of :attr:`feature_info`, an int ``n`` the last ``n``, a
        list those (negative from the end). ``stop_early``: do not run the stages after the
        last requested tap. ``norm`` has nothing to apply here (no final norm layer).
        Returns the list of maps if ``intermediates_only``, else ``(final features, maps)``;
        with ``stop_early`` the "final features" are the output of the last stage run.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW' (the maps are N x C x H x W); got {output_fmt!r}")
        taps = self._tap_stages()
        take, last = feature_take_indices(len(taps), indices)
        take_stages = [taps[i] for i in take]
        stop = taps[last] + 1 if stop_early else len(self.stages)

        def run(x):
            maps = []
            for i, stage in enumerate(self.features):
                if i == stop:
                    break
                x = self._run_stage(stage, x)
                if i in take_stages:
                    maps.append(x)
            return maps if intermediates_only else (x, maps)
        return self._checked(x, run)

    def prune_intermediate_layers(self, indices: int | Sequence[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Drop the stages after the last tap ``indices`` picks (timm's method); with
        ``prune_head`` also the auxiliary heads and the classifier. Returns the tap indices."""
        taps = self._tap_stages()
        take, last = feature_take_indices(len(taps), indices)
        self.stages = self.stages[:taps[last] + 1]
        self.features = self.features[:taps[last] + 1]
        if prune_head:
            self.aux = nn.ModuleDict()
            self.pre_logits, self.fc, self.num_classes = nn.Identity(), nn.Identity(), 0
        return take

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage in the backward pass instead of keeping its activations
        (``torch.utils.checkpoint``): the same gradients for less memory, at about one more
        forward pass of compute."""
        self.grad_checkpointing = bool(enable)

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


# -- helpers: what a stage does to the grid, read off its modules ---------------------------------
def _branch_list(module: nn.Module):
    """The parallel branches of an Inception module (``layers.Branches``,
    ``layers.ResidualBranches``), or ``None`` for a module that runs its children in order."""
    branches = getattr(module, "branches", None)
    return list(branches) if isinstance(branches, nn.ModuleList) else None


def _stride(module: nn.Module) -> int:
    """How much ``module`` shrinks the grid: its convs' and pools' strides along a path
    (parallel branches agree, or their outputs could not be concatenated)."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        s = module.stride
        return int(s[0] if isinstance(s, (tuple, list)) else s)
    branches = _branch_list(module)
    if branches is not None:
        return max(_stride(b) for b in branches)
    return math.prod(_stride(c) for c in module.children())


def _out_channels(module: nn.Module, cin: int) -> int:
    """The channels ``module`` returns for ``cin`` input channels."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
    branches = _branch_list(module)
    if branches is not None:
        if hasattr(module, "proj"):  # residual: x + proj(concat) keeps the input width
            return cin
        return sum(_out_channels(b, cin) for b in branches)
    for child in module.children():
        cin = _out_channels(child, cin)
    return cin


@contextmanager
def _keep_running_stats(module: nn.Module):
    """Restore the BatchNorm running statistics (and batch counts) a recomputation changed."""
    saved = [(b, b.clone()) for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             for b in m.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, s in saved:
                b.copy_(s)
