"""Module and network diagrams (issue 14), checked against the modules themselves.

Every label is compared with the layer it names, read here independently of the drawer
(``named_modules`` and the layers' own attributes), and every text's rendered extent is
checked: no two overlap and all lie inside the figure, which is at most the book's column
(7 inches) wide.

To keep the file fast, each registered model draws each *distinct* module once: stages that
differ from an earlier stage of the same model only in their widths (Inception-v4's four
Inception-A modules, Inception-ResNet-v2's twenty B blocks) are drawn once. The models are
built on the meta device (no weights).
"""
import re

import numpy as np
import pytest
import torch
from matplotlib.text import Text
from torch import nn

import inception_edu as ie
from inception_edu.cost import count_macs
from inception_edu.diagrams import distinct_stages, stage_inputs
from inception_edu.layers import Branches, ConvBlock, ResidualBranches, conv_bn, seq
from inception_edu.models import inception_v3, inception_v4

COLUMN = 7.0


# -- reading the figure ------------------------------------------------------------------------
def _texts(fig):
    return [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]


def assert_no_overlap_and_inside(fig):
    assert fig.get_size_inches()[0] <= COLUMN + 1e-6, f"{fig.get_size_inches()[0]:.2f} in wide"
    renderer = fig.canvas.get_renderer()
    texts = _texts(fig)
    boxes = np.array([t.get_window_extent(renderer).extents for t in texts])   # x0 y0 x1 y1
    W, H = fig.bbox.width, fig.bbox.height
    tol = 0.5
    outside = (boxes[:, 0] < -tol) | (boxes[:, 1] < -tol) | (boxes[:, 2] > W + tol) | (boxes[:, 3] > H + tol)
    assert not outside.any(), [texts[i].get_text() for i in np.flatnonzero(outside)]
    x0, y0, x1, y1 = (boxes[:, i][:, None] for i in range(4))
    overlap = (np.minimum(x1, x1.T) - np.maximum(x0, x0.T) > tol) & (np.minimum(y1, y1.T) - np.maximum(y0, y0.T) > tol)
    np.fill_diagonal(overlap, False)
    pairs = [(texts[i].get_text(), texts[j].get_text()) for i, j in zip(*np.nonzero(np.triu(overlap)))]
    assert not pairs, pairs


def box_texts(fig):
    """gid path -> (first line of the label, the whole text, (x, y) in pixels)."""
    renderer = fig.canvas.get_renderer()
    out = {}
    for t in _texts(fig):
        gid = t.get_gid() or ""
        if gid.startswith("box:"):
            bb = t.get_window_extent(renderer)
            out[gid[4:]] = (t.get_text().split("\n")[0], t.get_text(), ((bb.x0 + bb.x1) / 2, (bb.y0 + bb.y1) / 2))
    return out


_CONV = re.compile(r"^(\d+)x(\d+) conv(?: /(\d+))?, (\d+)(, linear)?$")
_POOL = re.compile(r"^(\d+)x(\d+) (max|avg) pool(?: /(\d+))?$")


def parse(label: str):
    """A box label -> (kind, kernel, stride, width, linear)."""
    if m := _CONV.match(label):
        kh, kw, s, c, lin = m.groups()
        return ("conv", (int(kh), int(kw)), int(s or 1), int(c), bool(lin))
    if m := _POOL.match(label):
        kh, kw, kind, s = m.groups()
        return (f"{kind} pool", (int(kh), int(kw)), int(s or 1), None, False)
    return (label, None, None, None, False)


# -- reading the module, independently ---------------------------------------------------------
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def layers_of(module: nn.Module, prefix: str = ""):
    """(path, (kind, kernel, stride, width, linear)) of every drawn layer, in named_modules
    order: ConvBlocks and bare convolutions, pools, LRN, dropout; the residual projection
    and activation are listed separately by the tests that need them."""
    out, inside_block = [], set()
    for name, m in module.named_modules(prefix=prefix):
        if any(name != p and (p == "" or name.startswith(p + ".")) for p in inside_block):
            continue
        if isinstance(m, ConvBlock):
            inside_block.add(name)
            c = m.conv
            s = _pair(c.stride)
            out.append((name, ("conv", _pair(c.kernel_size), s[0], c.out_channels, isinstance(m.act, nn.Identity))))
        elif isinstance(m, nn.Conv2d):
            out.append((name, ("conv", _pair(m.kernel_size), _pair(m.stride)[0], m.out_channels, True)))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            s = m.stride if m.stride is not None else m.kernel_size
            kind = "max pool" if isinstance(m, nn.MaxPool2d) else "avg pool"
            out.append((name, (kind, _pair(m.kernel_size), _pair(s)[0], None, False)))
        elif isinstance(m, nn.LocalResponseNorm):
            out.append((name, (f"LRN, size {m.size}", None, None, None, False)))
        elif isinstance(m, nn.Dropout):
            out.append((name, (f"dropout {m.p:g}", None, None, None, False)))
    return out


