"""Inception-ResNet: block counts per grid, the residual scales, and the residual sum itself."""
import pytest
import torch

import inception_edu as ie
from inception_edu.layers import ResidualBranches

# (A, B, C) blocks per grid, the final unscaled C block counted apart.
LAYOUTS = {"inception_resnet_v1": (5, 10, 5), "inception_resnet_v2": (10, 20, 9),
           "inception_resnet_v2_paper": (5, 10, 5)}
# The paper's Sec. 3.3 / the published weights: 0.17 on 35x35, 0.10 on 17x17, 0.20 on 8x8.
SCALES = {"Inception-ResNet-A": 0.17, "Inception-ResNet-B": 0.10, "Inception-ResNet-C": 0.20}


def _blocks(model):
    return [s for s in model.stages if isinstance(s.module, ResidualBranches)]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_block_counts_and_published_scales(name):
    model = ie.create_model(name)
    blocks = _blocks(model)
    counts = tuple(sum(s.label == label for s in blocks) for label in SCALES)
    # facenet's v1 (5 scaled C blocks, then its separate unscaled `block8`) and TF-slim's v2
    # (9, then `block8`) both end in one extra C block, labelled apart.
    assert counts == LAYOUTS[name]
    for s in blocks:
        if s.label in SCALES:
            assert s.module.scale == SCALES[s.label]
    final = blocks[-1].module
    assert final.scale == 1.0 and isinstance(final.act, torch.nn.Identity)


@pytest.mark.parametrize("name", sorted(LAYOUTS) + ["inception_resnet_cifar"])
def test_residual_scale_overrides_every_scaled_block(name):
    model = ie.create_model(name, residual_scale=0.3)
    scaled = [s.module.scale for s in _blocks(model) if s.label in SCALES]
    assert scaled and all(v == 0.3 for v in scaled)


def test_residual_block_is_x_plus_scaled_residual():
    torch.manual_seed(0)
    model = ie.create_model("inception_resnet_cifar", residual_scale=0.25).eval()
    block = _blocks(model)[0].module
    x = torch.randn(2, block.proj.out_channels, 8, 8)
    with torch.no_grad():
        by_hand = torch.relu(x + 0.25 * block.proj(torch.cat([b(x) for b in block.branches], 1)))
        assert torch.equal(block(x), by_hand)


def test_projection_is_linear():
    # The 1x1 "filter-expansion" conv has a bias and no BN or activation (Szegedy et al. 2017).
    block = _blocks(ie.create_model("inception_resnet_v2"))[0].module
    assert isinstance(block.proj, torch.nn.Conv2d) and block.proj.bias is not None
