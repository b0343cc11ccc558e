"""Feature API and input rules against torchvision's real modules, run inside the Colab-like
``.venv-colab`` (torchvision beside torch 2.14.1) by ``tests/book/test_torchvision_features_colab.py``.
The main ``.venv`` has no torchvision, and this file's name keeps pytest from collecting it there.

- torchvision's ``create_feature_extractor`` on our models, with ``feature_info``'s module
  names as return nodes, gives ``forward_intermediates``'s maps;
- ``inception_v3`` with its aux head takes in eval mode the inputs torchvision's takes (75x75),
  and in training mode refuses what torchvision's cannot run (one pixel below 299).
"""
from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor

import inception_edu as ie


@pytest.mark.parametrize("name", ["inception_v3", "googlenet_bn", "inception_resnet_v2", "bn_inception"])
def test_create_feature_extractor_gives_forward_intermediates(name):
    model = ie.create_model(name).eval()
    nodes = {fi["module"]: str(i) for i, fi in enumerate(model.feature_info)}
    extractor = create_feature_extractor(model, return_nodes=nodes)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        got = extractor(x)
        want = model.forward_intermediates(x, intermediates_only=True)
    assert list(got) == [str(i) for i in range(len(want))]
    for g, w in zip(got.values(), want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_inception_v3_input_rules_match_torchvision():
    theirs = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    ours = ie.create_model("inception_v3")
    for side in (75, 150):  # eval: the trunk's rule, aux head or not
        x = torch.randn(1, 3, side, side)
        with torch.no_grad():
            assert theirs.eval()(x).shape == ours.eval()(x).shape == (1, 1000)
    with torch.no_grad():  # below the trunk's minimum both refuse
        with pytest.raises(Exception):
            theirs.eval()(torch.randn(1, 3, 74, 74))
        with pytest.raises(ValueError, match="at least 75x75"):
            ours.eval()(torch.randn(1, 3, 74, 74))
        x = torch.randn(2, 3, 298, 298)  # training runs the aux head, which needs 299
        with pytest.raises(RuntimeError):
            theirs.train()(x)
        with pytest.raises(ValueError, match="aux_logits=False"):
            ours.train()(x)
        x = torch.randn(2, 3, 299, 299)
        assert theirs.train()(x).aux_logits.shape == ours.train()(x).aux_logits[0].shape
