"""Our networks against the published implementations: same logits, params and multiply-adds.

For each reference, build its state dict from the stored key/shape table with the fingerprint
weights (see ../shared/reference/README.md), convert and load it with ``from_reference``, run
the fingerprint input in float64 and compare with the logits the reference itself produced.
"""
import json
from pathlib import Path

import pytest
import torch

import inception_edu as ie
from inception_edu.fingerprint import fingerprint_input, fingerprint_state_dict

REFS = json.loads((Path(__file__).parent / "data" / "reference_models.json").read_text())


@pytest.fixture(scope="module", params=sorted(REFS))
def converted(request):
    key = request.param
    ref = REFS[key]
    model = ie.from_reference(key, fingerprint_state_dict(ref["state_dict"])).eval()
    return key, ref, model


def test_every_reference_has_a_converter():
    assert sorted(ie.list_references()) == sorted(REFS)


def test_fingerprint_logits(converted):
    key, ref, model = converted
    x = fingerprint_input(ref["input_size"])
    with torch.no_grad():
        logits = model(x)
    expected = torch.tensor(ref["logits"], dtype=torch.float64).reshape(logits.shape)
    err = (logits - expected).abs().max().item()
    assert torch.allclose(logits, expected, rtol=1e-6, atol=1e-8), f"{key}: max abs error {err:.3e}"


def test_param_count(converted):
    key, ref, model = converted
    assert sum(p.numel() for p in model.parameters()) == ref["num_params"]


def test_fvcore_macs(converted):
    key, ref, model = converted
    from inception_edu.cost import count_macs
    size = ref["input_size"]
    assert count_macs(model.float(), (3, size, size)) == ref["fvcore_macs"]


def test_unknown_reference_names_the_known_ones():
    with pytest.raises(ValueError, match="torchvision.inception_v3"):
        ie.from_reference("torchvision.inception_v33", {})


def test_wrong_state_dict_lists_what_differs():
    ref = REFS["torchvision.inception_v3"]
    sd = fingerprint_state_dict(ref["state_dict"])
    sd["fc.weight"] = torch.zeros(10, 2048, dtype=torch.float64)
    with pytest.raises(ValueError, match="fc"):
        ie.from_reference("torchvision.inception_v3", sd)


def test_googlenet_loads_without_its_aux_heads():
    # torchvision's pretrained GoogLeNet is usually used with aux_logits=False: the aux
    # weights are dropped and the function is unchanged (the heads do not run in eval).
    ref = REFS["torchvision.googlenet"]
    model = ie.from_reference("torchvision.googlenet", fingerprint_state_dict(ref["state_dict"]),
                              aux_logits=False).eval()
    assert len(model.aux) == 0
    with torch.no_grad():
        logits = model(fingerprint_input(ref["input_size"]))
    expected = torch.tensor(ref["logits"], dtype=torch.float64).reshape(logits.shape)
    assert torch.allclose(logits, expected, rtol=1e-6, atol=1e-8)
