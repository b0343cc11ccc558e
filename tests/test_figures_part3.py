"""The figures of the book's part III: residual scaling (Inception-ResNet) and uniform blocks
(Inception-v4).

Explorers are driven the way a reader drives them (``.set(...)``); the numbers behind each
figure are checked against a computation done here independently: the trunk statistics
against the blocks' own ``forward``, the block-count costs against the counter run on a
network built with those counts.
"""
import copy
import math

import pytest
import torch
from torch import nn

import inception_edu as ie
from inception_edu.cost import count_macs, count_params
from inception_edu.figures import residual, uniform
from inception_edu.layers import conv_bn
from inception_edu.models.base import InceptionNet, Stage
from inception_edu.models.inception_v4 import (inception_a, inception_b, inception_c, reduction_a,
                                               reduction_b, v4_stages)


# -- residual scaling ---------------------------------------------------------------------------

def _trunk_by_forward(stack, x):
    """RMS and zero share of the trunk after the stem and every block, through the blocks' own
    forward (BatchNorm on batch statistics, as in training), on a copy of the stack."""
    stack = copy.deepcopy(stack).train()
    rms, zeros = [], []
    with torch.no_grad():
        h = stack.stem(x)
        for i in range(len(stack.blocks) + 1):
            if i:
                h = stack.blocks[i - 1](h)
            rms.append(float(h.double().pow(2).mean().sqrt()))
            zeros.append(float((h == 0).double().mean()))
    return rms, zeros


def test_activation_stats_match_the_blocks_forward():
    torch.manual_seed(0)
    stack = residual.ResidualStack(width=48, depth=4, scale=0.3)
    x = torch.randn(8, 3, 8, 8)
    before = {k: v.clone() for k, v in stack.state_dict().items()}
    stats = residual.activation_stats(stack, x)
    rms, zeros = _trunk_by_forward(stack, x)
    assert stats["trunk_rms"] == pytest.approx(rms, rel=1e-6)
    assert stats["zero_fraction"] == pytest.approx(zeros, abs=1e-12)
    # Measuring changes nothing: running statistics and the step counters are as they were.
    after = stack.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # What each block adds is scale * residual(x), and update_ratio relates it to the block's input.
    with torch.no_grad(), residual._frozen_batchnorm_stats(stack):
        h = stack.stem(x)
        added = 0.3 * stack.blocks[0].residual(h)
    assert stats["residual_rms"][1] == pytest.approx(float(added.double().pow(2).mean().sqrt()), rel=1e-6)
    assert stats["update_ratio"][1] == pytest.approx(stats["residual_rms"][1] / stats["trunk_rms"][0])


def test_the_scale_is_not_a_parameter():
    # Stacks built with the same seed differ only in the scale: the comparison is controlled.
    states = []
    for s in (1.0, 0.1):
        torch.manual_seed(3)
        states.append(residual.ResidualStack(width=32, depth=3, scale=s).state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_stack_is_made_of_the_libraries_residual_blocks():
    stack = residual.ResidualStack(width=64, depth=2, scale=0.2)
    block = stack.blocks[0]
    assert isinstance(block, ie.layers.ResidualBranches) and block.scale == 0.2
    # v2's A block: 1x1 32 | 1x1 32 -> 3x3 32 | 1x1 32 -> 3x3 48 -> 3x3 64, projected 128 -> 64.
    assert (block.proj.in_channels, block.proj.out_channels) == (32 + 32 + 64, 64)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.proj.modules())


@pytest.mark.parametrize("values", [dict(scale=0.3, depth=5, width=64), dict(scale=1.0, depth=2, width=128),
                                    dict(scale=0.05, depth=8, width=64)])
def test_growth_explorer_follows_its_controls(values):
    ex = residual.explore_residual_scaling(scale=0.2, depth=3, width=64)
    ex.set(**values)
    d = ex.data
    assert (d["scale"], d["depth"], d["width"]) == (values["scale"], values["depth"], values["width"])
    x, _ = residual._digits_batch(16, 0)
    for key, s in (("scaled", values["scale"]), ("unscaled", 1.0)):
        torch.manual_seed(0)
        stack = residual.ResidualStack(values["width"], values["depth"], s)
        rms, _ = _trunk_by_forward(stack, x)
        assert d[key]["trunk_rms"] == pytest.approx(rms, rel=1e-5)
        # The formula line: sqrt(rms_0^2 + the sum of the squared residuals so far).
        partial = [math.sqrt(rms[0] ** 2 + sum(r * r for r in d[key]["residual_rms"][1:i + 1]))
                   for i in range(values["depth"] + 1)]
        assert d[key]["predicted_rms"] == pytest.approx(partial)
        assert d[key]["growth"] == pytest.approx(rms[-1] / rms[0], rel=1e-5)
    assert ex.image.value[:4] == b"\x89PNG"


