"""The cost engine: every formula against the counter on the layers it describes, the two
counters against each other, the per-stage table against the totals, the papers' totals
against our models (the ``cost`` command: tests/test_cli.py)."""
from fractions import Fraction
from functools import lru_cache, partial

import pytest
import torch
from torch import nn

import inception_edu as ie
from inception_edu import cost
from inception_edu.cost import (INCEPTION_3A_5X5, bottleneck_cost, conv_macs, conv_params,
                                count_flops, count_macs, count_params, factorization_cost,
                                fc_bottleneck_params, grid_reduction_cost, kernel_cost_ratio, stage_table)
from inception_edu.layers import Branches


def macs(module, shape):
    """What fvcore counts for convolutions and linear layers (the papers' multiply-adds)."""
    return count_macs(module, shape, ops=("conv", "linear"))


# -- one convolution ----------------------------------------------------------------------------
@pytest.mark.parametrize("c_in, c_out, k, stride, padding, groups, side", [
    (3, 8, 3, 1, 1, 1, 17),
    (16, 32, 5, 1, 2, 1, 12),
    (8, 12, (1, 7), 1, (0, 3), 1, 9),
    (8, 12, (7, 1), 1, (3, 0), 1, 9),
    (6, 10, 3, 2, 0, 1, 35),          # the stride-2 grid reduction of Fig. 10: 35 -> 17
    (8, 16, 3, 1, 1, 4, 10),          # grouped
])
def test_conv_formula_matches_the_counter(c_in, c_out, k, stride, padding, groups, side):
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, groups=groups, bias=True)
    out_hw = tuple(conv(torch.zeros(1, c_in, side, side)).shape[-2:])
    assert count_macs(conv, (c_in, side, side)) == conv_macs(c_in, c_out, k, out_hw, groups=groups)
    assert count_params(conv) == conv_params(c_in, c_out, k, bias=True, groups=groups)
    assert count_params(nn.Conv2d(c_in, c_out, k, groups=groups, bias=False)) == conv_params(
        c_in, c_out, k, groups=groups)


def test_conv_out_side_matches_conv2d():
    for side, k, s, p in [(299, 3, 2, 0), (35, 3, 2, 0), (17, 3, 1, 1), (224, 7, 2, 3), (8, 1, 2, 0)]:
        out = nn.Conv2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, side, side))
        assert out.shape[-1] == cost.conv_out_side(side, k, s, p)


# -- the 1x1 bottleneck -------------------------------------------------------------------------
def _naive(c_in, c_out, k):
    return nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)


