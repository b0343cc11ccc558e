"""The figures of the book's part I (NIN/GAP heads, class activation maps, auxiliary heads).

Explorers are driven the way a reader drives them (``.set(...)``) and the numbers behind the
figure are checked against arithmetic done here independently, or against layers PyTorch builds.
"""
import pytest
import torch
from torch import nn

from inception_edu.figures import heads
from inception_edu.models.base import InceptionNet, Stage


def _linear_params(widths):
    # Count what PyTorch builds (on the meta device: no memory for VGG's 100 M weights).
    with torch.device("meta"):
        layers = [nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:])]
    return sum(p.numel() for layer in layers for p in layer.parameters())


def test_vgg16_head_is_most_of_vgg16():
    d = heads.head_params_data()
    # VGG-16 (configuration D): 512*7*7 -> 4096 -> 4096 -> 1000.
    assert d["params"]["fc"] == _linear_params([512 * 7 * 7, 4096, 4096, 1000]) == 123_642_856
    assert d["params"]["fc"] + heads.VGG16_TRUNK_PARAMS == 138_357_544
    assert d["params"]["gap_linear"] == 512 * 1000 + 1000
    assert d["params"]["gap"] == 0
    assert 0.89 < d["share"]["fc"] < 0.90


def test_vgg16_trunk_constant_counts_thirteen_convs():
    cfg = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    with torch.device("meta"):
        convs = [nn.Conv2d(i, o, 3) for i, o in zip([3] + cfg[:-1], cfg)]
    assert sum(p.numel() for c in convs for p in c.parameters()) == heads.VGG16_TRUNK_PARAMS


@pytest.mark.parametrize("values", [
    dict(channels=1024, grid=1, hidden=1024, fc_layers=2, num_classes=1000),
    dict(channels=64, grid=8, hidden=256, fc_layers=1, num_classes=10),
    dict(channels=2048, grid=14, hidden=4096, fc_layers=3, num_classes=100),
])
def test_explorer_follows_its_controls(values):
    ex = heads.explore_head_params()
    ex.set(**values)
    c, g, h, n, k = (values[x] for x in ("channels", "grid", "hidden", "fc_layers", "num_classes"))
    widths = [c * g * g] + [h] * (n - 1) + [k]
    assert ex.data["params"]["fc"] == _linear_params(widths)
    assert ex.data["params"]["gap_linear"] == _linear_params([c, k])
    assert ex.data["params"]["gap"] == 0
    # The curve: the FC head at every grid side, and the current one on it.
    assert ex.data["fc_by_grid"][g - 1] == ex.data["params"]["fc"]
    assert ex.data["fc_by_grid"][0] == _linear_params([c] + [h] * (n - 1) + [k])
    assert ex.data["share"]["fc"] == pytest.approx(ex.data["params"]["fc"] / (ex.data["params"]["fc"] + heads.VGG16_TRUNK_PARAMS))
    assert ex.image.value[:4] == b"\x89PNG"


def test_gap_head_does_not_grow_with_the_grid():
    small, big = heads.head_params_data(grid=2), heads.head_params_data(grid=12)
    assert small["params"]["gap_linear"] == big["params"]["gap_linear"]
    assert big["params"]["fc"] > small["params"]["fc"]


def test_explorer_and_data_refuse_bad_values():
    with pytest.raises(ValueError, match="no control"):
        heads.explore_head_params().set(kernel=3)
    with pytest.raises(ValueError, match="positive whole number"):
        heads.head_params_data(grid=0)
    with pytest.raises(ValueError, match="trunk_params"):
        heads.head_params_data(trunk_params=-1)


def test_plot_head_params_returns_a_figure():
    import matplotlib.pyplot as plt

    fig = heads.plot_head_params(channels=256, grid=4, trunk_params=None)
    assert len(fig.axes) == 2
    plt.close(fig)


# -- class activation maps ---------------------------------------------------------------------
def _tiny(num_classes, width):
    stages = [Stage("conv", nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU()))]
    return InceptionNet("tiny", stages, num_features=width, num_classes=num_classes, min_size=4)


def test_cam_of_gap_linear_averages_to_the_logit():
    model = _tiny(num_classes=5, width=8).eval()
    x = torch.randn(3, 3, 12, 12)
    maps, classes = heads.class_activation_maps(model, x)
    logits = model(x)
    assert maps.shape == (3, 12, 12)
    assert torch.equal(classes, logits.argmax(1))
    # Zhou et al.: score_c = mean_ij sum_k w_ck f_k(i, j) + b_c.
    picked = logits[torch.arange(3), classes]
    assert torch.allclose(maps.mean(dim=(1, 2)) + model.fc.bias[classes], picked, atol=1e-5)


def test_cam_of_gap_only_is_the_class_feature_map():
    model = _tiny(num_classes=0, width=4).eval()          # NIN: 4 maps = 4 classes, no classifier
    x = torch.randn(2, 3, 10, 10)
    maps, classes = heads.class_activation_maps(model, x, classes=[1, 3])
    feats = model.forward_features(x)
    assert torch.equal(maps[0], feats[0, 1]) and torch.equal(maps[1], feats[1, 3])
    assert torch.allclose(model(x)[torch.arange(2), classes], maps.mean(dim=(1, 2)))