def branches_of(module: nn.Module):
    """The module's top-level branches as (prefix, module): every branch of a Branches or
    ResidualBranches; a plain chain (ConvBlock, Sequential of layers) is one branch."""
    if isinstance(module, (Branches, ResidualBranches)):
        return [(f"branches.{i}", b) for i, b in enumerate(module.branches)]
    return [("", module)]


def check_module_diagram(module: nn.Module, input_shape=None):
    fig = ie.draw_module(module, input_shape=input_shape)
    assert_no_overlap_and_inside(fig)
    boxes = box_texts(fig)
    drawn_paths = set()
    for prefix, branch in branches_of(module):
        expected = layers_of(branch, prefix)
        paths = [p for p, _ in expected]
        # the drawn boxes of this branch, bottom to top, then left to right (Fig. 7's 1x3 | 3x1)
        mine = sorted((p for p in boxes if p == prefix or p.startswith(prefix + ".") or not prefix
                       and not p.startswith(("proj", "scale", "act"))),
                      key=lambda p: (round(boxes[p][2][1]), boxes[p][2][0]))
        assert mine == paths, (prefix, mine, paths)
        assert [parse(boxes[p][0]) for p in mine] == [what for _, what in expected], prefix
        drawn_paths |= set(mine)
    if isinstance(module, ResidualBranches):
        proj = boxes["proj"][0]
        assert parse(proj) == ("conv", (1, 1), 1, module.proj.out_channels, True)
        assert module.proj.out_channels == module.branches[0][0].conv.in_channels   # back to the trunk's width
        labels = [t.get_text() for t in _texts(fig)]
        if module.scale != 1:
            assert boxes["scale"][0] == f"x {module.scale:g}"
        assert "+" in labels
        assert ("act" in boxes) == isinstance(module.act, nn.ReLU)
    return fig


# -- every distinct module of every registered model -------------------------------------------
_CHECKED = set()   # (layers with their widths, input shape) already checked in this process


@pytest.mark.parametrize("name", ie.list_models())
def test_every_distinct_module_is_drawn_as_its_layers(name):
    """Each distinct module of the model (``distinct_stages``), at its input shape; a module
    equal, width for width, to one another model already showed in this run is not drawn
    again (inception_resnet_v2_paper's blocks are inception_resnet_v2's)."""
    with torch.device("meta"):
        model = ie.create_model(name)
    inputs = stage_inputs(model)
    assert list(inputs) == model.stage_names()
    for stage in distinct_stages(model):
        key = (tuple(what for _, what in layers_of(stage.module)), type(stage.module).__name__, inputs[stage.name])
        if key in _CHECKED:
            continue
        _CHECKED.add(key)
        check_module_diagram(stage.module, inputs[stage.name])


# -- shapes and multiply-adds ------------------------------------------------------------------
def test_shapes_and_branch_costs_match_a_real_forward_and_the_counter():
    model = ie.create_model("googlenet")
    block = model.features.inception3a
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, a, out, n=n: shapes.__setitem__(n, tuple(out.shape[1:])))
             for n, m in block.named_modules() if n]
    with torch.no_grad():
        out = block(torch.zeros(1, 192, 28, 28))
    for h in hooks:
        h.remove()
    fig = check_module_diagram(block, (192, 28, 28))
    boxes = box_texts(fig)
    for path, (_, text, _) in boxes.items():
        c, h, w = shapes[path]
        assert text.split("\n")[1] == f"{h}x{w}x{c}", path
    concat = [t.get_text() for t in _texts(fig) if (t.get_gid() or "").startswith("concat:")]
    assert concat == [f"Filter concat\n28x28x{out.shape[1]}"]
    notes = {t.get_gid(): t.get_text() for t in _texts(fig) if (t.get_gid() or "").startswith("macs:")}
    scale = {"k": 1e3, "M": 1e6, "B": 1e9}
    for i, branch in enumerate(block.branches):
        ops = count_macs(branch, (192, 28, 28), by_operator=True)         # fvcore, an independent counter
        expected = ops.get("conv", 0) + ops.get("linear", 0)
        value, unit = re.match(r"^([\d.]+) ?([kMB]?) MACs$", notes[f"macs:branches.{i}"]).groups()
        drawn = float(value) * scale.get(unit, 1)
        assert drawn == pytest.approx(expected, rel=5e-3, abs=0.5)
    total = [t.get_text() for t in _texts(fig) if t.get_gid() == "title"][0]
    ops = count_macs(block, (192, 28, 28), by_operator=True)
    assert float(total.split()[0]) * 1e6 == pytest.approx(ops["conv"], rel=5e-3)


