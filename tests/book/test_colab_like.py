"""Every chapter runs in a runtime shaped like Colab's, installed the way its first cell does it.

``make test`` prepares ``.venv-colab`` from ``tests/book/colab_requirements.txt`` (a newer
torch than our pin, ipywidgets 7.7.1) and a wheel of this repository in ``_build/colab/``.
Each chapter is then executed top to bottom in that environment with ``google.colab``
present, its first cell pointed at the wheel instead of the repository URL (the machine has
no network beyond the package registry). The cell may install inception_edu and its
dependencies, and nothing may replace the runtime's torch or ipywidgets.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-colab"
PY = VENV / "bin" / "python"
WHEELS = ROOT / "_build" / "colab"
REPO_SPEC = '"git+https://github.com/inception-edu/inception_edu"'
FIRST_CELL = ('import sys\nif "google.colab" in sys.modules:  # in Colab: install the book\'s library, nothing else\n'
              f'    %pip install -q {REPO_SPEC}')
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]-*.ipynb"))


def _code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_first_cell_installs_the_library_and_nothing_else(chapter):
    nb = json.loads(chapter.read_text())
    assert "".join(_code_cells(nb)[0]["source"]).strip() == FIRST_CELL
    assert not any(o.get("text") for o in _code_cells(nb)[0]["outputs"]), "it prints nothing locally"
    first_md = "".join(nb["cells"][0]["source"])
    assert f"blob/main/book/{chapter.name}" in first_md, "the Colab badge opens this chapter"


def _versions():
    out = subprocess.run([str(PY), "-c", "import torch, ipywidgets; print(torch.__version__, ipywidgets.__version__)"],
                         capture_output=True, text=True, check=True).stdout.split()
    return out


@pytest.fixture(scope="module")
def colab():
    if not PY.exists() or not list(WHEELS.glob("inception_edu-*.whl")):
        pytest.fail("the Colab-like environment is missing: `make colab-env` (make test does it first)")
    before = _versions()
    assert before[0].startswith("2.14") and before[1].startswith("7.7"), before
    yield next(WHEELS.glob("inception_edu-*.whl"))
    assert _versions() == before, "a chapter's install replaced torch or ipywidgets"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_in_a_colab_like_runtime(chapter, colab, tmp_path):
    nb = json.loads(chapter.read_text())
    first = _code_cells(nb)[0]
    first["source"] = "".join(first["source"]).replace(REPO_SPEC, f'"{colab}"')
    # What Colab's runtime provides before any cell runs.
    nb["cells"].insert(0, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                           "source": "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')"})
    src = tmp_path / chapter.name
    src.write_text(json.dumps(nb))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(MPLBACKEND="module://matplotlib_inline.backend_inline", PATH=f"{VENV / 'bin'}:{env['PATH']}")
    # Run from the copy's folder, so the chapter cannot import the repository's sources.
    proc = subprocess.run([str(VENV / "bin" / "jupyter-execute"), "--timeout=600", str(src)],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{chapter.name} failed in the Colab-like runtime:\n{proc.stderr[-3000:]}"
