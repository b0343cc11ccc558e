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

And the builders more than one paper uses, written once here so that no model file imports
another: the n x 1 / 1 x n factorization (:func:`conv_nxn`), the expanded 3x3 bank
(:func:`expanded_3x3`), the two grid reductions of Inception-v3, -v4 and both
Inception-ResNets (:func:`reduction_a`, :func:`reduction_b`), the depthwise-separable first
layer (:func:`separable_conv`), the width multiplier of every ``*_cifar`` builder
(:func:`width_multiplier`), and :func:`remove_batchnorm` (a network as it would have been
built before BatchNorm).
"""
from __future__ import annotations

import math
from collections import OrderedDict
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


# -- builders shared by several papers ------------------------------------------------------------
def conv_nxn(conv: ConvFactory, cin: int, cmid: int, cout: int, n: int, *, factorized: bool = True,
             first: str = "1xn") -> list[nn.Module]:
    """An n x n convolution (padded, size-preserving) or its factorization (Rethinking, Sec. 3.2,
    Fig. 3; used by Inception-v3, -v4 and the Inception-ResNets).

    Factorized: ``1 x n`` (cin -> cmid) then ``n x 1`` (cmid -> cout), or the other way round
    with ``first="nx1"``; "the same receptive field ... for 2n instead of n^2 weights per
    channel pair". Unfactorized: one ``n x n`` conv cin -> cout (``cmid`` has no role).
    """
    if first not in ("1xn", "nx1"):
        raise ValueError(f"first must be '1xn' or 'nx1'; got {first!r}")
    if not factorized:
        return [conv(cin, cout, n, padding=n // 2)]
    row, col = ((1, n), (0, n // 2)), ((n, 1), (n // 2, 0))
    (k1, p1), (k2, p2) = (row, col) if first == "1xn" else (col, row)
    return [conv(cin, cmid, k1, padding=p1), conv(cmid, cout, k2, padding=p2)]


def expanded_3x3(conv: ConvFactory, cin: int, cout: int, *, factorized: bool = True) -> nn.Module:
    """Rethinking's Fig. 7 expanded filter bank: 1x3 and 3x1 side by side, concatenated
    (2 * cout wide; Inception-v3's and -v4's 8x8 modules).

    Unfactorized: one 3x3 conv of the same total width (2 * cout).
    """
    if not factorized:
        return conv(cin, 2 * cout, 3, padding=1)
    return Branches([seq(conv(cin, cout, (1, 3), padding=(0, 1))),
                     seq(conv(cin, cout, (3, 1), padding=(1, 0)))], out_channels=2 * cout)


def reduction_a(conv: ConvFactory, in_channels: int, k: int, l: int, m: int, n: int, *,
                factorized: bool = True) -> Branches:
    """35x35 -> 17x17 without a representational bottleneck: 3x3/2 (n) | 1x1 (k) -> 3x3 (l) ->
    3x3/2 (m) | max pool 3x3/2; ``n + m + in_channels`` channels out.

    Inception-v4's Fig. 7, with ``k, l, m, n`` from its Table 1 (Inception-v4: 192, 224, 256,
    384; Inception-ResNet-v1: 192, 192, 256, 384; -v2: 256, 256, 384, 384); Inception-v3's
    ``Mixed_6a`` (Rethinking's Fig. 10 pattern) is the same block with 64, 96, 96, 384.
    Unfactorized (a chapter's switch), the two 3x3 of the middle branch are one 5x5/2 with
    padding 1, so the grid sizes agree.
    """
    middle = ([conv(k, l, 3, padding=1), conv(l, m, 3, stride=2)] if factorized
              else [conv(k, m, 5, stride=2, padding=1)])
    return Branches([
        seq(conv(in_channels, n, 3, stride=2)),
        seq(conv(in_channels, k, 1), *middle),
        seq(nn.MaxPool2d(3, stride=2)),
    ], out_channels=n + m + in_channels)


def reduction_b(conv: ConvFactory, in_channels: int, c3x3: tuple[int, int], c7x7: tuple[int, int, int], *,
                factorized: bool = True) -> Branches:
    """17x17 -> 8x8: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool 3x3/2.

    Inception-v3's ``Mixed_7a`` (torchvision ``InceptionD``) and Inception-v4's Reduction-B
    (Fig. 8). ``c3x3`` = (1x1, 3x3/2) widths; ``c7x7`` = (1x1, 1x7, 7x1 and 3x3/2) widths.
    ``factorized=False`` puts one 7x7 where the 1x7 -> 7x1 pair is.
    """
    a, b, c = c7x7
    return Branches([
        seq(conv(in_channels, c3x3[0], 1), conv(c3x3[0], c3x3[1], 3, stride=2)),
        seq(conv(in_channels, a, 1), *conv_nxn(conv, a, b, c, 7, factorized=factorized),
            conv(c, c, 3, stride=2)),
        seq(nn.MaxPool2d(3, stride=2)),
    ], out_channels=c3x3[1] + c + in_channels)


def separable_conv(conv: ConvFactory, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                   padding: int = 0, *, depth_multiplier: int = 1) -> nn.Sequential:
    """A depthwise-separable convolution: a ``k x k`` depthwise conv giving ``depth_multiplier``
    maps per input channel (no bias, no activation), then ``conv``'s 1x1 pointwise block.

    Weights: ``k*k*C_in*d + C_in*d*C_out`` (plus the pointwise bias when ``conv`` has one).
    The BatchNorm paper (Ioffe & Szegedy 2015, appendix) uses "separable convolution with depth
    multiplier 8 on the first convolutional layer"; that layer gives GoogLeNet's Table 1 row
    "convolution 7x7/2" exactly: 7*7*3*8 + 24*64 = 2,712 weights ("2.7K") and 34.0 M
    multiply-adds on the 112x112 grid ("34M"). Submodules ``depthwise`` and ``pointwise``
    (TensorFlow's ``separable_conv2d`` names).
    """
    if not (isinstance(depth_multiplier, int) and depth_multiplier >= 1):
        raise ValueError(f"depth_multiplier must be a whole number >= 1; got {depth_multiplier!r}")
    mid = in_channels * depth_multiplier
    return nn.Sequential(OrderedDict([
        ("depthwise", nn.Conv2d(in_channels, mid, kernel_size, stride=stride, padding=padding,
                                groups=in_channels, bias=False)),
        ("pointwise", conv(mid, out_channels, 1)),
    ]))


def width_multiplier(width_mult: float, *, divisor: int = 1, minimum: int = 1) -> Callable[[int], int]:
    """The width rule of every ``*_cifar`` builder: ``c -> max(minimum, round(c * width_mult / divisor))``.

    ``divisor`` shrinks the paper's widths first (the small GoogLeNet and Inception-v3 use 1/8
    of them); ``minimum`` keeps a layer from vanishing. Raises a ``ValueError`` that says what
    to pass when ``width_mult`` is not a positive finite number.
    """
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not (
            math.isfinite(width_mult) and width_mult > 0):
        raise ValueError(f"width_mult must be a positive number (1.0 = the builder's own widths, "
                         f"0.5 = half of them); got {width_mult!r}")

    def scaled(c: int) -> int:
        return max(minimum, round(c * width_mult / divisor))

    return scaled


# -- a network as it would have been built before BatchNorm ---------------------------------------
_INITS = {
    # Glorot & Bengio 2010, what a 2014 network (GoogLeNet's Caffe model: "xavier") started from.
    "xavier": lambda w: nn.init.xavier_uniform_(w),
    # He et al. 2015: variance 2 / fan-in, for ReLU networks.
    "he": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
}
_INITS["kaiming"] = _INITS["he"]  # torch's name for the same rule


def remove_batchnorm(model: nn.Module, init: str | None = "xavier", *, conv_bias: bool = True,
                     reinit: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)) -> nn.Module:
    """Remove every :class:`ConvBlock`'s BatchNorm (in place; returns ``model``) and
    re-initialize the convolutions and linear layers with ``init``.

    ``init``: ``"xavier"`` (Glorot uniform, the 2014 way, chapter 3) or ``"he"`` (= ``"kaiming"``,
    He normal, variance 2 / fan-in, chapter 4); biases start at zero. ``conv_bias=True`` gives every conv
    that loses its BatchNorm a bias back, as GoogLeNet (2014) had them: the bias-free conv of
    ``conv_bn`` relies on BN's shift, which is now gone. ``init=None`` keeps the weights;
    ``reinit`` names the layer types to re-initialize (``(nn.Conv2d,)`` leaves the classifier
    at torch's default).
    """
    if init is not None and init not in _INITS:
        raise ValueError(f"init must be one of {', '.join(map(repr, _INITS))} or None; got {init!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"remove_batchnorm takes an nn.Module; got {type(model).__name__}")
    for block in model.modules():
        if isinstance(block, ConvBlock) and isinstance(block.bn, nn.modules.batchnorm._BatchNorm):
            block.bn = nn.Identity()
            old = block.conv
            if conv_bias and old.bias is None:
                new = nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size, stride=old.stride,
                                padding=old.padding, dilation=old.dilation, groups=old.groups, bias=True,
                                padding_mode=old.padding_mode, device=old.weight.device,
                                dtype=old.weight.dtype)
                with torch.no_grad():
                    new.weight.copy_(old.weight)
                    new.bias.zero_()
                block.conv = new
    if init is not None:
        for layer in model.modules():
            if isinstance(layer, tuple(reinit)):
                _INITS[init](layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
    return model
