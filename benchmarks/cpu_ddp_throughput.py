"""Training images/s on the CPU: one process against two gloo processes (DDP, torchrun).

    python benchmarks/cpu_ddp_throughput.py --json benchmarks/results/cpu_ddp_throughput.json

Each run trains inception_v3_cifar (width 0.5, 32x32 digits-sized synthetic images, the 'fast'
recipe) for --steps timed steps after --warmup untimed ones, one OpenMP thread per process,
with the per-process batch fixed (so two processes see twice the images per step). images/s
counts every process's images. On a machine with two cores the two-process run can at best
double the throughput; the all-reduce of the gradients over gloo and any other load on the
cores take their share. The machine's load average is recorded beside the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args) -> None:
    import torch
    import torch.distributed as dist

    from inception_edu import create_model
    from inception_edu.train import Trainer, build_scheduler, synthetic_loaders

    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    n = args.batch_size * (args.warmup + args.steps) * world
    loaders = synthetic_loaders(args.batch_size, 32, num_samples=n)
    model = create_model("inception_v3_cifar", num_classes=10, width_mult=0.5)
    trainer = Trainer(model, "fast", progress=False, device="cpu")
    loader = trainer._shard(loaders.train)
    trainer.scheduler = build_scheduler(trainer.optimizer, trainer.recipe, len(loader), 1)
    model.train()
    times = []
    for i, (x, y) in enumerate(loader):
        if world > 1:
            dist.barrier()
        t = time.perf_counter()
        trainer._forward_backward(x, y, 1.0, sync=True)
        trainer._optimizer_step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    seconds = sum(times)
    if world > 1:
        t = torch.tensor([seconds], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)       # the slowest rank sets the pace
        seconds = float(t)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"processes": world, "steps": len(times), "seconds": seconds,
                          "images_per_s": args.batch_size * world * len(times) / seconds}))
    if world > 1:
        dist.destroy_process_group()


def launch(args, nproc: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    me = [str(Path(__file__).resolve()), "--worker", "--batch-size", str(args.batch_size),
          "--steps", str(args.steps), "--warmup", str(args.warmup)]
    cmd = ([sys.executable, *me] if nproc == 1 else
           [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", str(nproc), *me])
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    if run.returncode:
        raise SystemExit(run.stderr[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=32, help="per process")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    load_before = os.getloadavg()
    one = launch(args, 1)
    two = launch(args, 2)
    load_after = os.getloadavg()
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    result = {"command": command, "cpu_count": os.cpu_count(), "python": platform.python_version(),
              "torch": __import__("torch").__version__, "batch_per_process": args.batch_size,
              "steps": args.steps, "warmup": args.warmup, "one_process": one, "two_processes": two,
              "speedup": two["images_per_s"] / one["images_per_s"],
              "loadavg_1_5_15_before": load_before, "loadavg_1_5_15_after": load_after}
    print(f"1 process: {one['images_per_s']:.1f} images/s; 2 gloo processes: "
          f"{two['images_per_s']:.1f} images/s ({result['speedup']:.2f}x); load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; command: {command}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
