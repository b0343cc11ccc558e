"""The explorers under Colab's ipywidgets 7.7 (the main environment has ipywidgets 8).

Runs ``tests/test_widgets.py`` inside ``.venv-colab`` (torch 2.14, ipywidgets 7.7.1: see
``colab_requirements.txt``; ``make test`` builds it first), importing the library from this
repository's sources. What ipywidgets changed between the majors (trait names, ``Image``
values, observer semantics) would fail there and not here.
"""
from __future__ import annotations

from .colab_env import ROOT, probe, run_pytest


def test_widget_tests_pass_under_ipywidgets_7():
    version = probe("import ipywidgets, pytest; print(ipywidgets.__version__)")
    assert version.startswith("7."), f"expected ipywidgets 7 in .venv-colab, got {version}"
    proc = run_pytest(ROOT / "tests" / "test_widgets.py")
    assert proc.returncode == 0, f"tests/test_widgets.py under ipywidgets 7.7:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
