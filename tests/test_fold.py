"""BatchNorm folding: the folded copy computes what the model computes in eval mode.

Reference: the model itself in eval mode (BatchNorm with its running statistics), and the
folding formula of BatchNorm at inference (Ioffe & Szegedy 2015, Sec. 3.1).
"""
import pytest
import torch
from torch import nn

import inception_edu as ie

MODELS = ie.list_models()
_BN = nn.modules.batchnorm._BatchNorm


def _trained_looking_statistics(model):
    """Running statistics and affine parameters away from their initial values (which make
    BatchNorm almost an identity), so that folding has something to fold."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BN):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
                if m.affine:
                    m.weight.copy_(0.5 + torch.rand(n, generator=g))
                    m.bias.copy_(0.1 * torch.randn(n, generator=g))
    return model


def _assert_relative(got, want, rtol=1e-5):
    err = (got - want).abs().max().item()
    assert err <= rtol * want.abs().max().item(), (err, want.abs().max().item())


@pytest.mark.parametrize("name", MODELS)
def test_folded_model_gives_the_same_logits(name):
    model = _trained_looking_statistics(ie.create_model(name)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = ie.fold_batchnorm(model)
    # Every BatchNorm in this family follows a convolution (or facenet's linear layer): none is left.
    assert not any(isinstance(m, _BN) for m in folded.modules())
    assert not folded.training and all(not m.training for m in folded.modules())
    # The model itself is untouched, its mode too.
    assert model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    model.eval()
    x = torch.randn(2, model.in_chans, model.min_size, model.min_size)
    with torch.no_grad():
        _assert_relative(folded(x), model(x))
        if len(model.aux):  # the auxiliary heads are folded too
            s = model.aux_min_size
            xa = torch.randn(2, model.in_chans, s, s)
            want, got = model.forward_with_aux(xa), folded.forward_with_aux(xa)
            _assert_relative(got.logits, want.logits)
            for g, w in zip(got.aux_logits, want.aux_logits):
                _assert_relative(g, w)


def test_folding_is_the_inference_formula():
    # W' = W * gamma / sqrt(var + eps) per output channel, b' = (b - mu) * gamma / sqrt(var + eps) + beta.
    model = _trained_looking_statistics(ie.create_model("inception_v3_cifar"))
    block = model.features.Conv2d_1a_3x3
    folded = ie.fold_batchnorm(model).features.Conv2d_1a_3x3
    bn, conv = block.bn, block.conv
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    torch.testing.assert_close(folded.conv.weight, conv.weight * scale[:, None, None, None])
    torch.testing.assert_close(folded.conv.bias, (bias - bn.running_mean) * scale + bn.bias)
    assert isinstance(folded.bn, nn.Identity)


def test_folded_model_keeps_the_surface():
    model = _trained_looking_statistics(ie.create_model("inception_v4")).eval()
    folded = ie.fold_batchnorm(model)
    x = torch.randn(1, 3, 75, 75)
    with torch.no_grad():
        want = model.forward_intermediates(x, intermediates_only=True)
        got = folded.forward_intermediates(x, intermediates_only=True)
    for g, w in zip(got, want):
        _assert_relative(g, w)
    assert folded.feature_info == model.feature_info
    with pytest.raises(ValueError, match="at least 75x75"):
        folded(torch.randn(1, 3, 60, 60))


def test_bad_arguments():
    with pytest.raises(TypeError, match="nn.Module"):
        ie.fold_batchnorm("inception_v3")

    class Untraceable(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
                x = -x
            return self.bn(self.conv(x))

    with pytest.raises(TypeError, match="torch.fx"):
        ie.fold_batchnorm(Untraceable())
