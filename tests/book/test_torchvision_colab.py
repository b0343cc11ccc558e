"""The torchvision paths, under the Colab-like runtime that has torchvision.

Runs ``tests/book/torchvision_checks.py`` inside ``.venv-colab`` (torch 2.14.1, torchvision
0.29.1: see ``colab_requirements.txt``; ``make test`` builds it first), importing the library
from this repository's sources: ``eval_transform``'s ``torchvision.transforms.v2`` path against
its torch-only path and torchvision's own weights transforms, and conversions from
torchvision's real ``googlenet`` / ``inception_v3``. The main ``.venv`` cannot import
torchvision (see ../shared/notes/toolchain.md), so these run nowhere else.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = ROOT / ".venv-colab" / "bin" / "python"


def test_torchvision_checks_pass_in_the_colab_like_runtime():
    if not PY.exists():
        pytest.fail("the Colab-like environment .venv-colab is missing: run `make colab-env` "
                    "(make test builds it first)")
    probe = subprocess.run([str(PY), "-c", "import torchvision, pytest; print(torchvision.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f".venv-colab cannot import torchvision (is it up to date? `make colab-env`):\n{probe.stderr}")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", CI="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([str(PY), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x",
                           str(ROOT / "tests" / "book" / "torchvision_checks.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (f"tests/book/torchvision_checks.py under torchvision "
                                  f"{probe.stdout.strip()}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]
