"""Inception-ResNet-v1 and -v2 (Szegedy et al. 2017, "Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning", Sec. 3.2 and Figs. 9-19).

Each residual Inception block is the same thing three times over (Figs. 10/11/13 for v1,
16/17/19 for v2): a few Inception branches, concatenated, mapped back to the trunk's width
by a 1x1 "linear" convolution (no BN, no ReLU: "filter-expansion layer"), scaled, and added:

    y = relu(x + scale * proj(concat(branches(x))))          # layers.ResidualBranches

The paper (Sec. 3.3) found that with more than about 1000 filters the residual variants
"died" early in training unless the residuals were scaled down by 0.1 to 0.3 before the
addition; the published networks use 0.17 (35x35 grid), 0.10 (17x17) and 0.20 (8x8).
BN sits on the trunk's convolutions only, not after the addition (Sec. 3.2: "we have
decided to omit batch-normalization on top of the summations").
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..convert import match_by_order, register_reference
from ..layers import Branches, ResidualBranches, conv_bn, conv_nxn, reduction_a, seq, width_multiplier
from ..registry import register_model
from .base import InceptionNet, Stage


# -- blocks: widths as arguments, branches as data -----------------------------------------

def block_a(c: int, widths, scale: float, conv=conv_bn) -> ResidualBranches:
    """Inception-ResNet-A (35x35 grid; Fig. 10 for v1, Fig. 16 for v2).

    widths = (b0, (b1a, b1b), (b2a, b2b, b2c)): a 1x1, a 1x1->3x3 and a 1x1->3x3->3x3 branch.
    """
    b0, (b1a, b1b), (b2a, b2b, b2c) = widths
    return ResidualBranches([
        seq(conv(c, b0, 1)),
        seq(conv(c, b1a, 1), conv(b1a, b1b, 3, padding=1)),
        seq(conv(c, b2a, 1), conv(b2a, b2b, 3, padding=1), conv(b2b, b2c, 3, padding=1)),
    ], proj=nn.Conv2d(b0 + b1b + b2c, c, 1), scale=scale)


def block_asym(c: int, widths, n: int, scale: float, act: bool = True, conv=conv_bn) -> ResidualBranches:
    """Inception-ResNet-B (17x17, n=7; Figs. 11/17) and -C (8x8, n=3; Figs. 13/19).

    widths = (b0, (b1a, b1b, b1c)): a 1x1 branch and a 1x1 -> 1xn -> nx1 branch.
    """
    b0, (b1a, b1b, b1c) = widths
    return ResidualBranches([
        seq(conv(c, b0, 1)),
        seq(conv(c, b1a, 1), *conv_nxn(conv, b1a, b1b, b1c, n)),
    ], proj=nn.Conv2d(b0 + b1c, c, 1), scale=scale, act=act)


def reduction_b(c: int, a, b, d, conv=conv_bn) -> Branches:
    """17x17 -> 8x8 (Fig. 12 for v1, Fig. 18 for v2): three conv branches and a max-pool.

    a = (1x1, 3x3/2), b = (1x1, 3x3/2), d = (1x1, 3x3, 3x3/2) widths.
    """
    return Branches([
        seq(conv(c, a[0], 1), conv(a[0], a[1], 3, stride=2)),
        seq(conv(c, b[0], 1), conv(b[0], b[1], 3, stride=2)),
        seq(conv(c, d[0], 1), conv(d[0], d[1], 3, padding=1), conv(d[1], d[2], 3, stride=2)),
        seq(nn.MaxPool2d(3, stride=2)),
    ], out_channels=c + a[1] + b[1] + d[2])


def _residual_stages(prefix: str, count: int, make, label: str) -> list[Stage]:
    return [Stage(f"{prefix}_{i + 1}", make(), label, "residual") for i in range(count)]


def _scale(default: float, override: float | None) -> float:
    return default if override is None else override


# -- Inception-ResNet-v2 ---------------------------------------------------------------------

def _v2_stages(in_chans: int, blocks, scales, residual_scale) -> list[Stage]:
    c = conv_bn
    n35, n17, n8 = blocks
    s35, s17, s8 = (_scale(s, residual_scale) for s in scales)
    stages = [
        # The TF-slim stem that the published weights use (timm: conv2d_1a ... maxpool_5a).
        Stage("conv2d_1a", c(in_chans, 32, 3, stride=2), "stem: conv 3x3/2", "stem"),  # 149x149x32
        Stage("conv2d_2a", c(32, 32, 3), "stem: conv 3x3", "stem"),                     # 147x147x32
        Stage("conv2d_2b", c(32, 64, 3, padding=1), "stem: conv 3x3", "stem"),          # 147x147x64
        Stage("maxpool_3a", nn.MaxPool2d(3, stride=2), "stem: max pool 3x3/2", "pool"),  # 73x73x64
        Stage("conv2d_3b", c(64, 80, 1), "stem: conv 1x1", "stem"),                     # 73x73x80
        Stage("conv2d_4a", c(80, 192, 3), "stem: conv 3x3", "stem"),                    # 71x71x192
        Stage("maxpool_5a", nn.MaxPool2d(3, stride=2), "stem: max pool 3x3/2", "pool"),  # 35x35x192
        Stage("mixed_5b", Branches([                                                    # 35x35x320
            seq(c(192, 96, 1)),
            seq(c(192, 48, 1), c(48, 64, 5, padding=2)),
            seq(c(192, 64, 1), c(64, 96, 3, padding=1), c(96, 96, 3, padding=1)),
            seq(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), c(192, 64, 1)),
        ], out_channels=320), "stem: Inception (5b)", "inception"),
    ]
    stages += _residual_stages("block35", n35, lambda: block_a(320, (32, (32, 32), (32, 48, 64)), s35),
                               "Inception-ResNet-A")                                   # 35x35x320
    stages.append(Stage("mixed_6a", reduction_a(c, 320, 256, 256, 384, 384), "Reduction-A", "reduction"))  # 17x17x1088
    stages += _residual_stages("block17", n17, lambda: block_asym(1088, (192, (128, 160, 192)), 7, s17),
                               "Inception-ResNet-B")                                   # 17x17x1088
    stages.append(Stage("mixed_7a", reduction_b(1088, (256, 384), (256, 288), (256, 288, 320)),
                        "Reduction-B", "reduction"))                                   # 8x8x2080
    stages += _residual_stages("block8", n8, lambda: block_asym(2080, (192, (192, 224, 256)), 3, s8),
                               "Inception-ResNet-C")                                   # 8x8x2080
    # TF-slim ends the trunk with one more C block, unscaled and without the ReLU.
    stages.append(Stage("block8_final", block_asym(2080, (192, (192, 224, 256)), 3, 1.0, act=False),
                        "Inception-ResNet-C (no ReLU)", "residual"))
    stages.append(Stage("conv2d_7b", c(2080, 1536, 1), "conv 1x1", "stem"))               # 8x8x1536
    return stages


def _irv2(name, num_classes, blocks, drop_rate, in_chans, residual_scale) -> InceptionNet:
    stages = _v2_stages(in_chans, blocks, (0.17, 0.10, 0.20), residual_scale)
    return InceptionNet(name, stages, num_features=1536, num_classes=num_classes, min_size=75,
                        in_chans=in_chans, drop_rate=drop_rate, default_size=299)


@register_model
def inception_resnet_v2(num_classes: int = 1000, drop_rate: float = 0.0, in_chans: int = 3,
                        residual_scale: float | None = None) -> InceptionNet:
    """Inception-ResNet-v2 in the layout of the published weights (TF-slim, timm).

    10 x A (scale 0.17), Reduction-A, 20 x B (0.10), Reduction-B, 9 x C (0.20) and a final C
    block without ReLU, then a 1x1 conv to 1536. The paper's Fig. 15 draws 5/10/5 blocks: see
    ``inception_resnet_v2_paper``. ``residual_scale`` replaces every published scale (the
    chapter on residual scaling compares 1.0 with 0.1-0.3); the final block stays at 1.0.
    """
    return _irv2("inception_resnet_v2", num_classes, (10, 20, 9), drop_rate, in_chans, residual_scale)


@register_model
def inception_resnet_v2_paper(num_classes: int = 1000, drop_rate: float = 0.2, in_chans: int = 3,
                              residual_scale: float | None = None) -> InceptionNet:
    """Inception-ResNet-v2 as the paper's Fig. 15 draws it: 5 x A, 10 x B, 5 x C.

    Same blocks and scales as ``inception_resnet_v2``; the published weights (TF-slim) use
    10/20/9 blocks plus a final C block, which is what the reference implementations build.
    Dropout 0.2 (keep 0.8) as the paper's figure.
    """
    return _irv2("inception_resnet_v2_paper", num_classes, (5, 10, 5), drop_rate, in_chans, residual_scale)


@register_reference("timm.inception_resnet_v2", model="inception_resnet_v2", input_size=299)
def _from_timm(theirs, model):
    return match_by_order(theirs, model.state_dict())


# -- Inception-ResNet-v1 ---------------------------------------------------------------------

@register_model
def inception_resnet_v1(num_classes: int = 1000, drop_rate: float = 0.6, in_chans: int = 3,
                        residual_scale: float | None = None) -> InceptionNet:
    """Inception-ResNet-v1 (the paper's Fig. 14), as facenet-pytorch builds it.

    Stem of Fig. 14 without the paper's Fig. 3 detail (conv2d_1a ... conv2d_4b), 5 x A
    (scale 0.17), Reduction-A (k, l, m, n = 192, 192, 256, 384), 10 x B (0.10), Reduction-B,
    5 x C (0.20) with the last one unscaled and without ReLU, average pooling, dropout 0.6,
    then facenet's head: Linear(1792, 512, no bias) + BatchNorm1d (the face embedding) and
    the classifier. Native input 160x160 (facenet's).
    """
    c = conv_bn
    s35, s17, s8 = (_scale(s, residual_scale) for s in (0.17, 0.10, 0.20))
    stages = [
        Stage("conv2d_1a", c(in_chans, 32, 3, stride=2), "stem: conv 3x3/2", "stem"),
        Stage("conv2d_2a", c(32, 32, 3), "stem: conv 3x3", "stem"),
        Stage("conv2d_2b", c(32, 64, 3, padding=1), "stem: conv 3x3", "stem"),
        Stage("maxpool_3a", nn.MaxPool2d(3, stride=2), "stem: max pool 3x3/2", "pool"),
        Stage("conv2d_3b", c(64, 80, 1), "stem: conv 1x1", "stem"),
        Stage("conv2d_4a", c(80, 192, 3), "stem: conv 3x3", "stem"),
        Stage("conv2d_4b", c(192, 256, 3, stride=2), "stem: conv 3x3/2", "stem"),
    ]
    stages += _residual_stages("block35", 5, lambda: block_a(256, (32, (32, 32), (32, 32, 32)), s35),
                               "Inception-ResNet-A")
    stages.append(Stage("mixed_6a", reduction_a(c, 256, 192, 192, 256, 384), "Reduction-A", "reduction"))  # 896
    stages += _residual_stages("block17", 10, lambda: block_asym(896, (128, (128, 128, 128)), 7, s17),
                               "Inception-ResNet-B")
    stages.append(Stage("mixed_7a", reduction_b(896, (256, 384), (256, 256), (256, 256, 256)),
                        "Reduction-B", "reduction"))                                               # 1792
    stages += _residual_stages("block8", 5, lambda: block_asym(1792, (192, (192, 192, 192)), 3, s8),
                               "Inception-ResNet-C")
    stages.append(Stage("block8_final", block_asym(1792, (192, (192, 192, 192)), 3, 1.0, act=False),
                        "Inception-ResNet-C (no ReLU)", "residual"))
    pre_logits = nn.Sequential(nn.Linear(1792, 512, bias=False),
                               nn.BatchNorm1d(512, eps=0.001, momentum=0.1, affine=True))
    return InceptionNet("inception_resnet_v1", stages, num_features=1792, num_classes=num_classes,
                        min_size=75, in_chans=in_chans, drop_rate=drop_rate, pre_logits=pre_logits,
                        head_features=512, default_size=160)


@register_reference("facenet_pytorch.InceptionResnetV1", model="inception_resnet_v1", input_size=160)
def _from_facenet(theirs, model):
    # facenet's repeat_3 holds 5 C blocks of which its separate `block8` is the unscaled last one;
    # its registration order (trunk, last_linear, last_bn, logits) is ours.
    return match_by_order(theirs, model.state_dict())


# -- a small Inception-ResNet for 32x32 images -------------------------------------------------

@register_model
def inception_resnet_cifar(num_classes: int = 10, width_mult: float = 1.0, blocks=(2, 2, 2),
                           residual_scale: float = 0.2, drop_rate: float = 0.0, in_chans: int = 3
                           ) -> InceptionNet:
    """A small Inception-ResNet for 32x32 inputs, with the same A / B / C blocks on 16, 8 and 4
    grids. ``residual_scale`` applies to every block (1.0 = unscaled, the paper's unstable
    case; 0.1-0.3 = scaled); ``width_mult`` widens the trunk (the instability grows with width).
    """
    w = width_multiplier(width_mult, minimum=8)
    c = conv_bn
    c1, c2, c3 = w(64), w(128), w(256)
    stages = [
        Stage("stem_conv1", c(in_chans, w(32), 3, padding=1), "stem: conv 3x3", "stem"),   # 32x32
        Stage("stem_conv2", c(w(32), c1, 3, stride=2, padding=1), "stem: conv 3x3/2", "stem"),  # 16x16
    ]
    stages += _residual_stages("block_a", blocks[0], lambda: block_a(
        c1, (w(16), (w(16), w(16)), (w(16), w(24), w(32))), residual_scale), "Inception-ResNet-A")
    # Reduction-A: c1 + n + m channels out; choose n + m so the total is c2.
    n = (c2 - c1) // 2
    stages.append(Stage("reduction_a", reduction_a(c, c1, w(32), w(32), c2 - c1 - n, n), "Reduction-A", "reduction"))
    stages += _residual_stages("block_b", blocks[1], lambda: block_asym(
        c2, (w(32), (w(32), w(40), w(48))), 5, residual_scale), "Inception-ResNet-B")
    third = (c3 - c2) // 3
    stages.append(Stage("reduction_b", reduction_b(c2, (w(32), third), (w(32), third),
                                                   (w(32), w(32), c3 - c2 - 2 * third)),
                        "Reduction-B", "reduction"))
    stages += _residual_stages("block_c", blocks[2], lambda: block_asym(
        c3, (w(48), (w(48), w(56), w(64))), 3, residual_scale), "Inception-ResNet-C")
    return InceptionNet("inception_resnet_cifar", stages, num_features=c3, num_classes=num_classes,
                        min_size=13, in_chans=in_chans, drop_rate=drop_rate, default_size=32)


# -- the deep, wide stack of the residual-scaling experiment (Sec. 3.3) ------------------------

#: Branch widths of Inception-ResNet-v2's A block (Fig. 16): 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3.
V2_A_BRANCHES = (32, (32, 32), (32, 48, 64))


def check_residual_scale(scale: float) -> None:
    """A ``ValueError`` that says what to pass unless ``scale`` is a number in (0, 10]."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (0 < scale <= 10 and math.isfinite(scale)):
        raise ValueError(f"scale must be a number in (0, 10]; got {scale!r} "
                         f"(1.0 = unscaled, the paper used 0.1-0.3)")


class ResidualStack(nn.Module):
    """stem (conv 3x3/2 + BN + ReLU) -> ``depth`` x Inception-ResNet-A -> GAP -> linear.

    The experiment of Sec. 3.3 in a small network: "if the number of filters exceeded 1000,
    the residual variants started to exhibit instabilities". Every block is
    ``relu(x + scale * proj(concat(branches(x))))`` with ``width`` trunk channels and the v2 A
    block's branches. Built with the same seed, stacks that differ only in ``scale`` have
    identical weights: the scale is not a parameter.
    """

    def __init__(self, width: int = 1024, depth: int = 10, scale: float = 1.0, *, in_chans: int = 3,
                 num_classes: int = 10, branches=V2_A_BRANCHES):
        super().__init__()
        for name, value in (("width", width), ("depth", depth)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive whole number; got {value!r}")
        check_residual_scale(scale)
        self.width, self.depth, self.scale = width, depth, scale
        self.stem = conv_bn(in_chans, width, 3, stride=2, padding=1)          # N x width x H/2 x W/2
        self.blocks = nn.ModuleList(block_a(width, branches, scale) for _ in range(depth))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.fc(torch.flatten(self.pool(x), 1))