def test_cam_refuses_what_it_cannot_explain():
    model = _tiny(num_classes=5, width=8)
    model.pre_logits = nn.Linear(8, 8)
    with pytest.raises(ValueError, match="projection"):
        heads.class_activation_maps(model, torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="one class per image"):
        heads.class_activation_maps(_tiny(5, 8), torch.randn(2, 3, 8, 8), classes=[1])
    with pytest.raises(ValueError, match="batch"):
        heads.plot_class_activation_maps(_tiny(5, 8), torch.randn(3, 8, 8))


def test_plot_class_activation_maps_both_layouts():
    import matplotlib.pyplot as plt

    model = _tiny(num_classes=4, width=6)
    model.train()
    x = torch.randn(5, 3, 16, 16)
    fig = heads.plot_class_activation_maps(model, x, labels=torch.tensor([0, 1, 2, 3, 0]))
    assert len(fig.axes) == 10
    plt.close(fig)
    fig = heads.plot_class_activation_maps(model, x, all_classes=True)
    assert len(fig.axes) == 5                               # the image + one map per class
    plt.close(fig)
    assert model.training, "the model's mode is restored"


# -- auxiliary classifiers: gradient per stage -------------------------------------------------
def _tiny_with_aux(aux=True):
    from inception_edu.figures import aux as _  # noqa: F401  (import check)

    stages = [Stage("a", nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())),
              Stage("pool", nn.MaxPool2d(2), kind="pool"),
              Stage("b", nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())),
              Stage("c", nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU()))]
    heads_ = {"a": nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))} if aux else None
    return InceptionNet("tiny_aux", stages, num_features=8, num_classes=4, min_size=4, aux_heads=heads_)


def _norms_by_backward(model, x, y, weight, which):
    """The reference: ordinary .backward() of the chosen loss, then per-stage norms of .grad."""
    import torch.nn.functional as F

    torch.manual_seed(1)
    model.train()
    out = model(x)
    main = F.cross_entropy(out.logits, y)
    aux = weight * sum(F.cross_entropy(a, y) for a in out.aux_logits)
    model.zero_grad()
    {"main": main, "aux": aux, "total": main + aux}[which].backward()
    norms = []
    for name in ("a", "b", "c"):
        grads = [p.grad for p in getattr(model.features, name).parameters() if p.grad is not None]
        norms.append(float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))) if grads else 0.0)
    model.zero_grad(set_to_none=True)
    return norms


def test_stage_grad_norms_match_backward_and_change_nothing():
    from inception_edu.figures.aux import stage_grad_norms

    model = _tiny_with_aux()
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    d = stage_grad_norms(model, x, y, aux_weight=0.3)
    assert d["stages"] == ["a", "b", "c"]                     # the pooling stage has no weights
    assert d["aux_taps"] == ["a"] and d["weight"] == 0.3
    # Measuring changes nothing: same weights and BN statistics, no .grad left behind.
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    for which in ("main", "aux", "total"):
        ref = _norms_by_backward(model, x, y, 0.3, which)
        assert d[which] == pytest.approx(ref, rel=1e-6, abs=1e-12), which
    # Above the tap, the auxiliary head sends no gradient.
    assert d["aux"][1] == d["aux"][2] == 0.0 and d["aux"][0] > 0


def test_stage_grad_norms_without_heads_and_bad_models():
    from inception_edu.figures.aux import stage_grad_norms

    model = _tiny_with_aux(aux=False)
    d = stage_grad_norms(model, torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]))
    assert d["aux"] == [0.0, 0.0, 0.0] and d["total"] == pytest.approx(d["main"])
    with pytest.raises(ValueError, match="stage table"):
        stage_grad_norms(nn.Linear(3, 3), torch.randn(2, 3), torch.tensor([0, 1]))


def test_plot_stage_grad_norms_one_run_and_several():
    import matplotlib.pyplot as plt
    from inception_edu.figures.aux import plot_stage_grad_norms, stage_grad_norms

    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    with_aux = stage_grad_norms(_tiny_with_aux(), x, y)
    without = stage_grad_norms(_tiny_with_aux(aux=False), x, y)
    fig = plot_stage_grad_norms(with_aux)
    assert len(fig.axes[0].get_lines()) == 3 + 1                # main, aux, total + the tap line
    aux_line = fig.axes[0].get_lines()[1].get_ydata()
    assert aux_line[0] > 0 and all(v != v for v in aux_line[1:])   # no aux gradient above the tap: a gap (NaN)
    assert "+ aux head" in fig.axes[0].get_xticklabels()[0].get_text()
    plt.close(fig)
    fig = plot_stage_grad_norms({"with aux": with_aux, "without": without})
    assert len(fig.axes[0].get_lines()) == 2 + 1
    plt.close(fig)
    other = dict(without, stages=["x", "y", "z"])
    with pytest.raises(ValueError, match="same stages"):
        plot_stage_grad_norms({"a": with_aux, "b": other})
