"""Inception-v4: Szegedy, Ioffe, Vanhoucke & Alemi, *Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning* (AAAI 2017, arXiv 1602.07261), Sec. 3.1.

The network of the paper's Fig. 9, row by row: the stem (Fig. 3), 4 x Inception-A (Fig. 4),
Reduction-A (Fig. 7), 7 x Inception-B (Fig. 5), Reduction-B (Fig. 8), 3 x Inception-C
(Fig. 6), average pooling, dropout, softmax. "Uniform choices for the Inception blocks for
each grid size": unlike v3, every module of a grid is the same.

Built exactly as timm's ``inception_v4`` (the TF-slim model its weights come from): conv
without bias -> BatchNorm (eps 1e-3) -> ReLU everywhere, valid ("V") padding unless a figure
marks it otherwise, and average pools that do *not* count the zero padding
(``count_include_pad=False``, TF's ``SAME`` average pooling). Checked against timm on
fingerprint weights in ``tests/test_reference.py``.
"""
from __future__ import annotations

from torch import nn

from ..convert import match_by_order, register_reference
from .. import layers
from ..layers import Branches, ConvFactory, conv_bn, conv_nxn, expanded_3x3, seq
from ..registry import register_model
from .base import InceptionNet, Stage


def _avg_pool() -> nn.Module:
    # TF "SAME" average pooling: border windows average only the real pixels.
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


# -- the stem (Fig. 3) -----------------------------------------------------------------------
def stem_mixed_3a(conv: ConvFactory, in_channels: int = 64, c3x3: int = 96) -> Branches:
    """Fig. 3: max pool 3x3/2 | conv 3x3/2, concatenated (147x147x64 -> 73x73x160)."""
    return Branches([seq(nn.MaxPool2d(3, stride=2)),
                     seq(conv(in_channels, c3x3, 3, stride=2))], out_channels=in_channels + c3x3)


def stem_mixed_4a(conv: ConvFactory, in_channels: int = 160, reduce: int = 64, out: int = 96) -> Branches:
    """Fig. 3: 1x1 -> 3x3 | 1x1 -> 7x1 -> 1x7 -> 3x3 (both 3x3 valid; 73x73x160 -> 71x71x192).

    (In the order timm and TF-slim apply them: 1x7 before 7x1.)
    """
    return Branches([
        seq(conv(in_channels, reduce, 1), conv(reduce, out, 3)),
        seq(conv(in_channels, reduce, 1), *conv_nxn(conv, reduce, reduce, reduce, 7), conv(reduce, out, 3)),
    ], out_channels=2 * out)


def stem_mixed_5a(conv: ConvFactory, in_channels: int = 192, c3x3: int = 192) -> Branches:
    """Fig. 3: conv 3x3/2 | max pool 3x3/2 (71x71x192 -> 35x35x384)."""
    return Branches([seq(conv(in_channels, c3x3, 3, stride=2)),
                     seq(nn.MaxPool2d(3, stride=2))], out_channels=c3x3 + in_channels)


# -- the modules ------------------------------------------------------------------------------
def inception_a(conv: ConvFactory, in_channels: int = 384, *, c1x1: int = 96, c3x3: tuple[int, int] = (64, 96),
                c3x3dbl: tuple[int, int] = (64, 96), pool_features: int = 96) -> Branches:
    """Fig. 4, the 35x35 module: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1."""
    r, c = c3x3dbl
    return Branches([
        seq(conv(in_channels, c1x1, 1)),
        seq(conv(in_channels, c3x3[0], 1), conv(c3x3[0], c3x3[1], 3, padding=1)),
        seq(conv(in_channels, r, 1), conv(r, c, 3, padding=1), conv(c, c, 3, padding=1)),
        seq(_avg_pool(), conv(in_channels, pool_features, 1)),
    ], out_channels=c1x1 + c3x3[1] + c + pool_features)


def reduction_a(conv: ConvFactory, in_channels: int = 384, *, k: int = 192, l: int = 224, m: int = 256,
                n: int = 384) -> Branches:
    """Fig. 7, 35x35 -> 17x17: 3x3/2 (n) | 1x1 (k) -> 3x3 (l) -> 3x3/2 (m) | max pool 3x3/2.

    ``k, l, m, n`` are the filter-bank sizes of the paper's Table 1; the defaults are
    Inception-v4's (192, 224, 256, 384). The block itself is shared with both
    Inception-ResNets: :func:`inception_edu.layers.reduction_a`.
    """
    return layers.reduction_a(conv, in_channels, k, l, m, n)


def inception_b(conv: ConvFactory, in_channels: int = 1024, *, c1x1: int = 384,
                c7x7: tuple[int, int, int] = (192, 224, 256),
                c7x7dbl: tuple[int, int, int, int] = (192, 192, 224, 256), pool_features: int = 128) -> Branches:
    """Fig. 5, the 17x17 module: 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg pool -> 1x1.

    ``c7x7`` = (1x1, 1x7, 7x1) widths; ``c7x7dbl`` = (1x1, 7x1, 1x7 and 7x1, last 1x7) widths.
    """
    a, b, c = c7x7
    d0, d1, d2, d3 = c7x7dbl
    return Branches([
        seq(conv(in_channels, c1x1, 1)),
        seq(conv(in_channels, a, 1), *conv_nxn(conv, a, b, c, 7)),
        seq(conv(in_channels, d0, 1), *conv_nxn(conv, d0, d1, d2, 7, first="nx1"),
            *conv_nxn(conv, d2, d2, d3, 7, first="nx1")),
        seq(_avg_pool(), conv(in_channels, pool_features, 1)),
    ], out_channels=c1x1 + c + d3 + pool_features)


