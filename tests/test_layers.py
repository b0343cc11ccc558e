"""The shared builders of ``layers.py`` and the text view of a module, against the papers'
tables and torch's own layers."""
import math

import pytest
import torch
from torch import nn

import inception_edu as ie
from inception_edu.cost import conv_params
from inception_edu.describe import describe_branches, describe_module
from inception_edu.layers import (ConvBlock, conv_bn, conv_nxn, reduction_a, remove_batchnorm, separable_conv,
                                  width_multiplier)

# GoogLeNet's Table 1 (Szegedy et al. 2015), typed from the paper: #1x1, #3x3 reduce, #3x3,
# #5x5 reduce, #5x5, pool proj.
TABLE1 = {"3a": (64, 96, 128, 16, 32, 32), "4e": (256, 160, 320, 32, 128, 128),
          "5b": (384, 192, 384, 48, 128, 128)}


@pytest.mark.parametrize("row", sorted(TABLE1))
def test_describe_branches_reads_table1(row):
    c1, r3, c3, r5, c5, pp = TABLE1[row]
    block = getattr(ie.create_model("googlenet").features, f"inception{row}")
    assert describe_branches(block) == [f"1x1 conv, {c1}", f"1x1 conv, {r3} -> 3x3 conv, {c3}",
                                        f"1x1 conv, {r5} -> 5x5 conv, {c5}", f"3x3 max pool -> 1x1 conv, {pp}"]


def test_describe_residual_block_and_bad_input():
    # Inception-v4 paper, Fig. 16: Inception-ResNet-A of v2, 1x1 32 | 1x1 32 -> 3x3 32 |
    # 1x1 32 -> 3x3 48 -> 3x3 64, then the 1x1 linear projection back to the trunk (320 wide).
    block = ie.create_model("inception_resnet_v2").features.block35_1
    assert describe_branches(block) == ["1x1 conv, 32", "1x1 conv, 32 -> 3x3 conv, 32",
                                        "1x1 conv, 32 -> 3x3 conv, 48 -> 3x3 conv, 64"]
    assert describe_module(block).endswith("-> 1x1 conv, 320, linear -> x 0.17 -> ReLU")
    with pytest.raises(TypeError, match="Branches"):
        describe_branches(nn.Conv2d(3, 3, 1))


def test_conv_nxn_is_the_receptive_field_of_one_nxn():
    # Rethinking Sec. 3.2: 1 x n then n x 1 covers the n x n window with 2n weights per pair.
    layers = conv_nxn(lambda *a, **k: nn.Conv2d(*a, bias=False, **k), 4, 4, 4, 7)
    assert [l.kernel_size for l in layers] == [(1, 7), (7, 1)]
    x = torch.zeros(1, 4, 15, 15)
    x[..., 7, 7] = 1
    for l in layers:
        nn.init.ones_(l.weight)
    y = nn.Sequential(*layers)(x)
    assert y.shape == x.shape and int((y[0, 0] != 0).sum()) == 7 * 7
    with pytest.raises(ValueError, match="first"):
        conv_nxn(conv_bn, 4, 4, 4, 7, first="7x1")


def test_reduction_a_widths_follow_the_papers_table1():
    # Inception-v4 paper, Table 1: k, l, m, n; Reduction-A outputs n + m + the input width.
    for net, (k, l, m, n), c in [("inception_v4", (192, 224, 256, 384), 384),
                                 ("inception_resnet_v1", (192, 192, 256, 384), 256),
                                 ("inception_resnet_v2", (256, 256, 384, 384), 320)]:
        block = reduction_a(conv_bn, c, k, l, m, n).eval()
        assert block.out_channels == c + n + m
        assert block(torch.zeros(1, c, 35, 35)).shape == (1, c + n + m, 17, 17)
        ours = ie.create_model(net).features.mixed_6a if net != "inception_v4" else \
            ie.create_model(net).features.Mixed_6a
        assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in block.parameters()]


def test_separable_conv_counts_and_errors():
    conv = separable_conv(conv_bn, 3, 64, 7, stride=2, padding=3, depth_multiplier=8)
    assert conv.depthwise.groups == 3 and conv.depthwise.out_channels == 24
    weights = sum(p.numel() for n, p in conv.named_parameters() if n.endswith("conv.weight") or n == "depthwise.weight")
    assert weights == conv_params(3, 24, 7, groups=3) + conv_params(24, 64, 1)
    assert conv(torch.zeros(1, 3, 224, 224)).shape == (1, 64, 112, 112)
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="depth_multiplier"):
            separable_conv(conv_bn, 3, 64, 7, depth_multiplier=bad)


def test_width_multiplier_rule_and_validation():
    w = width_multiplier(0.5, divisor=8)
    assert (w(64), w(192), w(8)) == (round(64 * 0.5 / 8), round(192 * 0.5 / 8), 1)
    assert width_multiplier(0.01, minimum=8)(64) == 8
    for bad in (0, -1.0, math.inf, math.nan, "1", True, None):
        with pytest.raises(ValueError, match="width_mult must be a positive number"):
            width_multiplier(bad)
    for name in ie.list_models("*cifar*"):
        with pytest.raises(ValueError, match="width_mult must be a positive number"):
            ie.create_model(name, width_mult=0)


@pytest.mark.parametrize("init", ["xavier", "he"])
def test_remove_batchnorm(init):
    torch.manual_seed(0)
    model = ie.create_model("googlenet_cifar", width_mult=0.5)
    n_blocks = sum(isinstance(m, ConvBlock) for m in model.modules())
    assert remove_batchnorm(model, init) is model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    convs = [m.conv for m in model.modules() if isinstance(m, ConvBlock)]
    assert len(convs) == n_blocks and all(c.bias is not None and not c.bias.any() for c in convs)
    # The initialisation's own variance: Glorot 2 / (fan_in + fan_out), He 2 / fan_in.
    big = max(convs, key=lambda c: c.weight.numel())
    fan_in = big.weight[0].numel()
    fan_out = big.weight.shape[0] * big.weight[0, 0].numel()
    expected = 2 / (fan_in + fan_out) if init == "xavier" else 2 / fan_in
    assert float(big.weight.detach().var()) == pytest.approx(expected, rel=0.1)
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    kept = remove_batchnorm(ie.create_model("googlenet_cifar"), init=None, conv_bias=False)
    assert all(m.conv.bias is None for m in kept.modules() if isinstance(m, ConvBlock))
    with pytest.raises(ValueError, match="init"):
        remove_batchnorm(model, "orthogonal")
    # reinit=(nn.Conv2d,): the classifier keeps the weights it had.
    fresh = ie.create_model("googlenet_cifar")
    fc = fresh.fc.weight.detach().clone()
    remove_batchnorm(fresh, "he", reinit=(nn.Conv2d,))
    assert torch.equal(fresh.fc.weight, fc)