def test_residual_block_draws_projection_scale_and_sum():
    with torch.device("meta"):
        model = ie.create_model("inception_resnet_v2")
    fig = check_module_diagram(model.features.block35_1, (320, 35, 35))
    boxes = box_texts(fig)
    assert boxes["proj"][0] == "1x1 conv, 320, linear" and boxes["scale"][0] == "x 0.17"
    block = model.features.block35_1
    concat = [t.get_text() for t in _texts(fig) if (t.get_gid() or "").startswith("concat:")]
    assert concat == [f"Filter concat\n35x35x{block.proj.in_channels}"]     # what the projection reads
    assert boxes["proj"][1].endswith("35x35x320") and boxes["act"][1] == "ReLU\n35x35x320"
    final = check_module_diagram(model.features.block8_final, (2080, 8, 8))
    assert "act" not in box_texts(final) and "scale" not in box_texts(final)   # scale 1.0, no ReLU


# -- a changed module changes the drawing; what cannot be read says so -------------------------
def _labels(module):
    return sorted(v[0] for v in box_texts(ie.draw_module(module)).values())


def test_a_changed_width_changes_the_label():
    v4 = _labels(inception_v4.inception_a(conv_bn, 384))
    v4_80 = _labels(inception_v4.inception_a(conv_bn, 384, c1x1=80))
    assert v4 != v4_80 and "1x1 conv, 80" in v4_80 and "1x1 conv, 80" not in v4
    v3 = _labels(inception_v3.inception_a(conv_bn, 192, 32))
    v3_plain = _labels(inception_v3.inception_a(conv_bn, 192, 32, factorized=False))
    assert v3_plain.count("5x5 conv, 96") == 1 and "3x3 conv, 96" in v3 and "3x3 conv, 96" not in v3_plain


@pytest.mark.parametrize("module, where", [
    (nn.Sequential(conv_bn(3, 8, 3), nn.GELU()), "'1' (GELU)"),
    (Branches([seq(conv_bn(8, 8, 1)), seq(nn.MaxPool2d(3, 1, 1), nn.Softmax(1))]), "'branches.1.1' (Softmax)"),
])
def test_an_unreadable_layer_is_named(module, where):
    with pytest.raises(TypeError, match=re.escape(where)):
        ie.draw_module(module)


def test_bad_input_shapes_say_what_to_do():
    block = inception_v4.inception_a(conv_bn, 384)
    with pytest.raises(ValueError, match=r"takes 384 channels.*input_shape=\(384, H, W\)"):
        ie.draw_module(block, input_shape=(192, 35, 35))
    with pytest.raises(ValueError, match="channels, height, width"):
        ie.draw_module(block, input_shape=(384, 35))
    with pytest.raises(TypeError, match="draws a torch module"):
        ie.draw_module("inception_a")


def test_naive_orders_and_builders_from_library_blocks_draw():
    """Figures that are no model's stage (GoogLeNet Fig. 2a, Rethinking Fig. 9) are drawn from
    the library's blocks the chapter builds them with."""
    naive = Branches([seq(conv_bn(192, 64, 1)), seq(conv_bn(192, 128, 3, padding=1)),
                      seq(conv_bn(192, 32, 5, padding=2)), seq(nn.MaxPool2d(3, stride=1, padding=1))])
    fig = check_module_diagram(naive, (192, 28, 28))
    concat = [t.get_text() for t in _texts(fig) if (t.get_gid() or "").startswith("concat:")]
    assert concat == ["Filter concat\n28x28x416"]                     # 64 + 128 + 32 + 192
    pool = lambda: nn.MaxPool2d(3, stride=2, padding=1)             # noqa: E731
    for order in (seq(pool(), nn.Conv2d(256, 512, 3, padding=1, bias=False)),
                  seq(nn.Conv2d(256, 512, 3, padding=1, bias=False), pool())):
        check_module_diagram(order, (256, 32, 32))


