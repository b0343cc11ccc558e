"""Baselines on the cluttered digits: how hard the task is, over several seeds.

    python benchmarks/cluttered_baselines.py --threads 1 --json benchmarks/results/cluttered_baselines.json

Trains a plain CNN of about ``googlenet_cifar``'s multiply-adds
(:func:`inception_edu.train.experiments.plain_cnn`, 7.6 M vs 7.8 M at 32x32) and
``googlenet_cifar`` itself with the ``fast`` recipe, as the chapters train, on the cluttered
digits (:mod:`inception_edu.train.cluttered`, data seed 0), one run per seed, and reports the
test top-1 of each seed, the mean and the standard deviation, and the seconds per run. The
target (issue 17): the plain CNN clearly below ceiling (below 90 % test top-1).

Timings depend on the machine's load: the JSON records the thread count and the 1-minute load
average before and after, and the command.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["plain_cnn", "googlenet_cifar"],
                   help="plain_cnn and/or registered model names")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--num-train", type=int, default=3000)
    p.add_argument("--num-val", type=int, default=600)
    p.add_argument("--num-test", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from inception_edu import count_macs, create_model
    from inception_edu.train.cluttered import config_dict
    from inception_edu.train.experiments import plain_cnn, run_seeds

    load_before = os.getloadavg()[0]
    data_kw = dict(num_train=args.num_train, num_val=args.num_val, num_test=args.num_test)
    rows = []

    def record():
        out = {"command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
               "torch": str(torch.__version__), "python": platform.python_version(),
               "threads": args.threads, "load_1min_before": load_before,
               "load_1min_after": os.getloadavg()[0], "recipe": "fast", "batch_size": args.batch_size,
               "data": {"name": "cluttered", "seed": 0, **data_kw, "config": config_dict()},
               "results": rows}
        if args.json:       # after every model: a stopped run keeps what finished
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=1) + "\n")

    for name in args.models:
        build = plain_cnn if name == "plain_cnn" else name
        macs = count_macs(plain_cnn() if name == "plain_cnn" else create_model(name), 32)
        res = run_seeds(build, {name: {}}, seeds=args.seeds, data="cluttered", data_kw=data_kw,
                        epochs=args.epochs, recipe="fast", batch_size=args.batch_size,
                        progress=False)
        s = res.summary("test_top1").loc[name]
        rows.append({"model": name, "macs": macs, "epochs": args.epochs,
                     "test_top1_per_seed": res.values(name, "test_top1").round(2).tolist(),
                     "test_top1_mean": round(float(s["mean"]), 2),
                     "test_top1_std": round(float(s["std"]), 2),
                     "val_top1_per_seed": res.values(name, "val_top1").round(2).tolist(),
                     "seconds_per_run": [round(r.seconds, 1) for r in res.runs]})
        print(f"{name:16s} {macs / 1e6:5.1f} M MACs  test top-1 {s['mean']:.2f} +- {s['std']:.2f} % "
              f"(seeds {rows[-1]['test_top1_per_seed']})  {sum(rows[-1]['seconds_per_run']):.0f} s",
              flush=True)
        record()
    print("\n| model | MACs | epochs | test top-1 (mean +- std, %) | per seed |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['macs'] / 1e6:.1f} M | {r['epochs']} | {r['test_top1_mean']:.2f} "
              f"+- {r['test_top1_std']:.2f} | {r['test_top1_per_seed']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
