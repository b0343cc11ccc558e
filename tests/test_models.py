"""Every registered model: the shared surface, gradients, and bad input (timm's test_models)."""
import pytest
import torch

import inception_edu as ie
from inception_edu.models.base import InceptionNet, InceptionOutputs

MODELS = ie.list_models()


def _small_input(model, batch=2):
    # The smallest input the model accepts keeps the full-size networks fast on CPU; in
    # training mode the auxiliary heads run, and they may need more (aux_min_size).
    s = model.aux_min_size if model.training else model.min_size
    return torch.randn(batch, model.in_chans, s, s)


def test_registry_is_populated():
    for name in ["nin_cifar", "googlenet", "googlenet_bn", "bn_inception", "inception_v2", "inception_v3",
                 "inception_v4", "inception_resnet_v1", "inception_resnet_v2", "inception_resnet_v2_paper"]:
        assert name in MODELS
    assert len(ie.list_models("*cifar*")) >= 4


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_every_parameter_gets_a_finite_gradient(name):
    model = ie.create_model(name, num_classes=7)
    assert isinstance(model, InceptionNet)
    model.train()
    out = model(_small_input(model))
    if isinstance(out, InceptionOutputs):
        assert len(out.aux_logits) == len(model.aux) > 0
        loss = out.logits.sum() + sum(a.sum() for a in out.aux_logits)
        logits = out.logits
    else:
        loss, logits = out.sum(), out
    assert logits.shape == (2, 7)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"


@pytest.mark.parametrize("name", MODELS)
def test_eval_returns_plain_logits_and_surface(name):
    model = ie.create_model(name, num_classes=5).eval()
    x = _small_input(model)
    with torch.no_grad():
        out = model(x)
        feats = model.forward_features(x)
        pooled = model.forward_head(feats, pre_logits=True)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)
    assert feats.shape[1] == model.num_features
    assert pooled.shape == (2, model.head_features)
    model.reset_classifier(3)
    with torch.no_grad():
        assert model(x).shape == (2, 3)


@pytest.mark.parametrize("name", MODELS)
def test_too_small_input_says_the_minimum(name):
    model = ie.create_model(name).eval()
    s = model.min_size - 1
    with pytest.raises(ValueError, match=f"at least {model.min_size}x{model.min_size}"):
        model(torch.randn(1, model.in_chans, s, s))


@pytest.mark.parametrize("name", MODELS)
def test_wrong_channel_count_is_a_clear_error(name):
    model = ie.create_model(name).eval()
    s = model.min_size
    with pytest.raises(ValueError, match="input channels"):
        model(torch.randn(1, model.in_chans + 1, s, s))


@pytest.mark.parametrize("name", MODELS)
def test_stage_table_is_the_trunk(name):
    model = ie.create_model(name)
    assert [s.name for s in model.stages] == [n for n, _ in model.features.named_children()]
    assert all(s.kind in {"stem", "inception", "reduction", "residual", "pool", "classifier"}
               for s in model.stages)


def test_unknown_model_names_close_matches():
    with pytest.raises(ValueError, match="inception_v3"):
        ie.create_model("inceptionv3")


def test_unknown_option_lists_the_options():
    with pytest.raises(ValueError, match="options"):
        ie.create_model("inception_v3", not_an_option=1)


@pytest.mark.parametrize("name", MODELS)
def test_min_size_is_tight(name):
    # The declared minimum is the real one: one pixel less breaks the trunk or an aux head.
    model = ie.create_model(name).train()
    model.check_input = lambda x: None
    s = model.min_size - 1
    with pytest.raises((RuntimeError, ValueError)):
        model(torch.randn(2, model.in_chans, s, s))


# -- model-specific surfaces ---------------------------------------------------------------------
def test_nin_has_no_fully_connected_layer_and_its_features_are_class_maps():
    model = ie.create_model("nin_cifar", num_classes=10, width_mult=0.25).eval()
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = model.class_activation_maps(x)
        logits = model(x)
    assert maps.shape == (2, 10, 8, 8) and model.num_features == 10
    # Global average pooling is the whole head (Lin et al. 2013, Sec. 3.2).
    torch.testing.assert_close(logits, maps.mean((2, 3)))
    model.reset_classifier(4)
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, 4, 8, 8)
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(x).shape == (2, model.num_features) == (2, 48)
    headless = ie.create_model("nin_cifar", num_classes=0, width_mult=0.25).eval()
    with torch.no_grad():
        assert headless(x).shape == (2, headless.num_features) == (2, 48)


def test_nin_batch_norm_switch():
    plain = ie.create_model("nin_cifar")
    bn = ie.create_model("nin_cifar", batch_norm=True)
    count = lambda m: sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())
    assert count(plain) == 0 and count(bn) == 8  # every conv but the class-map conv


def test_bn_inception_says_which_sizes_it_takes():
    # Its stride-2 modules put a padded 3x3/2 conv beside an unpadded ceil-mode 3x3/2 pool;
    # they agree only on even grids. The declared rule is the real one:
    model = ie.create_model("bn_inception", num_classes=3).eval()
    check = model.check_input
    model.check_input = lambda x: None
    for side in range(31, 72):
        try:
            with torch.no_grad():
                model(torch.randn(1, 3, side, side))
            works = True
        except RuntimeError:
            works = False
        assert works == model.accepts(side), side
    model.check_input = check
    assert model.accepts(224) and model.accepts(294) and model.accepts(319) and not model.accepts(299)
    with pytest.raises(ValueError, match="to 294 or 319 pixels"):
        model(torch.randn(1, 3, 299, 299))
