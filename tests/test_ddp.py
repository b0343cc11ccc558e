"""DistributedDataParallel on the CPU: 2 gloo processes under torchrun, each with a timeout.

The multi-process runs are subprocesses of ``python -m torch.distributed.run`` (torchrun), so a
hang fails the test after TIMEOUT seconds instead of stopping the suite.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inception_edu.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240
SMALL = ["--model", "inception_v3_cifar", "--width-mult", "0.25", "--data", "digits"]


def _env():
    return {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _torchrun(*args, nproc=2):
    # --standalone: a local rendezvous on a free port (parallel test runs do not collide).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           str(nproc), *args]
    # A session of its own, so that a hang is ended with torchrun's workers, not just torchrun.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun did not finish within {TIMEOUT} s (a hang?): {stderr[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _cli(*args, nproc=1):
    if nproc > 1:
        return _torchrun("-m", "inception_edu", "train", *args, nproc=nproc)
    return subprocess.run([sys.executable, "-m", "inception_edu", "train", *args], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=TIMEOUT)


def test_two_gloo_processes_train_one_model(tmp_path):
    run = _torchrun("tests/ddp_worker.py", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    # One model: the same parameters (and averaged weights) on both ranks after the epoch,
    # although rank 1 was built from another seed (DDP starts every rank from rank 0's).
    assert all(torch.equal(a, b) for a, b in zip(r0["params"], r1["params"], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(r0["ema"], r1["ema"], strict=True))
    # Each rank trained on its half: 1,257 digits / (64 x 2) = 9 full batches per rank, in
    # steps of two micro-batches (accum_steps=2): 5 optimizer steps, the last one short.
    assert r0["steps_per_epoch"] == 5
    # The head left out of the loss got no gradient and did not hang the all-reduce.
    assert all(g is None for g in r0["aux_grad"])
    # Gathered evaluation: every test image once, equal to one process evaluating them all.
    for r in (r0, r1):
        assert r["gathered"]["top1"] == r["alone"]["top1"]
        assert r["gathered"]["top5"] == r["alone"]["top5"]
        assert r["gathered"]["loss"] == pytest.approx(r["alone"]["loss"], rel=1e-6)
        assert round(r["gathered"]["top1"] * 270) == r["gathered"]["top1"] * 270  # of 270 images
    timing = ("images_per_s", "seconds")                 # each rank's own clock
    assert r0["gathered"] == r1["gathered"]
    assert [{k: v for k, v in row.items() if k not in timing} for row in r0["history"]] == \
        [{k: v for k, v in row.items() if k not in timing} for row in r1["history"]]
    # Rank 0 alone writes: one checkpoint, no temporary files of rank 1.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "rank0.pt", "rank1.pt"]
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert (ckpt["world_size"], ckpt["global_batch"], ckpt["steps_per_epoch"]) == (2, 256, 5)
    assert len(ckpt["rng_ranks"]) == 2 and ckpt["ema"] is not None


def test_torchrun_cli_resumes_across_world_sizes(tmp_path):
    out = tmp_path / "run"
    two = _cli(*SMALL, "--epochs", "1", "--out", str(out), "--no-progress", nproc=2)
    assert two.returncode == 0, two.stderr[-3000:]
    # Rank 0 alone prints (one epoch line, one result line) and writes one set of files.
    assert two.stdout.count("epoch   1/1") == 1 and two.stdout.count("test top-1") == 1
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt", "metrics.csv", "metrics.json"]
    ckpt = load_checkpoint(out / "last.pt")
    assert (ckpt["world_size"], ckpt["global_batch"]) == (2, 128)
    assert json.loads((out / "metrics.json").read_text())["world_size"] == 2

    one = _cli(*SMALL, "--epochs", "2", "--out", str(out), "--resume")          # 2 -> 1
    assert one.returncode == 0, one.stderr[-3000:]
    ckpt = load_checkpoint(out / "last.pt")
    assert (ckpt["epoch"], ckpt["world_size"], ckpt["global_batch"]) == (2, 1, 64)
    # The per-batch schedule went on from epoch 1's end at the new step count: 19 steps per
    # epoch alone (1,257 // 64), after 9 with two processes.
    assert ckpt["steps_per_epoch"] == 19 and ckpt["scheduler"]["last_epoch"] == 2 * 19

    again = _cli(*SMALL, "--epochs", "3", "--out", str(out), "--resume", "--no-progress", nproc=2)
    assert again.returncode == 0, again.stderr[-3000:]                          # 1 -> 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["history"]] == [1, 2, 3]
    assert load_checkpoint(out / "last.pt")["world_size"] == 2
