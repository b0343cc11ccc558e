"""Running a test file inside ``.venv-colab``, the Colab-like runtime (``make colab-env``).

The library is imported from this repository's sources (``PYTHONPATH``), as the chapters'
first cell would install it; what differs from ``.venv`` is the packages around it.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = ROOT / ".venv-colab" / "bin" / "python"


def probe(code: str) -> str:
    """Run ``code`` in .venv-colab and return what it prints; fail the test, saying how to fix
    it, when the runtime is missing or cannot run it."""
    if not PY.exists():
        pytest.fail("the Colab-like environment .venv-colab is missing: run `make colab-env` "
                    "(make test builds it first)")
    proc = subprocess.run([str(PY), "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f".venv-colab cannot run {code!r} (is it up to date? `make colab-env`):\n{proc.stderr}")
    return proc.stdout.strip()


def run_pytest(test_file: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """``pytest -q -x test_file`` in .venv-colab, off-screen and quiet, from the repository root."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", CI="1")
    return subprocess.run([str(PY), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", str(test_file)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
