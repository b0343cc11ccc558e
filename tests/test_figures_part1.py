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