def _reduced(c_in, c_mid, c_out, k):
    return nn.Sequential(nn.Conv2d(c_in, c_mid, 1, bias=False), nn.Conv2d(c_mid, c_out, k, padding=k // 2, bias=False))


@pytest.mark.parametrize("c_in, c_mid, c_out, k, hw", [(192, 16, 32, 5, 28), (256, 64, 128, 3, 14),
                                                        (64, 8, 64, 5, 9), (32, 48, 16, 3, 7)])
def test_bottleneck_formula_matches_the_counter(c_in, c_mid, c_out, k, hw):
    c = bottleneck_cost(c_in, c_mid, c_out, k, hw)
    shape = (c_in, hw, hw)
    assert c.before_macs == macs(_naive(c_in, c_out, k), shape)
    assert c.after_macs == macs(_reduced(c_in, c_mid, c_out, k), shape)
    assert c.before_params == count_params(_naive(c_in, c_out, k))
    assert c.after_params == count_params(_reduced(c_in, c_mid, c_out, k))
    assert c.speedup == pytest.approx(k * k * c_in * c_out / (c_in * c_mid + k * k * c_mid * c_out))


def test_googlenet_3a_5x5_branch_with_and_without_its_reduction():
    """GoogLeNet Table 1, inception (3a): the model's own 1x1(16) -> 5x5(32) branch on the
    28x28x192 grid, against a bare 5x5 conv 192 -> 32."""
    model = ie.create_model("googlenet")
    branch = model.features.inception3a.branches[2]
    shape = (192, 28, 28)
    c = bottleneck_cost(**INCEPTION_3A_5X5)
    assert c.after_macs == macs(branch, shape)
    assert c.before_macs == macs(nn.Conv2d(192, 32, 5, padding=2), shape)
    assert c.after_params == count_params(branch) - 16 - 32          # the Caffe model's biases
    # The numbers the chapter quotes follow (~120 M vs ~12.4 M, nearly 10x).
    assert (c.before_macs, c.after_macs) == (120_422_400, 12_443_648)
    assert 9.6 < c.speedup < 9.8


def test_fc_bottleneck_example_of_the_googlenet_notes():
    direct = nn.Linear(1000, 1000, bias=False)
    through = nn.Sequential(nn.Linear(1000, 10, bias=False), nn.Linear(10, 1000, bias=False))
    c = fc_bottleneck_params(1000, 1000, 10)
    assert (c.before_macs, c.after_macs) == (macs(direct, (1000,)), macs(through, (1000,)))
    assert (c.before_params, c.after_params) == (count_params(direct), count_params(through))
    # The notes' full-size numbers, counted on the meta device (no 400 MB of weights).
    with torch.device("meta"):
        direct = nn.Linear(10**4, 10**4, bias=False)
        through = nn.Sequential(nn.Linear(10**4, 100, bias=False), nn.Linear(100, 10**4, bias=False))
    c = fc_bottleneck_params()
    assert (c.before_params, c.after_params) == (count_params(direct), count_params(through)) == (10**8, 2 * 10**6)
    assert c.after_macs == count_macs(through, (10**4,), counter="fast")


# -- factorized convolutions --------------------------------------------------------------------
def _factorized(n, c_in, c_mid, c_out, kind):
    if kind == "asymmetric":
        return nn.Sequential(nn.Conv2d(c_in, c_mid, (1, n), padding=(0, n // 2), bias=False),
                             nn.Conv2d(c_mid, c_out, (n, 1), padding=(n // 2, 0), bias=False))
    layers, widths = (n - 1) // 2, [c_in] + [c_mid] * ((n - 1) // 2 - 1) + [c_out]
    return nn.Sequential(*[nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False) for i in range(layers)])


_SHAPES = [(3, 16, 16, 16, 12), (5, 32, 24, 48, 9), (7, 8, 8, 8, 17), (7, 12, 20, 16, 6)]


# Stacking 3x3s factorizes a 5x5 or larger; a 3x3 is already one 3x3.
@pytest.mark.parametrize("kind, n, c_in, c_mid, c_out, hw",
                         [(k, *s) for k in ("stacked", "asymmetric") for s in _SHAPES
                          if not (k == "stacked" and s[0] == 3)])
def test_factorization_formula_matches_the_counter(kind, n, c_in, c_mid, c_out, hw):
    c = factorization_cost(n, c_in, c_out, hw, kind=kind, c_mid=c_mid)
    shape = (c_in, hw, hw)
    assert c.before_macs == macs(_naive(c_in, c_out, n), shape)
    assert c.after_macs == macs(_factorized(n, c_in, c_mid, c_out, kind), shape)
    assert c.after_params == count_params(_factorized(n, c_in, c_mid, c_out, kind))


def test_the_papers_ratios_from_counted_layers():
    """Rethinking Sec. 3: 5x5 -> two 3x3 is 18/25 (28 % cheaper); n x n -> 1xn + nx1 is 2/n
    (33 % for 3x3); a 5x5 costs 25/9 = 2.78 times a 3x3. Equal widths, as the paper assumes."""
    c, shape = 64, (64, 17, 17)
    five, three = macs(_naive(c, c, 5), shape), macs(_naive(c, c, 3), shape)
    assert Fraction(macs(_factorized(5, c, c, c, "stacked"), shape), five) == Fraction(18, 25)
    assert factorization_cost(5, c, c, 17).savings == pytest.approx(0.28)
    for n in (3, 5, 7):
        full = macs(_naive(c, c, n), shape)
        assert Fraction(macs(_factorized(n, c, c, c, "asymmetric"), shape), full) == Fraction(2, n)
        assert factorization_cost(n, c, c, 17, kind="asymmetric").ratio == pytest.approx(2 / n)
    assert factorization_cost(3, c, c, 17, kind="asymmetric").savings == pytest.approx(1 / 3)
    assert Fraction(five, three) == Fraction(25, 9)
    assert kernel_cost_ratio(5, 3) == pytest.approx(2.78, abs=0.005)


def test_factorization_matches_the_library_blocks():
    """The library's own n x n switch (inception_v3.conv_nxn) costs what the formula says."""
    from inception_edu.models.inception_v3 import conv_nxn
    conv = partial(nn.Conv2d, bias=False)
    shape = (96, 17, 17)
    for factorized in (False, True):
        block = nn.Sequential(*conv_nxn(conv, 96, 64, 128, 7, factorized=factorized))
        c = factorization_cost(7, 96, 128, 17, kind="asymmetric", c_mid=64)
        assert macs(block, shape) == (c.after_macs if factorized else c.before_macs)


def test_formulas_refuse_what_they_do_not_describe():
    with pytest.raises(ValueError, match="odd"):
        factorization_cost(4, 8, 8, 8)
    with pytest.raises(ValueError, match="stacked"):
        factorization_cost(5, 8, 8, 8, kind="diagonal")


# -- grid reduction -----------------------------------------------------------------------------
class _Tap(nn.Module):
    """Records the size of what passes through."""

    def forward(self, x):
        self.numel = x[0].numel()
        return x


def _grid_modules(k, kernel):
    pool = partial(nn.MaxPool2d, 3, stride=2, padding=1)
    conv = partial(nn.Conv2d, kernel_size=kernel, padding=kernel // 2, bias=False)
    return {
        "pool then expand": nn.Sequential(pool(), _Tap(), conv(k, 2 * k)),
        "expand then pool": nn.Sequential(conv(k, 2 * k), pool(), _Tap()),
        "parallel stride-2": nn.Sequential(Branches([conv(k, k, stride=2), pool()]), _Tap()),
    }


@pytest.mark.parametrize("d, k, kernel", [(18, 8, 1), (17, 8, 3), (35, 16, 3), (8, 4, 1)])
def test_grid_reduction_formulas_match_the_counter(d, k, kernel):
    options = grid_reduction_cost(d, k, kernel)
    assert [o.name for o in options] == list(cost.GRID_OPTIONS)
    modules = _grid_modules(k, kernel)
    for o in options:
        m = modules[o.name]
        out = m(torch.zeros(1, k, d, d))
        assert o.output == (out.shape[2], out.shape[3], out.shape[1])
        assert o.macs == macs(m, (k, d, d))
        assert o.params == count_params(m)
        assert o.narrowest == min(t.numel for t in m.modules() if isinstance(t, _Tap))


def test_grid_reduction_paper_costs():
    """Sec. 5 in the paper's words (1x1 convolutions): 2 d^2 k^2 for expand-then-pool, a
    quarter of it for pool-then-expand, half of that again for the parallel block, and only
    pool-then-expand squeezes the representation to (d/2)^2 k."""
    d, k = 34, 40
    pool_first, expand_first, parallel = grid_reduction_cost(d, k)
    assert expand_first.macs == 2 * d * d * k * k
    assert pool_first.macs == 2 * (d // 2) ** 2 * k * k == expand_first.macs // 4
    assert parallel.macs == pool_first.macs // 2
    assert pool_first.narrowest == (d // 2) ** 2 * k < parallel.narrowest == expand_first.narrowest


# -- the counters -------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _model(name):
    torch.manual_seed(0)
    return ie.create_model(name)


@lru_cache(maxsize=None)
def _fvcore(name, with_aux=False):
    model = _model(name)
    return count_macs(model, model.default_size, with_aux=with_aux, by_operator=True)


@pytest.mark.parametrize("name", ie.list_models())
def test_fast_counter_equals_fvcore(name):
    """counter='fast' (fvcore's rules on shapes) gives fvcore's numbers, operator by operator."""
    model = _model(name)
    for with_aux in ((False, True) if len(model.aux) else (False,)):
        fast = count_macs(model, model.default_size, with_aux=with_aux, by_operator=True, counter="fast")
        assert fast == _fvcore(name, with_aux)


class _OtherOps(nn.Module):
    """Operators our models do not use but fvcore counts: the fast counter must agree on them too."""

    def __init__(self):
        super().__init__()
        self.w, self.b = nn.Parameter(torch.randn(16, 8)), nn.Parameter(torch.randn(4, 8, 5))
        self.norms = nn.ModuleList([nn.LayerNorm(16), nn.GroupNorm(2, 4), nn.InstanceNorm2d(4, affine=True),
                                    nn.InstanceNorm2d(4), nn.BatchNorm2d(4, affine=False)])

    def forward(self, x):                                      # N x 4 x 6 x 16
        y = x @ self.w                                         # matmul
        parts = [torch.mm(y.reshape(-1, 8), self.b[0]), torch.bmm(y.reshape(4, 6, 8), self.b),
                 torch.addmm(torch.zeros(5), y.reshape(-1, 8), self.b[0]),   # a tensor made in forward
                 nn.functional.adaptive_avg_pool2d(x, 2)] + [norm(x) for norm in self.norms]
        return sum(p.sum() for p in parts)


def test_fast_counter_equals_fvcore_on_other_operators():
    model = _OtherOps()
    fast = count_macs(model, (4, 6, 16), by_operator=True, counter="fast")
    assert fast == count_macs(model, (4, 6, 16), by_operator=True)
    assert {"matmul", "mm", "bmm", "addmm", "layer_norm", "group_norm", "instance_norm", "batch_norm",
            "adaptive_avg_pool2d"} <= set(fast)


@pytest.mark.parametrize("name", ["googlenet", "googlenet_bn", "bn_inception", "inception_v3",
                                  "inception_v4", "inception_resnet_v2", "nin_cifar"])
def test_flop_counter_mode_is_twice_fvcore_conv_plus_linear(name):
    model = _model(name)
    ops = _fvcore(name)
    assert count_flops(model, model.default_size) == 2 * (ops["conv"] + ops["linear"])


def test_inception_v3_matches_torchvision_published_figures():
    """torchvision's metadata: 5.713 GFLOPS (its unit is multiply-adds of conv + linear),
    27,161,264 params with the aux head, 23,834,568 without; 5,731,282,144 by fvcore."""
    model = _model("inception_v3")
    ops = _fvcore("inception_v3")
    assert ops["conv"] + ops["linear"] == 5_713_216_096
    assert sum(ops.values()) == count_macs(model, 299) == 5_731_282_144
    assert (count_params(model), count_params(model, with_aux=False)) == (27_161_264, 23_834_568)


def test_aux_heads_cost_what_their_own_count_says():
    model = _model("inception_v3")
    head = model.aux["Mixed_6e"]
    with_aux, without = sum(_fvcore("inception_v3", True).values()), sum(_fvcore("inception_v3").values())
    assert with_aux - without == count_macs(head, (768, 17, 17), counter="fast") > 0
    assert count_params(model) - count_params(model, with_aux=False) == count_params(head)


def test_ops_adds_up_only_the_named_operators():
    model = _model("inception_v3")
    by_op = count_macs(model, 299, by_operator=True)
    assert count_macs(model, 299, ops=cost.PAPER_OPS) == by_op["conv"] + by_op["linear"]
    assert count_macs(model, 299, ops="batch_norm", counter="fast") == by_op["batch_norm"]
    assert count_macs(nn.Conv2d(3, 8, 3), (3, 9, 9), ops=("conv", "linear")) == conv_macs(3, 8, 3, 7)
    for bad in (("convolution",), (), "relu"):
        with pytest.raises(ValueError, match="ops"):
            count_macs(model, 299, ops=bad)
    with pytest.raises(ValueError, match="not both"):
        count_macs(model, 299, ops=cost.PAPER_OPS, by_operator=True)


def test_count_params_trainable_only():
    model = ie.create_model("nin_cifar")
    total = count_params(model)
    for p in model.features[0].parameters():
        p.requires_grad_(False)
    frozen = count_params(model.features[0])
    assert count_params(model, trainable_only=True) == total - frozen > 0


def test_counting_leaves_the_model_as_it_was():
    model = ie.create_model("googlenet_bn").train()
    model.features.inception3a.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_macs(model, 224, with_aux=True)
    count_macs(model, 224, counter="fast")
    count_flops(model, 224)
    stage_table(model, with_aux=True)
    assert model.training and not model.features.inception3a.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_counting_is_quiet(capfd):
    model = _model("inception_v3")
    count_macs(model, 299, with_aux=True)
    stage_table(_model("googlenet"))
    count_flops(model, 299)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_input_size_forms_and_bad_sizes():
    model = _model("googlenet_cifar")
    assert count_macs(model, 32) == count_macs(model, (32, 32)) == count_macs(model, (3, 32, 32))
    with pytest.raises(ValueError, match="at least 75"):
        count_macs(_model("inception_v4"), 64)
    for bad in ("big", (0, 32), ()):
        with pytest.raises(ValueError, match="input_size"):
            count_macs(model, bad)
    with pytest.raises(ValueError, match="counter"):
        count_macs(model, 32, counter="ptflops")


# -- the papers' totals, recomputed ---------------------------------------------------------------
@pytest.mark.parametrize("name, paper, tolerance", [
    ("googlenet", 1.5e9, 0.06),      # "1.5 billion multiply-adds at inference time" (Sec. 1); 1.58 B
    ("bn_inception", 2.0e9, 0.03),   # Rethinking Table 3: 2.0 B; 2.04 B
    ("inception_v3", 5.0e9, 0.15),   # "about 5 billion multiply-adds" (Rethinking Sec. 1); 5.71 B
])
def test_papers_totals(name, paper, tolerance):
    """The papers count convolutions and fully connected layers at the native input."""
    ops = _fvcore(name)
    assert ops["conv"] + ops["linear"] == pytest.approx(paper, rel=tolerance)


# -- the stage table ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, with_aux", [("inception_v3", False), ("inception_v3", True),
                                            ("googlenet", True), ("bn_inception", False),
                                            ("inception_resnet_v1", False), ("nin_cifar", False)])
def test_stage_table_totals_equal_the_counters(name, with_aux):
    model = _model(name)
    table = stage_table(model, with_aux=with_aux)
    rows, total = table.iloc[:-1], table.iloc[-1]
    assert list(table.columns) == ["stage", "label", "kind", "output", "params", "multiply-adds"]
    assert list(rows["stage"]) == [s.name for s in model.stages] + ["head"] + (
        [f"aux.{a}" for a in model.aux] if with_aux else [])
    assert total["stage"] == "total"
    assert total["params"] == rows["params"].sum() == count_params(model, with_aux=with_aux)
    assert total["multiply-adds"] == rows["multiply-adds"].sum() == sum(_fvcore(name, with_aux).values())
    assert table.equals(stage_table(model, with_aux=with_aux, counter="fast"))


def test_stage_table_shapes_are_the_forward_shapes():
    model = _model("inception_v3")
    table = stage_table(model).set_index("stage")
    assert table.loc["Mixed_5d", "output"] == "288 x 35 x 35"       # Rethinking Table 1
    assert table.loc["Mixed_6e", "output"] == "768 x 17 x 17"
    assert table.loc["Mixed_7c", "output"] == "2048 x 8 x 8"
    small = _model("googlenet_cifar")
    x = torch.zeros(1, 3, 32, 32)
    shape = " x ".join(map(str, small.eval().forward_features(x).shape[1:]))
    assert stage_table(small).iloc[len(small.stages) - 1]["output"] == shape


def test_stage_table_needs_a_stage_table():
    with pytest.raises(ValueError, match="model.stages"):
        stage_table(nn.Conv2d(3, 8, 3), 32)


