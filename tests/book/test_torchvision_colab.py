"""The torchvision paths, under the Colab-like runtime that has torchvision.

Runs ``tests/book/torchvision_checks.py`` inside ``.venv-colab`` (torch 2.14.1, torchvision
0.29.1: see ``colab_requirements.txt``; ``make test`` builds it first), importing the library
from this repository's sources: ``eval_transform``'s ``torchvision.transforms.v2`` path against
its torch-only path and torchvision's own weights transforms, and conversions from
torchvision's real ``googlenet`` / ``inception_v3``. The main ``.venv`` cannot import
torchvision (see ../shared/notes/toolchain.md), so these run nowhere else.
"""
from __future__ import annotations

from .colab_env import ROOT, probe, run_pytest


def test_torchvision_checks_pass_in_the_colab_like_runtime():
    version = probe("import torchvision, pytest; print(torchvision.__version__)")
    proc = run_pytest(ROOT / "tests" / "book" / "torchvision_checks.py")
    assert proc.returncode == 0, (f"tests/book/torchvision_checks.py under torchvision {version}:\n"
                                  f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]
