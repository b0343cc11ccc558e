"""BN-Inception: Ioffe & Szegedy, *Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift* (ICML 2015, arXiv 1502.03167), Sec. 4.2 and Fig. 5.

GoogLeNet with Batch Normalization after every convolution, and the architecture changes of
the paper's appendix (Fig. 5), which later papers call "BN-Inception" (or Inception-v2):

* every 5x5 convolution becomes two stacked 3x3 convolutions ("double #3x3"), the idea
  *Rethinking* (2016) later analyses: :func:`inception_bn`;
* (3c) and (4e) are stride-2 modules that halve the grid and widen it (a 3x3/2 branch, a
  double 3x3/2 branch and a max-pool "pass through" branch), instead of GoogLeNet's separate
  max pools between the stages;
* average pooling in most modules' pool branch (max pooling in (5b));
* the 28x28 stage gains a module (3c), and LRN, dropout and the auxiliary classifiers go
  (Sec. 4.2.1: BN makes them unnecessary).

Built exactly as ``pretrainedmodels.bninception`` (Cadene's port of a Caffe BN-Inception by
Yuanjun Xiong): conv *with* bias -> BatchNorm (eps 1e-5, Caffe's) -> ReLU, pools that round up
(Caffe), avg pools that count the zero padding, and the input fed to the first conv unchanged
-- its weights expect BGR pixels in [0, 255] minus the mean (104, 117, 128), a preprocessing
step outside the network. Checked against it on fingerprint weights in
``tests/test_reference.py``.

Those weights are a later reproduction of the architecture in Caffe, not the network behind
the paper's results: pretrainedmodels lists 73.5 % top-1 for them, where the paper's best
single network, BN-x30, reached 74.8 % (its Table 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..convert import match_by_order, register_reference
from ..layers import Branches, ConvBlock, ConvFactory, seq
from ..registry import register_model
from .base import InceptionNet, Stage


@dataclass(frozen=True)
class BNInceptionWidths:
    """One Inception row of the paper's Fig. 5 table, in its column order."""

    #: The row's name, e.g. "3a"; the stage is ``inception_3a`` (the Caffe model's name).
    name: str
    #: "#1x1" (0 in the stride-2 modules (3c) and (4e): they have no 1x1 branch).
    c1x1: int
    #: "#3x3 reduce": the 1x1 conv before the single 3x3.
    c3x3_reduce: int
    #: "#3x3".
    c3x3: int
    #: "double #3x3 reduce": the 1x1 conv before the two stacked 3x3s (GoogLeNet's 5x5 branch).
    d3x3_reduce: int
    #: "double #3x3": the width of both stacked 3x3s.
    d3x3: int
    #: "Pool": ``"avg"`` or ``"max"``.
    pool: str
    #: "+ proj": the 1x1 conv after the pool; 0 = "pass through" (stride-2 modules).
    pool_proj: int
    #: 2 for the grid-reducing modules (3c) and (4e).
    stride: int = 1

    def out_channels(self, in_channels: int) -> int:
        passed = in_channels if self.pool_proj == 0 else self.pool_proj
        return self.c1x1 + self.c3x3 + self.d3x3 + passed


#: Fig. 5 of the paper: the ten Inception modules.
FIG5 = (
    BNInceptionWidths("3a", 64, 64, 64, 64, 96, "avg", 32),             # 28 x 28 x 256
    BNInceptionWidths("3b", 64, 64, 96, 64, 96, "avg", 64),             # 28 x 28 x 320
    BNInceptionWidths("3c", 0, 128, 160, 64, 96, "max", 0, stride=2),   # 14 x 14 x 576
    BNInceptionWidths("4a", 224, 64, 96, 96, 128, "avg", 128),          # 14 x 14 x 576
    BNInceptionWidths("4b", 192, 96, 128, 96, 128, "avg", 128),         # 14 x 14 x 576
    BNInceptionWidths("4c", 160, 128, 160, 128, 160, "avg", 128),       # 14 x 14 x 608
    BNInceptionWidths("4d", 96, 128, 192, 160, 192, "avg", 128),        # 14 x 14 x 608
    BNInceptionWidths("4e", 0, 128, 192, 192, 256, "max", 0, stride=2), # 7 x 7 x 1056
    BNInceptionWidths("5a", 352, 192, 320, 160, 224, "avg", 128),       # 7 x 7 x 1024
    BNInceptionWidths("5b", 352, 192, 320, 192, 224, "max", 128),       # 7 x 7 x 1024
)


def inception_bn(conv: ConvFactory, in_channels: int, row: BNInceptionWidths) -> Branches:
    """Fig. 5's module: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 | pool -> 1x1.

    Stride 2 ((3c), (4e)): no 1x1 branch, the last 3x3 of each conv branch has stride 2, and
    the pool branch is a max pool 3x3/2 passing the input width through.
    """
    s = row.stride
    branches = [seq(conv(in_channels, row.c1x1, 1))] if row.c1x1 else []
    branches += [
        seq(conv(in_channels, row.c3x3_reduce, 1), conv(row.c3x3_reduce, row.c3x3, 3, stride=s, padding=1)),
        seq(conv(in_channels, row.d3x3_reduce, 1), conv(row.d3x3_reduce, row.d3x3, 3, padding=1),
            conv(row.d3x3, row.d3x3, 3, stride=s, padding=1)),
    ]
    if s == 2:
        branches.append(seq(nn.MaxPool2d(3, stride=2, ceil_mode=True)))
    else:
        # Caffe's pooling: ceil mode; its average counts the zero padding.
        pool = (nn.AvgPool2d(3, stride=1, padding=1, ceil_mode=True, count_include_pad=True)
                if row.pool == "avg" else nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True))
        branches.append(seq(pool, conv(in_channels, row.pool_proj, 1)))
    return Branches(branches, out_channels=row.out_channels(in_channels))