def test_unscaled_trunk_grows_more_at_initialization():
    d = residual.growth_data(scale=0.1, depth=10, width=64)
    assert d["unscaled"]["growth"] > 1.3 > d["scaled"]["growth"]
    # Each unscaled block changes its input by tens of percent, each 0.1-scaled block by ~ a tenth of that.
    assert d["unscaled"]["update_ratio"][1] > 5 * d["scaled"]["update_ratio"][1]


def test_residual_scaling_data_is_controlled_and_complete():
    d = residual.residual_scaling_data(scales=(1.0, 0.2), width=32, depth=3, steps=2, lr=0.01, batch_size=8)
    assert d["scales"] == (1.0, 0.2) and (d["width"], d["depth"], d["steps"]) == (32, 3, 2)
    for s in d["scales"]:
        assert len(d["loss"][s]) == 2 and all(math.isfinite(v) for v in d["loss"][s])
        for stats in (d["init"][s], d["trained"][s]):
            assert len(stats["trunk_rms"]) == 4 and all(0 <= z <= 1 for z in stats["zero_fraction"])
    # Same weights and batch: the stems agree at initialization whatever the scale.
    assert d["init"][1.0]["trunk_rms"][0] == d["init"][0.2]["trunk_rms"][0]
    # The training steps moved the weights: the stem's output after training differs.
    assert d["trained"][1.0]["trunk_rms"][0] != d["init"][1.0]["trunk_rms"][0]


def test_train_steps_stop_when_the_loss_is_not_finite():
    torch.manual_seed(0)
    stack = residual.ResidualStack(width=16, depth=2, scale=1.0)
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    x[8:] = float("nan")    # the second batch poisons the loss
    losses = residual.train_steps(stack, x, y, steps=6, lr=0.01, batch_size=8)
    assert len(losses) == 2 and math.isfinite(losses[0]) and not math.isfinite(losses[1])


@pytest.mark.parametrize("bad", [dict(scale=0.0), dict(scale=-1.0), dict(depth=0), dict(width=2.5)])
def test_bad_values_say_what_to_do(bad):
    with pytest.raises(ValueError, match="scale|depth|width"):
        residual.growth_data(**{**dict(scale=0.2, depth=3, width=16), **bad})


def test_residual_figures_draw():
    d = residual.residual_scaling_data(scales=(1.0, 0.1), width=16, depth=2, steps=1, lr=0.01, batch_size=4)
    fig = residual.plot_residual_scaling(data=d)
    assert len(fig.axes) == 3
    assert len(residual.plot_activation_growth(0.2, 3, 16).axes) == 2
    assert ie.plot_residual_scaling is residual.plot_residual_scaling
    assert ie.explore_residual_scaling is residual.explore_residual_scaling


# -- uniform blocks (Inception-v4) -----------------------------------------------------------------

def _v4_like(n_a, n_b, n_c):
    """Inception-v4's stem, reductions and head with n_a / n_b / n_c blocks, on the meta device."""
    with torch.device("meta"):
        stem = [s for s in v4_stages(conv_bn) if s.kind not in ("inception", "reduction")]
        stages = (stem
                  + [Stage(f"a{i}", inception_a(conv_bn, 384), kind="inception") for i in range(n_a)]
                  + [Stage("red_a", reduction_a(conv_bn, 384), kind="reduction")]
                  + [Stage(f"b{i}", inception_b(conv_bn, 1024), kind="inception") for i in range(n_b)]
                  + [Stage("red_b", reduction_b(conv_bn, 1024), kind="reduction")]
                  + [Stage(f"c{i}", inception_c(conv_bn, 1536), kind="inception") for i in range(n_c)])
        return InceptionNet("v4_like", stages, num_features=1536, min_size=75, default_size=299)


@pytest.mark.parametrize("counts", [(4, 7, 3), (2, 3, 1), (0, 0, 0), (1, 10, 5)])
def test_uniform_explorer_costs_equal_a_counted_network(counts):
    ex = uniform.explore_uniform_blocks()
    ex.set(n_a=counts[0], n_b=counts[1], n_c=counts[2])
    model = _v4_like(*counts)
    assert ex.data["params"] == count_params(model)
    assert ex.data["macs"] == count_macs(model, 299, counter="fast")
    assert ex.image.value[:4] == b"\x89PNG"


def test_uniform_default_is_inception_v4(references):
    d = uniform.uniform_blocks_data()
    ref = references["timm.inception_v4"]
    assert (d["params"], d["macs"]) == (ref["num_params"], ref["fvcore_macs"])
    assert (d["v4"]["params"], d["v4"]["macs"]) == (ref["num_params"], ref["fvcore_macs"])
    assert d["counts"] == uniform.V4_COUNTS


def test_uniform_bad_counts():
    with pytest.raises(ValueError, match="whole number"):
        uniform.uniform_blocks_data(n_a=-1)


def test_stage_cost_figure_has_a_bar_per_row():
    with torch.device("meta"):
        model = ie.create_model("inception_v4")
    table = ie.stage_table(model, counter="fast")
    fig = uniform.plot_stage_costs(table)
    rows = len(table) - 1   # no bar for the total
    assert len(fig.axes[0].patches) == rows and len(fig.axes[1].patches) == rows
