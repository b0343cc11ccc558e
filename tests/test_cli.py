"""The command line: ``list`` and ``cost`` in numbers a person reads, checked against the references.

The expected parameter and multiply-add figures come from ``tests/data/reference_models.json``
(the published implementations' own state dicts and fvcore counts), not from our models.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inception_edu import create_model, list_models
from inception_edu.__main__ import main, summary_line
from inception_edu.cost import MAC_UNIT, count_macs, count_params, stage_table
from inception_edu.pretrained import DEFAULT_WEIGHTS, PRETRAINED

ROOT = Path(__file__).resolve().parents[1]
REFS = json.loads((ROOT / "tests" / "data" / "reference_models.json").read_text())
AUX_PREFIXES = ("AuxLogits.", "aux1.", "aux2.")  # torchvision's auxiliary heads


def _cli(*args):
    env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "inception_edu", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _reference_params(key: str) -> int:
    """The reference's parameters without its auxiliary heads, from its own state dict."""
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(math.prod(shape) for k, shape in REFS[key]["state_dict"].items()
               if not k.startswith(AUX_PREFIXES) and not k.endswith(buffers))


def _rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.strip().splitlines()[1:-1]}


# -- list ---------------------------------------------------------------------------------------
def test_list_shows_size_params_and_weights():
    run = _cli("list")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["model", "native", "size", "parameters"]
    rows = _rows(run.stdout)
    assert sorted(rows) == list_models()
    for name, weights in DEFAULT_WEIGHTS.items():
        ref = PRETRAINED[weights]["reference"]
        size = REFS[ref]["input_size"]
        assert rows[name] == [name, f"{size}x{size}", f"{_reference_params(ref):,}", weights]
    # torchvision's own published figure for GoogLeNet_Weights (meta["num_params"]).
    assert rows["googlenet_bn"][2] == "6,624,904"
    for name in set(list_models()) - set(DEFAULT_WEIGHTS):
        assert rows[name][-1] == "-"
    assert rows["googlenet_cifar"][1] == "32x32"


def test_list_filters_by_pattern(capsys):
    run = _cli("list", "*_cifar")
    assert run.returncode == 0 and run.stderr == ""
    names = list(_rows(run.stdout))
    assert names == sorted(names) == list_models("*_cifar") and "inception_v3_cifar" in names
    assert main(["list", "resnet*"]) == 1
    assert "no model matches 'resnet*'" in capsys.readouterr().err


# -- cost ---------------------------------------------------------------------------------------
def test_summary_line_format():
    # The issue's own example: torchvision's Inception-v3 without its aux head.
    assert summary_line(23_834_568, 5_731_282_144, 299) == \
        "23.83 M parameters, 5.73 G multiply-adds (11.46 GFLOPs) at 299x299"
    assert summary_line(512, 999, 8) == "512 parameters, 999 multiply-adds (2.00 kFLOPs) at 8x8"


def test_cost_inception_v3_against_torchvision():
    run = _cli("cost", "inception_v3")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    ref = REFS["torchvision.inception_v3"]
    params, macs = _reference_params("torchvision.inception_v3"), ref["fvcore_macs"]
    lines = run.stdout.strip().splitlines()
    assert MAC_UNIT in lines[0]
    assert lines[-2].split() == ["total", f"{params:,}", f"{macs:,}"]
    assert lines[-1] == (f"{params / 1e6:.2f} M parameters, {macs / 1e9:.2f} G multiply-adds "
                         f"({2 * macs / 1e9:.2f} GFLOPs) at 299x299")
    assert lines[-1] == "23.83 M parameters, 5.73 G multiply-adds (11.46 GFLOPs) at 299x299"
    assert "  2,049,000  " in run.stdout  # the classifier row: 2048 x 1000 + 1000


def test_cost_small_network_table():
    run = _cli("cost", "googlenet_cifar")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    total = stage_table(create_model("googlenet_cifar")).iloc[-1]
    lines = run.stdout.strip().splitlines()
    assert lines[-2].split() == ["total", f"{total['params']:,}", f"{total['multiply-adds']:,}"]
    assert lines[-1] == summary_line(int(total["params"]), int(total["multiply-adds"]), 32)


def test_cost_options(capsys):
    assert main(["cost", "inception_v3", "--size", "160"]) == 0   # no aux head: 160 is fine
    out = capsys.readouterr().out
    assert "160x160, without auxiliary heads" in out and "Mixed_7c" in out and "aux." not in out
    assert out.strip().splitlines()[-1].endswith("at 160x160")
    assert main(["cost", "googlenet", "--aux"]) == 0
    out = capsys.readouterr().out
    assert "with auxiliary heads" in out and "aux.inception4d" in out
    model = create_model("googlenet")
    params, macs = count_params(model, with_aux=True), count_macs(model, 224, with_aux=True)
    lines = out.strip().splitlines()
    assert lines[-2].split() == ["total", f"{params:,}", f"{macs:,}"]
    assert lines[-1] == summary_line(params, macs, 224)


def test_cost_bad_input_is_a_clear_error(capsys):
    assert main(["cost", "inception_v33"]) == 2
    assert "unknown model 'inception_v33'" in capsys.readouterr().err
    assert main(["cost", "inception_v4", "--size", "32"]) == 2
    assert "at least 75" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["list", "--help"], ["cost", "--help"]])
def test_help_describes_the_commands(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0
    assert "usage: python -m inception_edu" in capsys.readouterr().out