# -- the network diagram -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["googlenet", "inception_v3", "inception_v4", "inception_resnet_v1", "nin_cifar"])
def test_network_diagram_lists_every_stage_in_order(name):
    with torch.device("meta"):
        model = ie.create_model(name)
    fig = ie.draw_network(model)
    assert_no_overlap_and_inside(fig)
    renderer = fig.canvas.get_renderer()
    rows = sorted(((t.get_window_extent(renderer).y0, t.get_gid()[4:], t.get_text()) for t in _texts(fig)
                   if (t.get_gid() or "").startswith("row:")))
    stage_rows = [r for r in rows if not r[1].startswith(("aux.", "head", "input"))]
    assert [n for _, gid, _ in stage_rows for n in gid.split(",")] == model.stage_names()
    labels = {s.name: s.label or s.name for s in model.stages}
    assert all(text == labels[gid.split(",")[0]] for _, gid, text in stage_rows)
    times = {t.get_gid()[6:]: t.get_text() for t in _texts(fig) if (t.get_gid() or "").startswith("times:")}
    for _, gid, _ in stage_rows:
        n = len(gid.split(","))
        assert times.get(gid, "") == (f"x {n}" if n > 1 else "")
    # every aux head sits right above the stage it taps
    order = [gid for _, gid, _ in rows]
    for tap in model.aux:
        i = order.index(f"aux.{tap}")
        assert order[i - 1].split(",")[-1] == tap
    shares = [float(t.get_text().split()[0]) for t in _texts(fig)
              if (t.get_gid() or "").startswith("share:") and t.get_text().endswith("%")]
    assert sum(shares) == pytest.approx(100, abs=0.05 * len(shares) + 1e-9)
    table = ie.stage_table(model, counter="fast")
    macs = dict(zip(table["stage"], table["multiply-adds"]))
    total = macs["total"]
    share_of = {t.get_gid()[6:]: float(t.get_text().split()[0]) for t in _texts(fig)
                if (t.get_gid() or "").startswith("share:") and t.get_text().endswith("%")}
    for _, gid, _ in stage_rows:
        assert share_of[gid] == pytest.approx(100 * sum(macs[n] for n in gid.split(",")) / total, abs=0.051)


# -- SVG for the web page, and the explorer ----------------------------------------------------
def test_svg_is_deterministic_and_keeps_text_as_text():
    block = inception_v4.inception_c(conv_bn, 1536)
    first = ie.to_svg(ie.draw_module(block, (1536, 8, 8)))
    second = ie.to_svg(ie.draw_module(block, (1536, 8, 8)))
    assert first == second
    assert "Filter concat" in first and "1x3 conv, 256" in first and "<dc:date>" not in first
    assert 'id="box:branches.1.1.branches.0.0"' in first     # the gid of each box: its layer's path
    shown = ie.show_svg(ie.draw_module(block, (1536, 8, 8)))
    assert " at 0x" not in repr(shown)                        # the text/plain nbval compares
    html = shown._repr_html_()                                # what the page shows
    assert html.startswith('<div class="ie-diagram"') and "<?xml" not in html and "<!DOCTYPE" not in html
    assert first[first.index("<svg"):] in html


def test_diagram_explorer_offers_finite_modules_and_draws_the_chosen_one():
    ex = ie.explore_diagram(networks=("googlenet",))        # and the default network, inception_v4
    options = [v for _, v in ex.controls["module"].options]
    assert ex.data["network"] == "inception_v4" and ex.data["stage"] == "Mixed_5b"
    assert len(options) == len(set(options)) and "googlenet/inception3a" in options
    assert {v.split("/")[0] for v in options} == {"googlenet", "inception_v4"}
    stages = {}
    for value in options:                                   # every option is a real stage
        net, _, stage = value.partition("/")
        if net not in stages:
            with torch.device("meta"):
                stages[net] = ie.create_model(net).stage_names()
        assert stage in stages[net], value
    first = bytes(ex.image.value)
    ex.set(module="googlenet/inception3a")
    assert ex.data["input_shape"] == (192, 28, 28) and ex.data["stage"] == "inception3a"
    assert bytes(ex.image.value) != first
    fig = ie.plot_diagram("inception_resnet_v1", "block17_1")
    assert_no_overlap_and_inside(fig)