class GlobalAvgPool(nn.Module):
    """Average over the whole grid with ``avg_pool2d`` (the Caffe model's ``AvgPool2d(7)`` at
    224x224, for any input size). fvcore counts ``adaptive_avg_pool2d`` but not ``avg_pool2d``,
    so this keeps our multiply-add count equal to the reference's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=x.shape[-2:])  # a torch.Size, so torch.fx can trace it


def bn_inception_stages(conv: ConvFactory, in_chans: int = 3, table=FIG5) -> list[Stage]:
    """Fig. 5, one stage per row, with the Caffe model's layer names. Shapes at 224x224."""
    pool = partial(nn.MaxPool2d, 3, stride=2, ceil_mode=True)  # Caffe rounds up: 112 -> 56 -> 28
    stages = [
        Stage("conv1_7x7_s2", conv(in_chans, 64, 7, stride=2, padding=3),
              "convolution 7x7/2"),                                                            # N x 64 x 112 x 112
        Stage("pool1_3x3_s2", pool(), "max pool 3x3/2", "pool"),                               # N x 64 x 56 x 56
        Stage("conv2_3x3_reduce", conv(64, 64, 1), "convolution 3x3/1 (#3x3 reduce 1x1)"),     # N x 64 x 56 x 56
        Stage("conv2_3x3", conv(64, 192, 3, padding=1), "convolution 3x3/1"),                  # N x 192 x 56 x 56
        Stage("pool2_3x3_s2", pool(), "max pool 3x3/2", "pool"),                               # N x 192 x 28 x 28
    ]
    cin = 192
    for row in table:
        kind = "reduction" if row.stride == 2 else "inception"
        stages.append(Stage(f"inception_{row.name}", inception_bn(conv, cin, row),
                            f"inception ({row.name})", kind))
        cin = row.out_channels(cin)
    return stages


class BNInceptionNet(InceptionNet):
    """BN-Inception accepts only input sides whose 28x28 and 14x14 grids are even.

    In (3c) and (4e) a 3x3/2 conv with padding 1 (an odd side s gives (s + 1) / 2) sits beside
    a 3x3/2 max pool that rounds up without padding ((s - 1) / 2): their outputs agree only
    for even s. At 224 the grids are 28 and 14; at 299 they would be 37 and the concatenation
    fails, so we say so first.
    """

    @staticmethod
    def grid_at_3c(side: int) -> int:
        # conv 7x7/2 pad 3 -> ceil(s / 2); each ceil-mode max pool 3x3/2 -> floor(s / 2).
        return ((side + 1) // 2) // 2 // 2

    @classmethod
    def accepts(cls, side: int) -> bool:
        return cls.grid_at_3c(side) % 4 == 0 and cls.grid_at_3c(side) > 0

    def check_input(self, x: torch.Tensor) -> None:
        super().check_input(x)
        bad = [s for s in x.shape[-2:] if not self.accepts(int(s))]
        if bad:
            s = int(bad[0])
            lower = next(t for t in range(s, 0, -1) if self.accepts(t))
            upper = next(t for t in range(s, 16 * s) if self.accepts(t))
            raise ValueError(f"{self.name} cannot take a side of {s} pixels: its stride-2 modules (3c) and "
                             f"(4e) need the grid entering (3c) to be a multiple of 4 (28 at 224x224; "
                             f"{self.grid_at_3c(s)} here). Resize the images to {lower} or {upper} pixels "
                             f"(native {self.default_size}).")


@register_model
def bn_inception(num_classes: int = 1000, drop_rate: float = 0.0, in_chans: int = 3) -> BNInceptionNet:
    """BN-Inception exactly as ``pretrainedmodels.bninception`` builds it (11,295,240 parameters).

    ``drop_rate``: dropout before the classifier; the paper removes dropout (Sec. 4.2.1), and
    so does the Caffe model, hence 0.
    Input sides must make the (3c) grid a multiple of 4 (31-38, 63-70, ..., 223-230, ...;
    224 is native): see :class:`BNInceptionNet`.
    """
    # The Caffe model's conv keeps its bias even before BN. BN eps 1e-5 (Caffe's); the port's
    # momentum=0.9 is Caffe's moving_average_fraction copied literally (torch's 0.9 would
    # mean "mostly the last batch"), so we keep torch's 0.1, which is what Caffe's 0.9 means.
    conv = partial(ConvBlock, norm=True, eps=1e-5, bias=True)
    stages = bn_inception_stages(conv, in_chans)
    # Minimum side 31: the (3c) grid must be a positive multiple of 4 (31 -> 16 -> 8 -> 4).
    model = BNInceptionNet("bn_inception", stages, num_features=1024, num_classes=num_classes,
                           min_size=31, in_chans=in_chans, drop_rate=drop_rate, default_size=224)
    model.global_pool = GlobalAvgPool()
    return model


@register_reference("pretrainedmodels.bninception", model="bn_inception", input_size=224)
def _from_pretrainedmodels_bninception(theirs, model):
    """The port registers each conv, then its BN, in the order the branches are concatenated,
    and ``last_linear`` last -- the order of our ConvBlocks (conv, bn): entry for entry."""
    return match_by_order(theirs, model.state_dict())
