"""What BatchNorm folding buys on a CPU: our folded networks against the unfolded ones.

    python benchmarks/fold_batchnorm.py --threads 2 --json benchmarks/results/fold_batchnorm.json
    python benchmarks/fold_batchnorm.py --models inception_v3 --runs 3     # a quick look

For each model (default: inception_v3, inception_v4, inception_resnet_v2): batch 8 at the
native size (299x299), float32, ``eval()``, ``torch.no_grad()``, one process. The folded model
is ``inception_edu.fold_batchnorm(model)``, checked to give the model's logits (1e-5 relative)
before timing. It is timed against

* the reference library's own module where it is installed: torchvision's ``inception_v3``
  (``aux_logits=True``, as its builder makes it), timm's ``inception_v4`` and
  ``inception_resnet_v2``, each unfolded, as their users run them;
* our unfolded model, always.

Runs interleave (folded, then each baseline, then again), so a change in the machine's load hits
every variant alike; each figure is the median of ``--runs`` forwards after ``--warmup``. The
goal (issue 13): folded time at most 0.85x the baseline's. The JSON records the thread count,
the 1-minute load average before and after, and the command: timings are only comparable on an
otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

DEFAULT_MODELS = ("inception_v3", "inception_v4", "inception_resnet_v2")
GOAL = 0.85


def reference_module(name: str):
    """(label, module) of the reference library's own network, or None when not installed."""
    try:
        if name == "inception_v3":
            import torchvision
            return "torchvision", torchvision.models.inception_v3(weights=None, aux_logits=True,
                                                                  init_weights=False)
        if name in ("inception_v4", "inception_resnet_v2"):
            import timm
            return "timm", timm.create_model(name, pretrained=False)
    except ImportError:
        return None
    return None


def _with_statistics(model):
    """BatchNorm statistics away from their initial values, as after training (the time does
    not depend on them; the equality check before timing then means something)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model


def seconds(fns: dict, x: torch.Tensor, warmup: int, runs: int) -> dict:
    """Median seconds per forward of each function, the runs interleaved."""
    times = {k: [] for k in fns}
    with torch.no_grad():
        for _ in range(warmup):
            for fn in fns.values():
                fn(x)
        for _ in range(runs):
            for k, fn in fns.items():
                start = time.perf_counter()
                fn(x)
                times[k].append(time.perf_counter() - start)
    return {k: statistics.median(t) for k, t in times.items()}


def measure(name: str, *, batch: int, warmup: int, runs: int) -> dict:
    import inception_edu as ie

    torch.manual_seed(0)
    model = _with_statistics(ie.create_model(name)).eval()
    folded = ie.fold_batchnorm(model)
    size = model.default_size
    x = torch.randn(batch, model.in_chans, size, size)
    with torch.no_grad():
        want, got = model(x), folded(x)
    err = ((got - want).abs().max() / want.abs().max()).item()
    if err > 1e-5:
        raise RuntimeError(f"{name}: the folded model's logits differ by {err:.2e} (relative)")
    fns = {"folded": folded, "ours unfolded": model}
    ref = reference_module(name)
    if ref is not None:
        fns[ref[0]] = ref[1].eval()
    t = seconds(fns, x, warmup, runs)
    return {"model": name, "size": size, "batch": batch, "max_rel_diff": err,
            "seconds": t, "ratio": {k: t["folded"] / v for k, v in t.items() if k != "folded"},
            "reference": ref[0] if ref else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = [measure(n, batch=args.batch, warmup=args.warmup, runs=args.runs) for n in args.models]
    load_after = os.getloadavg()[0]

    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    device = platform.processor() or platform.machine()
    print(f"CPU eval forward, batch {args.batch}, float32, no_grad; median of {args.runs} interleaved "
          f"runs after {args.warmup} warm-up runs")
    print(f"device: {device}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, 1-minute load average {load_before:.2f} before, {load_after:.2f} after; "
          f"command: `{command}`\n")
    print(f"| model | baseline | baseline (s) | folded (s) | folded / baseline | <= {GOAL} |")
    print("|---|---|---:|---:|---:|---|")
    for r in rows:
        for base, ratio in r["ratio"].items():
            print(f"| {r['model']} | {base} | {r['seconds'][base]:.3f} | {r['seconds']['folded']:.3f} | "
                  f"{ratio:.3f} | {'yes' if ratio <= GOAL else 'no'} |")
    missing = [r["model"] for r in rows if r["reference"] is None]
    if missing:
        print(f"\nreference modules not installed (torchvision / timm) for: {', '.join(missing)}; "
              f"compared with our unfolded models only")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": command, "torch": torch.__version__,
                                         "threads": torch.get_num_threads(), "device": device,
                                         "cpu_count": os.cpu_count(), "load_average_before": load_before,
                                         "load_average_after": load_after, "goal": GOAL,
                                         "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
