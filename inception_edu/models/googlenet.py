"""GoogLeNet (Inception-v1): Szegedy et al., *Going Deeper with Convolutions* (CVPR 2015,
arXiv 1409.4842).

The paper's ideas, and where they live below:

* Sec. 4, Fig. 2(b) -- the Inception module: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | max pool 3x3/1
  -> 1x1, concatenated. The 1x1 convs before the 3x3 and 5x5 are "dimension reductions"
  (NIN's 1x1 convs, Lin et al. 2013) that keep the module cheap: :func:`inception`.
* Table 1 -- the network, one row per layer, with every module's widths in the columns
  #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj: :data:`TABLE1`, read by
  :func:`googlenet_stages`.
* Sec. 5 -- two auxiliary classifiers on (4a) and (4d), used in training only, their losses
  weighted by 0.3: avg pool 5x5/3, 1x1 conv 128 + ReLU, FC 1024 + ReLU, dropout 0.7, linear:
  :class:`AuxHead`. Average pooling instead of fully connected layers at the top (NIN again),
  followed by dropout 0.4 and one linear layer.

Three builds share this file:

* ``googlenet`` -- the paper (and the Caffe model its authors' colleagues released,
  ``bvlc_googlenet``): conv with bias + ReLU and no normalization (2014), local response
  normalization after the first pool and after the second conv, a true 5x5 branch, pools
  that round up (Caffe's rule: 112 -> 56 -> 28 -> 14 -> 7).
* ``googlenet_bn`` -- torchvision's layout, so its weights load: BatchNorm after every conv
  (eps 1e-3, the TF port's), no LRN, the last stride-2 pool 2x2, aux heads that pool to 4x4
  adaptively, main dropout 0.2 -- and the third branch's "5x5" a 3x3, a bug kept for weight
  compatibility (pytorch/vision#906).
* ``googlenet_cifar`` -- the same modules at 1/8 of the widths on 32x32 inputs (grids
  16/8/4 for the paper's 28/14/7), to train in seconds on a CPU.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ..convert import match_by_order, register_reference
from ..layers import (Branches, ConvFactory, LocalResponseNorm, conv_bn, conv_plain, separable_conv, seq,
                      width_multiplier)
from ..registry import register_model
from .base import InceptionNet, Stage


# -- the Inception module (Sec. 4, Fig. 2b) -------------------------------------------------------
@dataclass(frozen=True)
class InceptionWidths:
    """One Inception row of Table 1, in the paper's column order."""

    #: The row's name in Table 1, e.g. "3a"; the stage is ``inception3a``.
    name: str
    #: "#1x1": the branch that is a single 1x1 conv.
    c1x1: int
    #: "#3x3 reduce": the 1x1 conv that shrinks the input before the 3x3.
    c3x3_reduce: int
    #: "#3x3": output width of the 3x3 branch.
    c3x3: int
    #: "#5x5 reduce": the 1x1 conv before the 5x5 (only 16-48 wide: the 5x5 is expensive).
    c5x5_reduce: int
    #: "#5x5": output width of the 5x5 branch.
    c5x5: int
    #: "pool proj": the 1x1 conv after the 3x3/1 max pool, so pooling does not pass the
    #: whole input width through (which would make the widths grow from module to module).
    pool_proj: int

    @property
    def out_channels(self) -> int:
        return self.c1x1 + self.c3x3 + self.c5x5 + self.pool_proj

    def scaled(self, w) -> "InceptionWidths":
        return InceptionWidths(self.name, *(w(c) for c in (self.c1x1, self.c3x3_reduce, self.c3x3,
                                                           self.c5x5_reduce, self.c5x5, self.pool_proj)))


