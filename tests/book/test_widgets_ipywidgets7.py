"""The explorers under Colab's ipywidgets 7.7 (the main environment has ipywidgets 8).

Runs ``tests/test_widgets.py`` inside ``.venv-colab`` (torch 2.14, ipywidgets 7.7.1: see
``colab_requirements.txt``; ``make test`` builds it first), importing the library from this
repository's sources. What ipywidgets changed between the majors (trait names, ``Image``
values, observer semantics) would fail there and not here.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = ROOT / ".venv-colab" / "bin" / "python"


def test_widget_tests_pass_under_ipywidgets_7():
    if not PY.exists():
        pytest.fail("the Colab-like environment .venv-colab is missing: run `make colab-env` "
                    "(make test builds it first)")
    probe = subprocess.run([str(PY), "-c", "import ipywidgets, pytest; print(ipywidgets.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f".venv-colab cannot run the widget tests (is it up to date? `make colab-env`):\n{probe.stderr}")
    assert probe.stdout.strip().startswith("7."), f"expected ipywidgets 7 in .venv-colab, got {probe.stdout}"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", CI="1")
    proc = subprocess.run([str(PY), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x",
                           str(ROOT / "tests" / "test_widgets.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"tests/test_widgets.py under ipywidgets 7.7:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
