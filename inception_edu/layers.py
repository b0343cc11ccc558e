"""The building blocks every network in the family is made of.

Three ideas cover the whole family:

* ``ConvBlock``: convolution, optional normalization, optional ReLU. GoogLeNet (2014) has no
  normalization and a conv bias; BN-Inception and everything after it use BatchNorm and a
  bias-free conv. One class, configured once per network with :func:`functools.partial`
  (as timm passes ``partial(ConvNormAct, ...)`` around).
* ``Branches``: "run these branches on the same input, concatenate along channels" -- the
  Inception module itself. A module is a list of ``nn.Sequential`` branches, not a forward
  method that repeats ``torch.cat`` by hand.
* ``ResidualBranches``: the Inception-ResNet block, ``x + scale * proj(cat(branches(x)))``,
  with the residual scaling of Szegedy et al. 2017, Sec. 3.3.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import torch
from torch import nn


class ConvBlock(nn.Module):
    """Conv2d -> (BatchNorm2d) -> (ReLU).

    Submodules are named ``conv``, ``bn`` and ``act`` so state dicts read like torchvision's
    ``BasicConv2d`` (``conv.weight``, ``bn.running_mean``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 *, norm: bool = True, eps: float = 1e-3, momentum: float = 0.1,
                 bias: bool | None = None, act: bool = True):
        super().__init__()
        # A conv followed by BatchNorm needs no bias: BN's shift absorbs it.
        bias = (not norm) if bias is None else bias
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=padding, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels, eps=eps, momentum=momentum) if norm else nn.Identity()
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


#: The factory most of the family uses: BN with eps 1e-3 (TF's default, kept by torchvision
#: and timm for weight compatibility), bias-free conv, ReLU.
conv_bn = partial(ConvBlock, norm=True, eps=1e-3)
#: GoogLeNet as published (2014): conv with bias + ReLU, no normalization.
conv_plain = partial(ConvBlock, norm=False)

ConvFactory = Callable[..., nn.Module]


def seq(*layers: nn.Module) -> nn.Sequential:
    """A branch: layers applied in order."""
    return nn.Sequential(*layers)


class Branches(nn.Module):
    """An Inception module: every branch sees the same input; outputs are concatenated.

    ``out_channels`` is the sum of the branches' widths when it can be read off the last
    layer of each branch (a pooling-only branch passes its input width through).
    """

    def __init__(self, branches: Sequence[nn.Module], out_channels: int | None = None):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class ResidualBranches(nn.Module):
    """An Inception-ResNet block: ``act(x + scale * proj(concat(branches(x))))``.

    ``proj`` is the 1x1 "linear" convolution (no BN, no activation) that restores the input
    width so the sum is possible (Szegedy et al. 2017, Fig. 10-13). ``scale`` is the residual
    scaling of their Sec. 3.3: "scaling down the residuals before adding them ... seemed to
    stabilize the training", with factors between 0.1 and 0.3.
    """

    def __init__(self, branches: Sequence[nn.Module], proj: nn.Module, scale: float = 1.0,
                 act: bool = True):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.proj = proj
        self.scale = scale
        self.act = nn.ReLU(inplace=False) if act else nn.Identity()

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The unscaled residual ``proj(concat(branches(x)))``: what the chapters measure."""
        return self.proj(torch.cat([branch(x) for branch in self.branches], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.scale * self.residual(x))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class LocalResponseNorm(nn.LocalResponseNorm):
    """GoogLeNet's LRN (Krizhevsky et al. 2012), as in the Caffe model: size 5, alpha 1e-4, beta 0.75."""

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__(size, alpha=alpha, beta=beta, k=k)
