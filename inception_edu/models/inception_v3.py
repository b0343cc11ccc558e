"""Inception-v2 and Inception-v3: Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, *Rethinking the
Inception Architecture for Computer Vision* (CVPR 2016, arXiv 1512.00567).

The paper's ideas, and where they live below:

* Sec. 3.1, Fig. 5 -- a 5x5 convolution is two stacked 3x3 ones (same receptive field, 28 %
  fewer multiply-adds): :func:`inception_a`, the 35x35 modules.
* Sec. 3.2, Fig. 6 -- an n x n convolution is a 1 x n followed by an n x 1 (n = 7 on the 17x17
  grid): :func:`inception_c`.
* Sec. 6, Fig. 7 -- on the coarsest (8x8) grid the filter banks are "expanded": a 1x3 and a 3x1
  side by side on the same input, concatenated: :func:`inception_e`.
* Sec. 5, Fig. 10 -- grid reduction without a representational bottleneck: a stride-2
  convolution branch and a stride-2 pooling branch, concatenated: :func:`reduction_a`,
  :func:`reduction_b`.
* Sec. 4, Fig. 8 -- one auxiliary classifier on the last 17x17 layer, acting as a regularizer;
  "batch-normalized" auxiliary = BN also on its fully connected layer: :class:`AuxHead`.

Every block takes a ``factorized`` switch (default ``True``, the paper's design). ``False``
puts back the plain convolution each factorization replaced -- 5x5 for the double 3x3, 7x7 for
each 1x7/7x1 pair, a 3x3 of twice the width for each 1x3 | 3x1 pair -- at the same receptive
field and the same output widths, so a chapter can measure what factorizing buys.

The blocks mirror torchvision's ``inception.py`` (the TF-slim Inception-v3 the released
weights come from) branch for branch, and our stage names are its attribute names
(``Conv2d_1a_3x3`` ... ``Mixed_7c``), so ``inception_v3`` *is* ``torchvision.inception_v3``
(checked on fingerprint weights in ``tests/test_reference.py``).
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..convert import match_by_order, register_reference
from .. import layers
from ..layers import Branches, ConvFactory, conv_bn, conv_nxn, expanded_3x3, seq, width_multiplier
from ..registry import register_model
from .base import InceptionNet, Stage


# The factorized convolutions of Sec. 3 (conv_nxn: n x n -> 1 x n, n x 1) and Fig. 7's
# expanded 3x3 bank (expanded_3x3) live in ``layers.py``: Inception-v4 uses them too.

# -- the modules (torchvision's InceptionA..E, same widths, same branch order) -------------------
def inception_a(conv: ConvFactory, in_channels: int, pool_features: int, *, c1x1: int = 64,
                c5x5: tuple[int, int] = (48, 64), c3x3dbl: tuple[int, int] = (64, 96),
                factorized: bool = True) -> Branches:
    """Fig. 5, the 35x35 module (torchvision ``InceptionA``).

    Branches: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 (a factorized 5x5) | avg pool 3x3 -> 1x1.
    (The released TF-slim model keeps a plain 5x5 branch beside the factorized one.)
    ``c5x5``/``c3x3dbl`` are (1x1 reduction width, output width).
    """
    r, c = c3x3dbl
    double = ([conv(r, c, 3, padding=1), conv(c, c, 3, padding=1)] if factorized
              else [conv(r, c, 5, padding=2)])
    return Branches([
        seq(conv(in_channels, c1x1, 1)),
        seq(conv(in_channels, c5x5[0], 1), conv(c5x5[0], c5x5[1], 5, padding=2)),
        seq(conv(in_channels, r, 1), *double),
        # count_include_pad=True: F.avg_pool2d's default, which torchvision uses.
        seq(nn.AvgPool2d(3, stride=1, padding=1), conv(in_channels, pool_features, 1)),
    ], out_channels=c1x1 + c5x5[1] + c + pool_features)


def reduction_a(conv: ConvFactory, in_channels: int, *, c3x3: int = 384,
                c3x3dbl: tuple[int, int] = (64, 96), factorized: bool = True) -> Branches:
    """Fig. 10, 35x35 -> 17x17 (torchvision ``InceptionB``, ``Mixed_6a``).

    Branches: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max pool 3x3/2; out = c3x3 + c3x3dbl[1] + in.
    Inception-v4's Reduction-A with k, l, m, n = c3x3dbl[0], c3x3dbl[1], c3x3dbl[1], c3x3
    (:func:`inception_edu.layers.reduction_a`). Unfactorized, the double 3x3 is one 5x5/2
    (padding 1, so the grid sizes agree).
    """
    r, c = c3x3dbl
    return layers.reduction_a(conv, in_channels, r, c, c, c3x3, factorized=factorized)


def inception_c(conv: ConvFactory, in_channels: int, channels_7x7: int, *, c1x1: int = 192,
                c7x7: int = 192, pool_features: int = 192, factorized: bool = True) -> Branches:
    """Fig. 6 with n = 7, the 17x17 module (torchvision ``InceptionC``).

    Branches: 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg pool -> 1x1.
    ``channels_7x7`` is the width inside the 7x7 branches, ``c7x7`` their output width.
    """
    c7 = channels_7x7
    return Branches([
        seq(conv(in_channels, c1x1, 1)),
        seq(conv(in_channels, c7, 1), *conv_nxn(conv, c7, c7, c7x7, 7, factorized=factorized)),
        seq(conv(in_channels, c7, 1),
            *conv_nxn(conv, c7, c7, c7, 7, factorized=factorized, first="nx1"),
            *conv_nxn(conv, c7, c7, c7x7, 7, factorized=factorized, first="nx1")),
        seq(nn.AvgPool2d(3, stride=1, padding=1), conv(in_channels, pool_features, 1)),
    ], out_channels=c1x1 + 2 * c7x7 + pool_features)


def reduction_b(conv: ConvFactory, in_channels: int, *, c3x3: tuple[int, int] = (192, 320),
                c7x7x3: int = 192, factorized: bool = True) -> Branches:
    """17x17 -> 8x8 (torchvision ``InceptionD``, ``Mixed_7a``; Fig. 10's pattern).

    Branches: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool 3x3/2: Inception-v4's
    Reduction-B with every width of the 7x7 branch ``c7x7x3``
    (:func:`inception_edu.layers.reduction_b`).
    """
    c = c7x7x3
    return layers.reduction_b(conv, in_channels, c3x3, (c, c, c), factorized=factorized)


def inception_e(conv: ConvFactory, in_channels: int, *, c1x1: int = 320, c3x3: int = 384,
                c3x3dbl: tuple[int, int] = (448, 384), pool_features: int = 192,
                factorized: bool = True) -> Branches:
    """Fig. 7, the 8x8 module with expanded filter banks (torchvision ``InceptionE``).

    Branches: 1x1 | 1x1 -> (1x3 | 3x1) | 1x1 -> 3x3 -> (1x3 | 3x1) | avg pool -> 1x1.
    """
    r, c = c3x3dbl
    return Branches([
        seq(conv(in_channels, c1x1, 1)),
        seq(conv(in_channels, c3x3, 1), expanded_3x3(conv, c3x3, c3x3, factorized=factorized)),
        seq(conv(in_channels, r, 1), conv(r, c, 3, padding=1),
            expanded_3x3(conv, c, c, factorized=factorized)),
        seq(nn.AvgPool2d(3, stride=1, padding=1), conv(in_channels, pool_features, 1)),
    ], out_channels=c1x1 + 2 * c3x3 + 2 * c + pool_features)


class AuxHead(nn.Sequential):
    """The auxiliary classifier on the last 17x17 layer (Sec. 4, Fig. 8; torchvision ``InceptionAux``).

    avg pool 5x5/3 -> 1x1 conv (128) -> "fully connected" (768) -> global pool -> linear.
    The fully connected layer is a 5x5 conv over the 5x5 pooled map, as in TF-slim and
    torchvision. ``bn_fc`` is the paper's "BN-auxiliary" (Sec. 7, Table 3): "the fully
    connected layer of the auxiliary classifier is also batch-normalized, not just the
    convolutions". On its 1x1 output map that BatchNorm2d normalizes each of the 768 features
    over the batch, i.e. it is a BatchNorm1d of the fully connected layer. Without it the
    layer has a bias and a ReLU.
    """

    def __init__(self, conv: ConvFactory, in_channels: int, num_classes: int, *, mid: int = 128,
                 fc_width: int = 768, pool: tuple[int, int] = (5, 3), fc_kernel: int = 5,
                 bn_fc: bool = True):
        fc_layer = conv(mid, fc_width, fc_kernel) if bn_fc else conv(mid, fc_width, fc_kernel, norm=False)
        super().__init__(OrderedDict([
            ("pool", nn.AvgPool2d(pool[0], stride=pool[1])),    # N x 768 x 17 x 17 -> N x 768 x 5 x 5
            ("conv0", conv(in_channels, mid, 1)),               # N x 128 x 5 x 5
            ("conv1", fc_layer),                                # N x 768 x 1 x 1
            ("global_pool", nn.AdaptiveAvgPool2d(1)),           # torchvision's F.adaptive_avg_pool2d
            ("flatten", nn.Flatten(1)),                         # N x 768
            ("fc", nn.Linear(fc_width, num_classes) if num_classes > 0 else nn.Identity()),
        ]))
        self.fc_width = fc_width

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.fc_width, num_classes) if num_classes > 0 else nn.Identity()


# -- the stage table (Table 1) ------------------------------------------------------------------
def v3_stages(conv: ConvFactory, in_chans: int = 3, *, factorized_7x7: bool = True,
              factorized: bool = True) -> list[Stage]:
    """Table 1 of the paper, in torchvision's widths. Shapes at a 299x299 input.

    ``factorized_7x7=False`` is Inception-v2's stem (Table 3): one 7x7/2 conv to 64 channels
    where v3 has three 3x3 convs; both end at 147x147x64 for every input size.
    """
    if factorized_7x7:
        stem = [Stage("Conv2d_1a_3x3", conv(in_chans, 32, 3, stride=2), "conv 3x3/2"),   # N x 32 x 149 x 149
                Stage("Conv2d_2a_3x3", conv(32, 32, 3), "conv 3x3/1"),                   # N x 32 x 147 x 147
                Stage("Conv2d_2b_3x3", conv(32, 64, 3, padding=1), "conv padded 3x3/1")]  # N x 64 x 147 x 147
    else:
        stem = [Stage("Conv2d_1a_7x7", conv(in_chans, 64, 7, stride=2), "conv 7x7/2")]  # N x 64 x 147 x 147

    def a(name, cin, pool):
        return Stage(name, inception_a(conv, cin, pool, factorized=factorized), "Inception (Fig. 5)", "inception")

    def c(name, c7):
        return Stage(name, inception_c(conv, 768, c7, factorized=factorized), "Inception (Fig. 6)", "inception")

    def e(name, cin):
        return Stage(name, inception_e(conv, cin, factorized=factorized), "Inception (Fig. 7)", "inception")

    return stem + [
        Stage("maxpool1", nn.MaxPool2d(3, stride=2), "pool 3x3/2", "pool"),                # N x 64 x 73 x 73
        Stage("Conv2d_3b_1x1", conv(64, 80, 1), "conv 1x1/1"),                             # N x 80 x 73 x 73
        Stage("Conv2d_4a_3x3", conv(80, 192, 3), "conv 3x3/1"),                            # N x 192 x 71 x 71
        Stage("maxpool2", nn.MaxPool2d(3, stride=2), "pool 3x3/2", "pool"),                # N x 192 x 35 x 35
        a("Mixed_5b", 192, 32),                                                            # N x 256 x 35 x 35
        a("Mixed_5c", 256, 64),                                                            # N x 288 x 35 x 35
        a("Mixed_5d", 288, 64),                                                            # N x 288 x 35 x 35
        Stage("Mixed_6a", reduction_a(conv, 288, factorized=factorized),
              "grid reduction (Fig. 10)", "reduction"),                                     # N x 768 x 17 x 17
        c("Mixed_6b", 128), c("Mixed_6c", 160), c("Mixed_6d", 160), c("Mixed_6e", 192),   # N x 768 x 17 x 17
        Stage("Mixed_7a", reduction_b(conv, 768, factorized=factorized),
              "grid reduction (Fig. 10)", "reduction"),                                     # N x 1280 x 8 x 8
        e("Mixed_7b", 1280),                                                               # N x 2048 x 8 x 8
        e("Mixed_7c", 2048),                                                               # N x 2048 x 8 x 8
    ]


def _inception_v3_net(name: str, num_classes: int, *, aux_logits: bool, drop_rate: float, in_chans: int,
                      transform_input: bool, factorized_7x7: bool = True, bn_aux: bool = True,
                      factorized: bool = True) -> InceptionNet:
    if transform_input and in_chans != 3:
        raise ValueError(f"transform_input re-normalizes the three ImageNet channels; it needs "
                         f"in_chans=3, got in_chans={in_chans}. Pass transform_input=False.")
    conv = conv_bn  # torchvision's BasicConv2d: conv (no bias) -> BN (eps 1e-3) -> ReLU
    stages = v3_stages(conv, in_chans, factorized_7x7=factorized_7x7, factorized=factorized)
    aux = {"Mixed_6e": AuxHead(conv, 768, num_classes, bn_fc=bn_aux)} if aux_logits else None
    # Smallest input side: 75 for the trunk (torchvision's documented minimum: the 8x8 grid
    # becomes 1x1); the aux head's 5x5/3 pool and 5x5 "fc" need the full 17x17 grid, which
    # only a 299 input gives (298 -> 16x16).
    return InceptionNet(name, stages, num_features=2048, num_classes=num_classes,
                        min_size=75, aux_min_size=299, in_chans=in_chans, drop_rate=drop_rate,
                        aux_heads=aux, transform_input=transform_input, default_size=299)


@register_model
def inception_v3(num_classes: int = 1000, aux_logits: bool = True, drop_rate: float = 0.5,
                 in_chans: int = 3, transform_input: bool = False) -> InceptionNet:
    """Inception-v3 exactly as torchvision builds it (27,161,264 parameters with the aux head).

    ``aux_logits``: the Fig. 8 auxiliary classifier after ``Mixed_6e`` (returned in training
    mode only). Training with it takes 299x299 and up; eval mode, or no head, 75x75 and up.
    ``drop_rate``: dropout before the classifier (torchvision 0.5).
    ``transform_input``: map ImageNet-normalized input to the [-1, 1] range of the TF weights.
    """
    return _inception_v3_net("inception_v3", num_classes, aux_logits=aux_logits, drop_rate=drop_rate,
                             in_chans=in_chans, transform_input=transform_input)


@register_model
def inception_v2(num_classes: int = 1000, factorized_7x7: bool = False, bn_aux: bool = False,
                 aux_logits: bool = True, drop_rate: float = 0.5, in_chans: int = 3) -> InceptionNet:
    """The ablation ladder of Table 3: Inception-v2 and the switches that make it Inception-v3.

    The paper calls "Inception-v2" the network of Table 1 (35x35x288 -> 3 x Fig. 5 ->
    17x17x768 -> 5 x Fig. 6 -> 8x8x1280 -> 2 x Fig. 7 -> 8x8x2048 -> pool -> linear), and adds
    one change per row of Table 3:

    ========================== ============================ ===========  ===================
    Table 3 row                 here                         top-1 error  paper's cost (B)
    ========================== ============================ ===========  ===================
    Inception-v2                ``inception_v2()``            23.4 %       3.8
    + RMSProp                   training option              23.1 %       3.8
    + Label Smoothing           training option              22.8 %       3.8
    + Factorized 7x7            ``factorized_7x7=True``       21.6 %       4.8
    + BN-auxiliary (= v3)       ``..., bn_aux=True``          21.2 %       4.8
    ========================== ============================ ===========  ===================

    RMSProp (Sec. 8) and label smoothing (Sec. 7) change how the network is trained, not the
    network: they are recipe options (``inception_edu.train``, recipe ``"rethinking"``), not
    model options.

    ``factorized_7x7``: the stem's first 7x7/2 convolution (GoogLeNet's and BN-Inception's
    first layer, here 3 -> 64 channels) "factorized into a sequence of 3x3 convolutional
    layers" -- the three 3x3 convs (32, 32, 64) of Table 1 and of torchvision's
    ``Conv2d_1a/2a/2b``. Both stems map 299x299x3 to 147x147x64.

    ``bn_aux``: batch-normalize the fully connected layer of the auxiliary classifier too
    (see :class:`AuxHead`); without it that layer has a bias and no BatchNorm.

    With ``factorized_7x7=True, bn_aux=True`` the network is Inception-v3, layer for layer the
    same as :func:`inception_v3` (torchvision's layout: its stem is the factorized one, its aux
    head the batch-normalized one), so the converters and weights of ``inception_v3`` apply.
    The unfactorized 7x7 stem is our reading of the paper, which does not give its widths; we
    keep GoogLeNet's 64 channels, which makes the output shapes agree with Table 1.

    Multiply-adds at 299x299 (fvcore, eval mode so no aux head; the papers count conv and
    fully connected layers, so "conv + linear"; fvcore's total adds BatchNorm and the global
    pool), against the paper's "Cost Bn Ops" column:

    ==================================== ============== ============ ================
    network                               conv + linear  fvcore total  paper (Table 3)
    ==================================== ============== ============ ================
    ``inception_v2()``                    5.30 B         5.32 B        3.8 B
    ``inception_v2(factorized_7x7=True)`` 5.71 B         5.73 B        4.8 B
    ==================================== ============== ============ ================

    (``bn_aux`` changes nothing here: the aux head does not run at inference.) The factorized
    stem costs more, as the paper says, but by 0.41 B -- exactly the two stems' difference,
    149^2*3*32*9 + 147^2*(32*32 + 32*64)*9 - 147^2*3*64*49 -- not by the paper's 1.0 B, and
    both networks cost 1 to 1.5 B more than the paper's figures. The paper's column cannot
    be reproduced from its text: Table 1's widths do not add up (its stem ends in 35x35x288,
    the released model's in 35x35x192; its "5 x" Fig. 6 modules are 4 in the released model
    plus the 17x17 -> 8x8 reduction), and the released Inception-v3 -- torchvision's, which
    is ``inception_v3`` here -- costs 5.71 B, against the abstract's "5 billion multiply-adds
    per inference" and Table 3's 4.8 B. We build the released layout and report the gap
    rather than guess the widths that would give 3.8 / 4.8 (``tests/test_inception_v2.py``
    checks the direction and the exact size of the stem's cost change).
    """
    return _inception_v3_net("inception_v2", num_classes, aux_logits=aux_logits, drop_rate=drop_rate,
                             in_chans=in_chans, transform_input=False, factorized_7x7=factorized_7x7,
                             bn_aux=bn_aux)


# -- a small v3 for 32x32 images -----------------------------------------------------------------
@register_model
def inception_v3_cifar(num_classes: int = 10, width_mult: float = 1.0, aux_logits: bool = False,
                       factorized: bool = True, depth: tuple[int, int, int] = (1, 1, 1),
                       drop_rate: float = 0.0, in_chans: int = 3) -> InceptionNet:
    """A small Inception-v3 for 32x32 inputs: v3's blocks at 1/8 of its widths.

    32x32 -> one 3x3/2 stem conv (v3's stem divides the side by 8.5; this one by 2) -> Fig. 5
    module(s) on the 16x16 grid -> grid reduction (Fig. 10) -> Fig. 6 module(s), n = 7, on 7x7
    -> reduction -> Fig. 7 module(s) on 3x3 -> pool -> linear. The grids 16/7/3 play the roles
    of v3's 35/17/8 (the same valid 3x3/2 reductions). About 5 M multiply-adds and 0.4 M
    parameters at ``width_mult=1``: a few epochs on the digits take seconds on a laptop CPU.

    ``width_mult``: scales every width (v3's widths / 8 at 1.0).
    ``factorized``: ``False`` puts back the plain 5x5 / 7x7 / wide 3x3 convs that Sec. 3 and
    Fig. 7 factorize, same receptive field and widths (chapter "Factorizing convolutions").
    ``depth``: how many Fig. 5 / Fig. 6 / Fig. 7 modules (v3 has 3 / 4 / 2).
    ``aux_logits``: an auxiliary head on the last 7x7 layer (as v3's on 17x17; needs >= 29x29).
    """
    w = width_multiplier(width_mult, divisor=8)  # v3's width c, scaled
    if len(depth) != 3 or not all(1 <= d <= 7 for d in depth):
        raise ValueError(f"depth gives the number of Fig. 5, Fig. 6 and Fig. 7 modules, each "
                         f"from 1 to 7; got {depth}")

    conv, f = conv_bn, factorized
    stem = w(256)  # what the first Fig. 5 module sees (v3's Mixed_5b input is 192, output 256)
    stages = [Stage("Conv2d_1a_3x3", conv(in_chans, stem, 3, stride=2, padding=1), "conv 3x3/2")]
    cin = stem                                                                           # N x 32 x 16 x 16
    for i in range(depth[0]):                                                            # N x 36 x 16 x 16
        block = inception_a(conv, cin, w(64), c1x1=w(64), c5x5=(w(48), w(64)), c3x3dbl=(w(64), w(96)),
                            factorized=f)
        stages.append(Stage(f"Mixed_5{'bcdefgh'[i]}", block, "Inception (Fig. 5)", "inception"))
        cin = block.out_channels
    block = reduction_a(conv, cin, c3x3=w(384), c3x3dbl=(w(64), w(96)), factorized=f)   # N x 96 x 7 x 7
    stages.append(Stage("Mixed_6a", block, "grid reduction (Fig. 10)", "reduction"))
    cin = block.out_channels
    for i in range(depth[1]):                                                            # N x 96 x 7 x 7
        block = inception_c(conv, cin, w(128), c1x1=w(192), c7x7=w(192), pool_features=w(192),
                            factorized=f)
        stages.append(Stage(f"Mixed_6{'bcdefgh'[i]}", block, "Inception (Fig. 6)", "inception"))
        cin = block.out_channels
    aux_at, aux_in = stages[-1].name, cin
    block = reduction_b(conv, cin, c3x3=(w(192), w(320)), c7x7x3=w(192), factorized=f)   # N x 160 x 3 x 3
    stages.append(Stage("Mixed_7a", block, "grid reduction (Fig. 10)", "reduction"))
    cin = block.out_channels
    for i in range(depth[2]):                                                            # N x 256 x 3 x 3
        block = inception_e(conv, cin, c1x1=w(320), c3x3=w(384), c3x3dbl=(w(448), w(384)),
                            pool_features=w(192), factorized=f)
        stages.append(Stage(f"Mixed_7{'bcdefgh'[i]}", block, "Inception (Fig. 7)", "inception"))
        cin = block.out_channels
    # The aux head reads the 7x7 grid: pool 3x3/2 -> 3x3, then a 3x3 "fully connected" conv
    # (v3: 17x17 -> pool 5x5/3 -> 5x5 -> 5x5 conv).
    aux = ({aux_at: AuxHead(conv, aux_in, num_classes, mid=w(128), fc_width=w(768), pool=(3, 2),
                            fc_kernel=3)} if aux_logits else None)
    # Minimum side: the stem halves it (rounding up) and the two valid 3x3/2 reductions need a
    # 7x7 grid (-> 3 -> 1), so 13; the aux head needs the middle grid at 7x7, so 29.
    return InceptionNet("inception_v3_cifar", stages, num_features=cin, num_classes=num_classes,
                        min_size=13, aux_min_size=29, in_chans=in_chans, drop_rate=drop_rate,
                        aux_heads=aux, default_size=32)


# -- converters -----------------------------------------------------------------------------------
@register_reference("torchvision.inception_v3", model="inception_v3", input_size=299, aux_logits=True)
def _from_torchvision_inception_v3(theirs, model):
    """torchvision registers ``AuxLogits`` between ``Mixed_6e`` and ``Mixed_7a``; our heads come
    after the trunk. Move it there and the two orders agree entry for entry (torchvision
    registers every branch in the order it concatenates them)."""
    aux = {k: v for k, v in theirs.items() if k.startswith("AuxLogits.")}
    fc = {k: v for k, v in theirs.items() if k.startswith("fc.")}
    trunk = {k: v for k, v in theirs.items() if k not in aux and k not in fc}
    return match_by_order({**trunk, **(aux if len(model.aux) else {}), **fc}, model.state_dict())
