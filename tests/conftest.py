import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def references():
    """The published implementations' figures (copied from ../shared/reference/)."""
    return json.loads((DATA / "reference_models.json").read_text())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
