"""The feature API and the input rules against torchvision, under the Colab-like runtime.

Runs ``tests/book/torchvision_features_checks.py`` inside ``.venv-colab`` (the only runtime with
torchvision here; see ../shared/notes/toolchain.md), importing the library from the sources.
"""
from __future__ import annotations

from .colab_env import ROOT, probe, run_pytest


def test_torchvision_feature_checks_pass_in_the_colab_like_runtime():
    version = probe("import torchvision; print(torchvision.__version__)")
    proc = run_pytest(ROOT / "tests" / "book" / "torchvision_features_checks.py")
    assert proc.returncode == 0, (f"torchvision {version}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]
