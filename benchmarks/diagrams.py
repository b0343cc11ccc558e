"""How long drawing one module takes: every distinct module of every registered model.

    python benchmarks/diagrams.py --json benchmarks/results/diagrams.json
    python benchmarks/diagrams.py --models inception_v4 --runs 1     # a quick look

For each model (built on the meta device: no weights) and each distinct module of its stage
table (stages that differ only in widths are timed once), with the module's input shape at
the model's native size:

* ``draw``: ``ie.draw_module(module, input_shape)`` -- reading the layers, one pass on the
  meta device for the shapes, measuring every label, laying out and drawing the figure;
* ``+ svg``: the same, then ``ie.to_svg(fig)`` (what a chapter cell stores);
* ``+ png``: the same, then a PNG at 80 dpi (what the live explorer shows).

Each figure is the median of ``--runs`` timings after one warm-up call of the whole set (the
first call pays for imports). The issue's target is under 0.5 s for any one module; this is
a benchmark figure, not a test: timings depend on the machine and its load, which the JSON
records (1-minute load average before and after).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

import inception_edu as ie  # noqa: E402
from inception_edu.diagrams import distinct_stages, stage_inputs  # noqa: E402


def timed(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    cases = []
    for name in args.models or ie.list_models():
        with torch.device("meta"):
            model = ie.create_model(name)
        inputs = stage_inputs(model)
        for s in distinct_stages(model):
            cases.append((name, s.name, s.module, inputs[s.name]))

    def draw(case):
        return ie.draw_module(case[2], case[3])

    def with_svg(case):
        ie.to_svg(draw(case))

    def with_png(case):
        draw(case).savefig(io.BytesIO(), format="png", dpi=80)

    for case in cases:              # warm-up: imports, first meta passes
        with_svg(case)
    rows = []
    for case in cases:
        fig = draw(case)
        rows.append({"model": case[0], "stage": case[1], "input": list(case[3]),
                     "width_in": round(float(fig.get_size_inches()[0]), 2),
                     "draw_s": timed(lambda: draw(case), args.runs),
                     "svg_s": timed(lambda: with_svg(case), args.runs),
                     "png_s": timed(lambda: with_png(case), args.runs)})
    load_after = os.getloadavg()[0]
    slowest = {k: max(rows, key=lambda r: r[k]) for k in ("draw_s", "svg_s", "png_s")}
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"{len(rows)} modules of {len({r['model'] for r in rows})} models; torch {torch.__version__}, "
          f"Python {platform.python_version()}, {platform.machine()}, {args.threads} thread(s); "
          f"1-minute load average {load_before:.2f} before, {load_after:.2f} after\n`{command}`\n")
    print("| | median (s) | slowest (s) | slowest module | under 0.5 s |")
    print("|---|---:|---:|---|---|")
    for key, what in (("draw_s", "draw_module"), ("svg_s", "draw_module + to_svg"), ("png_s", "draw_module + PNG")):
        med = statistics.median(r[key] for r in rows)
        s = slowest[key]
        print(f"| {what} | {med:.3f} | {s[key]:.3f} | {s['model']}.{s['stage']} | "
              f"{'yes' if s[key] < 0.5 else 'no'} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "command": command, "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "threads": args.threads, "cpus": os.cpu_count(),
            "load_before": load_before, "load_after": load_after, "runs": args.runs, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
