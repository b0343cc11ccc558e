"""Inference throughput on a CPU at native resolution, and what the stage table costs.

    python benchmarks/cpu_latency.py --threads 2 --json benchmarks/results/cpu_latency.json
    python benchmarks/cpu_latency.py --models inception_v3 --runs 3     # a quick look

For each model (default: inception_v3, inception_v4, inception_resnet_v2; one that is not
registered is skipped): batch 8 at the model's native size (299x299), float32, ``eval()``,
``torch.no_grad()``. Two ways of running the same weights on the same input:

* ``ours``: ``model(x)``, through the library's machinery (``InceptionNet.forward`` with its
  input check, the stage loop, ``Branches`` / ``ResidualBranches`` / ``ConvBlock`` modules).
* ``layer by layer``: the same leaf layers (Conv2d, BatchNorm2d, ReLU, pools, Linear) called
  one after another by a plain recursive function with ``torch.cat`` written out, as a
  hand-written torchvision-style forward would -- no stage table, no wrapper modules.

Both outputs are checked equal before timing. Each figure is images/s = batch / median
wall-clock time of ``--runs`` forwards after ``--warmup`` forwards, the two ways alternating. A ratio near 1 says the
abstraction costs nothing measurable. Timings vary with the machine and its load: the script
prints the device, torch version, thread count and command with the table.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

DEFAULT_MODELS = ("inception_v3", "inception_v4", "inception_resnet_v2")


def layer_by_layer(model, x: torch.Tensor) -> torch.Tensor:
    """The model's function, calling its leaf layers directly (no stage machinery)."""
    from inception_edu.layers import Branches, ResidualBranches

    def run(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if isinstance(m, Branches):
            return torch.cat([run(b, x) for b in m.branches], 1)
        if isinstance(m, ResidualBranches):
            r = run(m.proj, torch.cat([run(b, x) for b in m.branches], 1))
            return run(m.act, x + m.scale * r)
        children = list(m.children())
        if not children:                      # a leaf: Conv2d, BatchNorm2d, ReLU, a pool ...
            return m(x)
        if isinstance(m, nn.Sequential) or type(m).__name__ == "ConvBlock":
            for child in children:            # ConvBlock's children are conv, bn, act in order
                x = run(child, x)
            return x
        return m(x)                           # anything else: its own forward

    for stage in model.features:
        x = run(stage, x)
    x = torch.flatten(run(model.global_pool, x), 1)
    return run(model.fc, run(model.pre_logits, x))


def images_per_s(fns, x: torch.Tensor, warmup: int, runs: int) -> list[float]:
    """images/s of each function; runs alternate between them so load drifts hit both alike."""
    times = [[] for _ in fns]
    with torch.no_grad():
        for _ in range(warmup):
            for fn in fns:
                fn(x)
        for _ in range(runs):
            for fn, t in zip(fns, times):
                start = time.perf_counter()
                fn(x)
                t.append(time.perf_counter() - start)
    return [x.shape[0] / statistics.median(t) for t in times]


def measure(name: str, *, batch: int, warmup: int, runs: int) -> dict:
    from inception_edu import create_model

    torch.manual_seed(0)
    model = create_model(name).eval()
    size = model.default_size
    x = torch.randn(batch, model.in_chans, size, size)
    with torch.no_grad():
        same = torch.allclose(model(x), layer_by_layer(model, x), rtol=1e-5, atol=1e-5)
    if not same:
        raise RuntimeError(f"{name}: the layer-by-layer forward does not reproduce the model")
    ours, plain = images_per_s([model, lambda t: layer_by_layer(model, t)], x, warmup, runs)
    return {"model": name, "size": size, "batch": batch, "ours_images_per_s": ours,
            "layer_by_layer_images_per_s": plain, "ratio": ours / plain}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from inception_edu import list_models
    known = set(list_models())
    rows, skipped = [], []
    for name in args.models:
        if name not in known:
            skipped.append(name)
            continue
        rows.append(measure(name, batch=args.batch, warmup=args.warmup, runs=args.runs))

    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    print(f"CPU inference, batch {args.batch}, float32, eval, no_grad; median of {args.runs} runs "
          f"after {args.warmup} warm-up runs")
    print(f"device: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; command: `{command}`\n")
    print("| model | input | ours (images/s) | layer by layer (images/s) | ours / layer by layer |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['size']}x{r['size']} | {r['ours_images_per_s']:.2f} | "
              f"{r['layer_by_layer_images_per_s']:.2f} | {r['ratio']:.3f} |")
    if skipped:
        print(f"\nskipped (not registered): {', '.join(skipped)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": command, "torch": torch.__version__,
                                         "threads": torch.get_num_threads(),
                                         "device": platform.processor() or platform.machine(),
                                         "results": rows, "skipped": skipped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
