import json
import os
from pathlib import Path

import matplotlib
import pytest
import torch

# Library tests draw off-screen. Not through MPLBACKEND: the notebooks' kernels, started from
# this same pytest run by nbval, inherit the environment, and under Agg they would show no
# figures, so their outputs would differ from the stored (inline backend) ones.
matplotlib.use("Agg")
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def references():
    """The published implementations' figures (copied from ../shared/reference/)."""
    return json.loads((DATA / "reference_models.json").read_text())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