def reduction_b(conv: ConvFactory, in_channels: int = 1024, *, c3x3: tuple[int, int] = (192, 192),
                c7x7x3: tuple[int, int, int] = (256, 256, 320)) -> Branches:
    """Fig. 8, 17x17 -> 8x8: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool 3x3/2
    (Inception-v3's ``Mixed_7a`` at other widths: :func:`inception_edu.layers.reduction_b`)."""
    return layers.reduction_b(conv, in_channels, c3x3, c7x7x3)


def inception_c(conv: ConvFactory, in_channels: int = 1536, *, c1x1: int = 256, c3x3: tuple[int, int] = (384, 256),
                c3x3dbl: tuple[int, int, int, int] = (384, 448, 512, 256), pool_features: int = 256) -> Branches:
    """Fig. 6, the 8x8 module: 1x1 | 1x1 -> (1x3 | 3x1) | 1x1 -> 3x1 -> 1x3 -> (1x3 | 3x1) | avg pool -> 1x1.

    ``c3x3`` = (1x1 width, width of each of 1x3 and 3x1); ``c3x3dbl`` = (1x1, 3x1, 1x3, each
    of the final 1x3 and 3x1). (In the order timm and TF-slim apply them: 3x1 before 1x3.)
    """
    d0, d1, d2, d3 = c3x3dbl
    return Branches([
        seq(conv(in_channels, c1x1, 1)),
        seq(conv(in_channels, c3x3[0], 1), expanded_3x3(conv, c3x3[0], c3x3[1])),
        seq(conv(in_channels, d0, 1), *conv_nxn(conv, d0, d1, d2, 3, first="nx1"),
            expanded_3x3(conv, d2, d3)),
        seq(_avg_pool(), conv(in_channels, pool_features, 1)),
    ], out_channels=c1x1 + 2 * c3x3[1] + 2 * d3 + pool_features)


# -- the stage table (Fig. 9) --------------------------------------------------------------------
def v4_stages(conv: ConvFactory, in_chans: int = 3) -> list[Stage]:
    """Fig. 9, one row per module, with TF-slim's layer names. Shapes at a 299x299 input."""
    stages = [
        Stage("Conv2d_1a_3x3", conv(in_chans, 32, 3, stride=2), "stem: conv 3x3/2"),      # N x 32 x 149 x 149
        Stage("Conv2d_2a_3x3", conv(32, 32, 3), "stem: conv 3x3"),                        # N x 32 x 147 x 147
        Stage("Conv2d_2b_3x3", conv(32, 64, 3, padding=1), "stem: conv 3x3 (same)"),      # N x 64 x 147 x 147
        Stage("Mixed_3a", stem_mixed_3a(conv), "stem: pool | conv 3x3/2"),                 # N x 160 x 73 x 73
        Stage("Mixed_4a", stem_mixed_4a(conv), "stem: two 3x3 branches"),                  # N x 192 x 71 x 71
        Stage("Mixed_5a", stem_mixed_5a(conv), "stem: conv 3x3/2 | pool"),                 # N x 384 x 35 x 35
    ]
    stages += [Stage(f"Mixed_5{s}", inception_a(conv, 384), "Inception-A (Fig. 4)", "inception")
               for s in "bcde"]                                                              # N x 384 x 35 x 35
    stages += [Stage("Mixed_6a", reduction_a(conv, 384), "Reduction-A (Fig. 7)", "reduction")]  # N x 1024 x 17 x 17
    stages += [Stage(f"Mixed_6{s}", inception_b(conv, 1024), "Inception-B (Fig. 5)", "inception")
               for s in "bcdefgh"]                                                           # N x 1024 x 17 x 17
    stages += [Stage("Mixed_7a", reduction_b(conv, 1024), "Reduction-B (Fig. 8)", "reduction")]  # N x 1536 x 8 x 8
    stages += [Stage(f"Mixed_7{s}", inception_c(conv, 1536), "Inception-C (Fig. 6)", "inception")
               for s in "bcd"]                                                               # N x 1536 x 8 x 8
    return stages


@register_model
def inception_v4(num_classes: int = 1000, drop_rate: float = 0.0, in_chans: int = 3) -> InceptionNet:
    """Inception-v4 exactly as timm builds it (42,679,816 parameters).

    ``drop_rate``: dropout before the classifier. The paper keeps 0.8 of the units (rate 0.2);
    timm's default, kept here so the model is timm's, is 0.
    """
    # timm's ConvNormAct as configured in InceptionV4: conv (no bias) -> BN (eps 1e-3) -> ReLU.
    stages = v4_stages(conv_bn, in_chans)
    # Minimum side 75: the stem's three stride-2 steps and the two reductions take 75 to 1x1.
    return InceptionNet("inception_v4", stages, num_features=1536, num_classes=num_classes, min_size=75,
                        in_chans=in_chans, drop_rate=drop_rate, default_size=299)


@register_reference("timm.inception_v4", model="inception_v4", input_size=299)
def _from_timm_inception_v4(theirs, model):
    """timm registers every branch in the order it concatenates them, and its classifier
    (``last_linear``) last, as we do: the two state dicts pair entry for entry."""
    return match_by_order(theirs, model.state_dict())
