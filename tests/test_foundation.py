"""The package installs, imports fast and quietly, and the book's notebooks are all tested."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONWARNINGS": "default"})


def test_import_prints_version_and_nothing_else():
    proc = _run("import inception_edu; print(inception_edu.__version__)")
    assert proc.returncode == 0, proc.stderr
    import inception_edu
    assert proc.stdout.strip() == inception_edu.__version__
    assert proc.stderr == ""


def test_import_is_quiet_and_lazy():
    # In a fresh interpreter: importing the library prints nothing and loads none of the heavy
    # optional parts (how long it takes is torch's import, a benchmark figure, not a test).
    heavy = ('matplotlib', 'ipywidgets', 'fvcore', 'pandas', 'sklearn', 'scipy', 'PIL', 'safetensors',
             'torchvision')
    proc = _run("import sys; import inception_edu; "
                f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert proc.stderr == ""


def test_every_public_name_resolves():
    # The lazy map names a module per public function; a typo there would only show up
    # when a reader first calls it.
    import inception_edu
    for name in inception_edu.__all__:
        assert getattr(inception_edu, name) is not None, name


def test_every_notebook_is_collected_by_nbval():
    notebooks = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "book").rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
                           "-q", "--nbval", "book"], capture_output=True, text=True, cwd=ROOT)
    collected = {line.split("::")[0] for line in proc.stdout.splitlines() if ".ipynb::" in line}
    assert [nb for nb in notebooks if nb not in collected] == []


def test_every_chapter_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for nb in (ROOT / "book").glob("*.ipynb"):
        assert f"book/{nb.stem}" in toc, f"{nb.name} is not listed in _toc.yml"


def test_notebooks_are_stored_executed_in_order():
    # Stored outputs are what the rendered book shows; nbval checks they are current.
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        cells = [c for c in json.loads(nb.read_text())["cells"]
                 if c["cell_type"] == "code" and "".join(c["source"]).strip()]
        counts = [c["execution_count"] for c in cells]
        assert counts == list(range(1, len(cells) + 1)), f"{nb.name}: run it top to bottom in a fresh kernel"
        for c in cells:
            assert not any(o.get("output_type") == "error" for o in c["outputs"]), nb.name