#: Table 1 of the paper: the nine Inception modules. (torchvision uses the same widths.)
TABLE1 = (
    InceptionWidths("3a", 64, 96, 128, 16, 32, 32),      # 28 x 28 x 256
    InceptionWidths("3b", 128, 128, 192, 32, 96, 64),    # 28 x 28 x 480
    InceptionWidths("4a", 192, 96, 208, 16, 48, 64),     # 14 x 14 x 512
    InceptionWidths("4b", 160, 112, 224, 24, 64, 64),    # 14 x 14 x 512
    InceptionWidths("4c", 128, 128, 256, 24, 64, 64),    # 14 x 14 x 512
    InceptionWidths("4d", 112, 144, 288, 32, 64, 64),    # 14 x 14 x 528
    InceptionWidths("4e", 256, 160, 320, 32, 128, 128),  # 14 x 14 x 832
    InceptionWidths("5a", 256, 160, 320, 32, 128, 128),  # 7 x 7 x 832
    InceptionWidths("5b", 384, 192, 384, 48, 128, 128),  # 7 x 7 x 1024
)


def inception(conv: ConvFactory, in_channels: int, widths: InceptionWidths, *, k5: int = 5) -> Branches:
    """Fig. 2(b): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | max pool 3x3/1 -> 1x1, concatenated.

    ``k5``: the kernel of the third branch; 5 in the paper, 3 in torchvision (vision#906).
    """
    c = widths
    return Branches([
        seq(conv(in_channels, c.c1x1, 1)),
        seq(conv(in_channels, c.c3x3_reduce, 1), conv(c.c3x3_reduce, c.c3x3, 3, padding=1)),
        seq(conv(in_channels, c.c5x5_reduce, 1), conv(c.c5x5_reduce, c.c5x5, k5, padding=k5 // 2)),
        seq(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), conv(in_channels, c.pool_proj, 1)),
    ], out_channels=c.out_channels)


# -- the auxiliary classifier (Sec. 5) ------------------------------------------------------------
class AuxHead(nn.Module):
    """Sec. 5's auxiliary classifier: avg pool -> 1x1 conv 128 + ReLU -> FC 1024 + ReLU ->
    dropout 0.7 -> linear.

    ``pool`` maps the 14x14 grid to ``grid`` x ``grid``: the paper's average pool 5x5/3
    (14 -> 4), or torchvision's adaptive pool to 4x4. Submodules are named as torchvision's
    ``InceptionAux`` (``conv``, ``fc1``, ``fc2``).
    """

    def __init__(self, conv: ConvFactory, in_channels: int, num_classes: int, *, pool: nn.Module,
                 grid: int = 4, mid: int = 128, fc_width: int = 1024, drop_rate: float = 0.7):
        super().__init__()
        self.grid = grid
        self.fc_width = fc_width
        self.pool = pool                                      # N x 512 x 14 x 14 -> N x 512 x 4 x 4
        self.conv = conv(in_channels, mid, 1)                 # N x 128 x 4 x 4
        self.fc1 = nn.Linear(mid * grid * grid, fc_width)     # N x 2048 -> N x 1024
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(fc_width, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        if not isinstance(x, torch.fx.Proxy) and tuple(x.shape[-2:]) != (self.grid, self.grid):
            raise ValueError(f"this auxiliary head's fully connected layer expects a {self.grid}x{self.grid} "
                             f"grid after its pool, got {tuple(x.shape[-2:])}: the input size must give a "
                             f"14x14 grid at inception (4a), as 224x224 does. Use 224x224 inputs or "
                             f"aux_logits=False.")
        x = torch.flatten(self.conv(x), 1)
        return self.fc2(self.drop(self.act(self.fc1(x))))

    def reset_classifier(self, num_classes: int) -> None:
        self.fc2 = nn.Linear(self.fc_width, num_classes) if num_classes > 0 else nn.Identity()


# -- the stage table (Table 1) --------------------------------------------------------------------
def _pool(label: str, name: str, kernel: int = 3, extra: nn.Module | None = None) -> Stage:
    # Caffe (the paper's framework) rounds pooled sizes up; torchvision keeps that with ceil_mode.
    pool = nn.MaxPool2d(kernel, stride=2, ceil_mode=True)
    module = nn.Sequential(OrderedDict([("pool", pool), ("lrn", extra)])) if extra is not None else pool
    return Stage(name, module, label, "pool")


def inception_stages(conv: ConvFactory, in_channels: int, table=TABLE1, *, k5: int = 5,
                     pool4_kernel: int = 3) -> list[Stage]:
    """Table 1 from inception (3a) on: 3a, 3b, pool, 4a-4e, pool, 5a, 5b.

    ``pool4_kernel``: the paper's pool before (5a) is 3x3/2; torchvision's is 2x2/2.
    """
    pool_before = {"4a": ("maxpool3", 3), "5a": ("maxpool4", pool4_kernel)}  # 28 -> 14, 14 -> 7
    stages, cin = [], in_channels
    for row in table:
        if row.name in pool_before:
            name, k = pool_before[row.name]
            stages.append(_pool(f"max pool {k}x{k}/2", name, k))
        stages.append(Stage(f"inception{row.name}", inception(conv, cin, row, k5=k5),
                            f"inception ({row.name})", "inception"))
        cin = row.out_channels
    return stages


def googlenet_stages(conv: ConvFactory, in_chans: int = 3, *, lrn: bool = True, k5: int = 5,
                     pool4_kernel: int = 3, separable_conv1: bool = False) -> list[Stage]:
    """Table 1, one stage per row (the "convolution 3x3/1" row, depth 2, is two stages:
    its 1x1 reduce and the 3x3). Stage names are torchvision's. Shapes at 224x224.

    ``lrn``: local response normalization where the paper's Fig. 3 has it, after the first
    max pool and after the 3x3 conv (Caffe: ``pool1/norm1``, ``conv2/norm2``).
    ``separable_conv1``: the first layer as a depthwise-separable 7x7/2 with depth multiplier
    8 (see :func:`googlenet`).
    """
    if separable_conv1:
        conv1 = Stage("conv1", separable_conv(conv, in_chans, 64, 7, stride=2, padding=3, depth_multiplier=8),
                      "convolution 7x7/2 (separable, depth multiplier 8)")
    else:
        conv1 = Stage("conv1", conv(in_chans, 64, 7, stride=2, padding=3), "convolution 7x7/2")
    conv3 = conv(64, 192, 3, padding=1)
    if lrn:
        conv3 = nn.Sequential(OrderedDict([("conv", conv3), ("lrn", LocalResponseNorm())]))
    return [
        conv1,                                                                             # N x 64 x 112 x 112
        _pool("max pool 3x3/2", "maxpool1", extra=LocalResponseNorm() if lrn else None),   # N x 64 x 56 x 56
        Stage("conv2", conv(64, 64, 1), "convolution 3x3/1 (#3x3 reduce 1x1)"),            # N x 64 x 56 x 56
        Stage("conv3", conv3, "convolution 3x3/1"),                                        # N x 192 x 56 x 56
        _pool("max pool 3x3/2", "maxpool2"),                                               # N x 192 x 28 x 28
    ] + inception_stages(conv, 192, k5=k5, pool4_kernel=pool4_kernel)
    # 3a: N x 256 x 28 x 28, 3b: N x 480 x 28 x 28, maxpool3: N x 480 x 14 x 14,
    # 4a-4c: N x 512 x 14 x 14, 4d: N x 528 x 14 x 14, 4e: N x 832 x 14 x 14,
    # maxpool4: N x 832 x 7 x 7, 5a: N x 832 x 7 x 7, 5b: N x 1024 x 7 x 7


def _check_transform(transform_input: bool, in_chans: int) -> None:
    if transform_input and in_chans != 3:
        raise ValueError(f"transform_input re-normalizes the three ImageNet channels; it needs "
                         f"in_chans=3, got in_chans={in_chans}. Pass transform_input=False.")


@register_model
def googlenet(num_classes: int = 1000, aux_logits: bool = True, drop_rate: float = 0.4,
              in_chans: int = 3, separable_conv1: bool = False) -> InceptionNet:
    """GoogLeNet as the paper's Table 1 and Sec. 5 describe it: 6,998,552 parameters without
    the aux heads (Table 1's column sums to 6.8 M weights), 13,378,280 with them; 1.58 B
    multiply-adds at 224x224 (the paper: 1.5 B; ``tests/test_googlenet.py`` traces the gap to
    the conv1 row, and ``separable_conv1=True`` closes it: 1.50 B).

    Conv with bias + ReLU, no BatchNorm; LRN after the first pool and the 3x3 conv; a true
    5x5 third branch; max pools 3x3/2 rounding up, as in Caffe.
    ``aux_logits``: the two auxiliary classifiers on (4a) and (4d) (returned in training
    mode only; the paper weights their losses by 0.3). Their avg pool 5x5/3 must give a 4x4
    grid, so with them the input side must be 191 to 238 (224 is native); without them,
    anything from 31.
    ``drop_rate``: dropout before the classifier (the paper's 40 %).
    ``separable_conv1``: a reading of Table 1's first row that fits its numbers exactly. A
    plain 7x7/2 conv 3 -> 64 has 9,408 weights and 118 M multiply-adds on the 112x112 grid;
    Table 1 says 2.7K and 34M. A depthwise-separable 7x7/2 with depth multiplier 8 -- what
    the BatchNorm paper's appendix (Ioffe & Szegedy 2015) reports for its GoogLeNet variant:
    "separable convolution with depth multiplier 8 on the first convolutional layer" -- has
    7*7*3*8 + 24*64 = 2,712 weights and 34.0 M multiply-adds, and brings the network to the
    paper's 1.5 B multiply-adds. Off by default: the released Caffe model (``bvlc_googlenet``)
    has the plain conv.
    """
    conv = conv_plain  # 2014: conv (with bias) -> ReLU
    stages = googlenet_stages(conv, in_chans, lrn=True, k5=5, pool4_kernel=3, separable_conv1=separable_conv1)
    aux = None
    if aux_logits:
        # Caffe's avg pool 5x5/3 (rounding up, as all its pools): 14x14 -> 4x4.
        head = partial(AuxHead, conv, num_classes=num_classes, grid=4, drop_rate=0.7)
        aux = {"inception4a": head(512, pool=nn.AvgPool2d(5, stride=3, ceil_mode=True)),
               "inception4d": head(528, pool=nn.AvgPool2d(5, stride=3, ceil_mode=True))}
    # Minimum side: 31 for the trunk (stride-2 conv, then four ceil-mode 3x3/2 pools:
    # 31 -> 16 -> 8 -> 4 -> 2 -> 1; at 30 the last pool gets a 1x1 input). The aux heads'
    # 5x5/3 pool gives 4x4 only from a 12 to 14 wide grid at (4a): sides 191 to 238
    # (191 -> 96 -> 48 -> 24 -> 12).
    return InceptionNet("googlenet", stages, num_features=1024, num_classes=num_classes,
                        min_size=31, aux_min_size=191, in_chans=in_chans, drop_rate=drop_rate,
                        aux_heads=aux, default_size=224)


@register_model
def googlenet_bn(num_classes: int = 1000, aux_logits: bool = True, drop_rate: float = 0.2,
                 in_chans: int = 3, transform_input: bool = False) -> InceptionNet:
    """GoogLeNet exactly as torchvision builds it (13,004,888 parameters with the aux heads,
    6,624,904 without).

    BatchNorm (eps 1e-3) after every conv, no LRN, a 3x3 where the paper has the 5x5
    (vision#906), a 2x2/2 pool before (5a), aux heads that pool adaptively to 4x4.
    ``aux_logits``: the two auxiliary heads on (4a) and (4d) (training mode only).
    ``drop_rate``: dropout before the classifier (torchvision 0.2; aux heads 0.7).
    ``transform_input``: map ImageNet-normalized input to the [-1, 1] range of the TF weights.
    """
    _check_transform(transform_input, in_chans)
    conv = conv_bn  # torchvision's BasicConv2d: conv (no bias) -> BN (eps 1e-3) -> ReLU
    stages = googlenet_stages(conv, in_chans, lrn=False, k5=3, pool4_kernel=2)
    aux = None
    if aux_logits:
        head = partial(AuxHead, conv, num_classes=num_classes, grid=4, drop_rate=0.7)
        aux = {"inception4a": head(512, pool=nn.AdaptiveAvgPool2d(4)),
               "inception4d": head(528, pool=nn.AdaptiveAvgPool2d(4))}
    # Minimum side 15: the stride-2 conv and the ceil-mode pools take 15 -> 8 -> 4 -> 2 -> 1,
    # and the last pool (2x2/2) still gives 1 from 1; at 14 the 3x3/2 pool before (4a) gets 1x1.
    return InceptionNet("googlenet_bn", stages, num_features=1024, num_classes=num_classes,
                        min_size=15, in_chans=in_chans, drop_rate=drop_rate, aux_heads=aux,
                        transform_input=transform_input, default_size=224)


# -- a small GoogLeNet for 32x32 images ------------------------------------------------------------
@register_model
def googlenet_cifar(num_classes: int = 10, width_mult: float = 1.0, aux_logits: bool = False,
                    drop_rate: float = 0.0, in_chans: int = 3) -> InceptionNet:
    """The paper's GoogLeNet for 32x32 inputs: the nine Table 1 modules at 1/8 of the widths.

    32x32 -> conv 3x3 (64/8) -> conv 3x3 (192/8) -> max pool 3x3/2 -> 16x16: (3a), (3b) ->
    pool -> 8x8: (4a)-(4e) -> pool -> 4x4: (5a), (5b) -> global average pool -> linear. The
    grids 16/8/4 play the roles of the paper's 28/14/7. Conv + BN + ReLU (BatchNorm makes a
    22-layer net train in a few CPU epochs), true 5x5 branches.

    ``width_mult``: scales every width (Table 1's / 8 at 1.0: about 0.1 M parameters).
    ``aux_logits``: Sec. 5's two auxiliary classifiers on (4a) and (4d), scaled to the 8x8
    grid: avg pool to 2x2 (the paper pools 14x14 to 4x4), 1x1 conv, FC, dropout 0.7, linear.
    ``drop_rate``: dropout before the classifier (the paper's is 0.4).
    """
    w = width_multiplier(width_mult, divisor=8)  # the paper's width c, scaled
    conv = conv_bn
    table = tuple(row.scaled(w) for row in TABLE1)
    stages = [
        Stage("conv1", conv(in_chans, w(64), 3, padding=1), "convolution 3x3/1"),    # N x 8 x 32 x 32
        Stage("conv3", conv(w(64), w(192), 3, padding=1), "convolution 3x3/1"),      # N x 24 x 32 x 32
        _pool("max pool 3x3/2", "maxpool2"),                                         # N x 24 x 16 x 16
    ] + inception_stages(conv, w(192), table, k5=5)
    # 3a-3b: 16 x 16, maxpool3 -> 8 x 8 (4a-4e), maxpool4 -> 4 x 4 (5a-5b: N x 128 x 4 x 4)
    aux = None
    if aux_logits:
        by_name = {row.name: row for row in table}
        head = partial(AuxHead, conv, num_classes=num_classes, grid=2, mid=w(128), fc_width=w(1024),
                       drop_rate=0.7)
        aux = {f"inception{n}": head(by_name[n].out_channels, pool=nn.AdaptiveAvgPool2d(2))
               for n in ("4a", "4d")}
    # Minimum side 8: three ceil-mode 3x3/2 pools take 8 -> 4 -> 2 -> 1; from 7 (-> 3 -> 1)
    # the last pool gets a 1x1 input, which a 3x3 window without padding cannot cover.
    return InceptionNet("googlenet_cifar", stages, num_features=table[-1].out_channels,
                        num_classes=num_classes, min_size=8, in_chans=in_chans, drop_rate=drop_rate,
                        aux_heads=aux, default_size=32)


# -- converters -------------------------------------------------------------------------------------
@register_reference("torchvision.googlenet", model="googlenet_bn", input_size=224, aux_logits=True)
def _from_torchvision_googlenet(theirs, model):
    """torchvision registers conv1 ... inception5b, then aux1 (on 4a), aux2 (on 4d), then fc;
    each module's branches in concatenation order. Ours: the trunk, the aux heads in tap order,
    fc. Without our aux heads, theirs are dropped."""
    keep = (lambda k: k.startswith(("aux1.", "aux2."))) if not len(model.aux) else None
    return match_by_order(theirs, model.state_dict(), skip_theirs=keep)
