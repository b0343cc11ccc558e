"""Checks that need torchvision, run inside the Colab-like ``.venv-colab`` (torchvision 0.29.1
beside torch 2.14.1) by ``tests/book/test_torchvision_colab.py``. The main ``.venv`` has no
torchvision, and this file's name keeps pytest from collecting it there.

- ``eval_transform``'s ``torchvision.transforms.v2`` path against its plain-torch path, and both
  against torchvision's own ``weights.transforms()`` for the weights torchvision publishes;
- conversion from torchvision's real ``googlenet`` / ``inception_v3`` modules, and
  ``create_model(..., pretrained=PATH)`` on their state dicts against torchvision's
  ``transform_input=True`` builds (what torchvision does for its published weights).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.models import GoogLeNet_Weights, Inception_V3_Weights, googlenet, inception_v3
from torchvision.transforms import v2

import inception_edu as ie
from inception_edu import pretrained as P


def _photo(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    # Smooth structure plus noise, so that resampling has edges and gradients to get wrong.
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([127 + 100 * np.sin(xx / 7.0), 127 + 100 * np.cos(yy / 11.0), (xx + yy) % 256], -1)
    noisy = base + rng.normal(0, 20, (h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _pixels(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)  # 3 x H x W uint8


# -- eval_transform: torchvision's v2 path and the torch-only path -----------------------------
@pytest.mark.parametrize("weights", P.list_pretrained())
def test_v2_and_torch_paths_agree(weights):
    tv, plain = ie.eval_transform(weights), ie.eval_transform(weights, backend="torch")
    assert tv.backend == "torchvision" and isinstance(tv.pipeline, v2.Compose)   # auto picks v2
    assert plain.backend == "torch" and plain.pipeline is None
    size = P.PRETRAINED[weights]["input_size"]
    for h, w in ((333, 517), (517, 333), (120, 150)):   # landscape, portrait, upsampled
        img = _photo(h, w, seed=h)
        a, b = tv(img), plain(img)
        assert a.shape == b.shape == size
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), (weights, h, w, (a - b).abs().max())
    batch = torch.stack([_pixels(_photo(300, 360, seed=s)) for s in range(2)])
    assert torch.allclose(tv(batch), plain(batch), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("weights, enum", [("torchvision.googlenet", GoogLeNet_Weights.IMAGENET1K_V1),
                                           ("torchvision.inception_v3", Inception_V3_Weights.IMAGENET1K_V1)])
def test_matches_torchvisions_own_weights_transforms(weights, enum):
    preset = enum.transforms()                       # torchvision's ImageClassification
    ours = ie.eval_transform(weights)
    x = _pixels(_photo(333, 517)).float() / 255      # float input: the same operations
    assert torch.allclose(ours(x), preset(x), rtol=1e-5, atol=1e-5)
    # uint8 input: torchvision resizes the 8-bit pixels and rounds them back to whole levels,
    # we resize in float, so the two may differ by up to one level (1/255) before normalizing.
    u = _pixels(_photo(333, 517, seed=1))
    std = torch.tensor(P.IMAGENET_STD).view(3, 1, 1)
    assert ((ours(u) - preset(u)).abs() * std).max() <= 1 / 255 + 1e-6


# -- torchvision's real modules ----------------------------------------------------------------
def _torchvision_model(builder, transform_input: bool) -> nn.Module:
    torch.manual_seed(0)
    model = builder(weights=None, aux_logits=True, transform_input=transform_input, init_weights=True)
    with torch.no_grad():   # BatchNorm statistics away from 0 / 1, so that BN is exercised too
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.double().eval()


CASES = [(googlenet, "torchvision.googlenet", "googlenet_bn", 224),
         (inception_v3, "torchvision.inception_v3", "inception_v3", 299)]


@pytest.mark.parametrize("builder, key, name, size", CASES)
def test_from_reference_on_torchvisions_real_modules(builder, key, name, size):
    theirs = _torchvision_model(builder, transform_input=False)
    state = theirs.state_dict()
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        expected = theirs(x)
        for order in (state, dict(sorted(state.items()))):   # its own order, and sorted
            ours = ie.from_reference(key, order).eval()
            assert torch.allclose(ours(x), expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("builder, key, name, size", CASES)
def test_pretrained_path_builds_like_torchvision_does_for_its_weights(tmp_path, builder, key, name, size):
    # torchvision's builders set transform_input=True when given weights: our pretrained= too.
    theirs = _torchvision_model(builder, transform_input=True)
    path = tmp_path / "weights.pth"
    torch.save(dict(sorted(theirs.state_dict().items())), path)
    ours = ie.create_model(name, pretrained=path).eval()
    assert ours.transform_input is True and ours.pretrained_cfg["reference"] == key
    x = ie.eval_transform(ours)(_photo(333, 517)).unsqueeze(0).double()
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), rtol=1e-9, atol=1e-10)
