"""The packaged published figures against the references they name."""
import json
from pathlib import Path

import pytest
import torch

import inception_edu as ie
from inception_edu.convert import get_reference
from inception_edu.published import published_figure as published, published_figures

REFERENCES = json.loads((Path(__file__).parent / "data" / "reference_models.json").read_text())


@pytest.mark.parametrize("key", sorted(REFERENCES))
def test_rows_equal_the_reference_measurements(key):
    ref = REFERENCES[key]
    assert published(key, "params") == ref["num_params"]
    assert published(key, "fvcore_macs") == ref["fvcore_macs"]
    assert {r.input_size for r in published_figures() if r.subject == key} == {ref["input_size"]}


@pytest.mark.parametrize("key", sorted(REFERENCES))
def test_our_models_match_the_published_rows(key):
    ref = get_reference(key)
    with torch.device("meta"):
        model = ie.create_model(ref.model, **ref.kwargs)
    assert ie.count_params(model) == published(key, "params")
    assert ie.count_macs(model, ref.input_size, counter="fast") == published(key, "fvcore_macs")


@pytest.mark.parametrize("key, name", [("torchvision.googlenet", "googlenet_bn"),
                                       ("torchvision.inception_v3", "inception_v3")])
def test_torchvision_metadata_rows(key, name):
    # torchvision's "GFLOPS" are conv + linear multiply-adds, printed to three decimals.
    with torch.device("meta"):
        model = ie.create_model(name)
    size = get_reference(key).input_size
    assert ie.count_params(model, with_aux=False) == published(key, "params_without_aux")
    assert round(ie.count_macs(model, size, ops=("conv", "linear"), counter="fast") / 1e9, 3) == \
        published(key, "published_gmacs")


def test_every_row_has_a_source_and_bad_names_say_what_exists():
    assert all(r.source for r in published_figures())
    assert isinstance(published("paper.googlenet", "macs"), float)
    with pytest.raises(ValueError, match="subjects: .*timm.inception_v4"):
        published("timm.inceptionv4", "params")
    with pytest.raises(ValueError, match="it has: params, fvcore_macs"):
        published("timm.inception_v4", "flops")
