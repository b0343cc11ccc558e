"""Training throughput (images/s) and MFU of Inception-v3 at 299x299 on one GPU.

    python benchmarks/gpu_train_throughput.py --json benchmarks/results/gpu_train_throughput.json
    torchrun --standalone --nproc_per_node=2 benchmarks/gpu_train_throughput.py --ddp \
        --json benchmarks/results/gpu_train_ddp.json          # DDP scaling (2 GPUs)

In one run, on the same synthetic device-resident batch (so the data pipeline is not measured):

  ours        inception_edu's inception_v3: bf16 autocast + channels_last, eager and compiled
  torchvision torchvision's inception_v3 (when importable): the same two settings
  tv fp32     torchvision's inception_v3, a plain fp32 eager loop (no autocast, NCHW)

Each step is a full training step as the Trainer runs it: forward (aux head included),
cross-entropy with label smoothing + 0.4 x aux loss, backward, gradient clipping, RMSProp
(the 'rethinking' recipe).

MFU (model FLOPs utilization, PaLM, Chowdhery et al. 2022, App. B; nanoGPT's estimate_mfu):
achieved FLOP/s over the device's dense bf16 peak, with training FLOPs per image =
2 (FLOPs per multiply-add) x 3 (forward + backward, whose two matmuls per layer cost twice the
forward) x the forward multiply-adds counted at 299x299 (eval mode: no aux head; fvcore's total also counts
BatchNorm and pooling, +0.35 % for Inception-v3 -- see shared notes/toolchain.md). The fp32 run is
also divided by the bf16 peak, which is the point: it shows what leaving bf16 off costs.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from torch import nn

# Dense bf16 tensor-core peaks (FLOP/s, without the 2:4 sparsity NVIDIA's data sheets also
# quote, i.e. half their "with sparsity" figures). First match wins, so variants come first.
PEAK_BF16 = [
    ("H200 NVL", 835e12),
    ("H200", 989e12),       # SXM; also matches "GH200" (the same GPU)
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),       # SXM (device names like "NVIDIA H100 80GB HBM3")
    ("A100", 312e12),       # SXM and PCIe alike
]


def peak_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a device named like ``torch.cuda.get_device_name()``."""
    for key, peak in PEAK_BF16:
        if all(part in device_name for part in key.split()):
            return peak
    return None


def forward_macs(model: nn.Module, size: int) -> tuple[float, str]:
    """Multiply-adds of one forward pass at ``size`` (eval mode), and who counted them."""
    import copy

    m = copy.deepcopy(model).float().eval().to("cpu")
    try:
        from inception_edu.cost import count_macs
    except ImportError:  # the cost engine is not in this checkout: count with fvcore directly
        from fvcore.nn import FlopCountAnalysis

        counter = FlopCountAnalysis(m, torch.randn(1, 3, size, size))
        counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return float(counter.total()), "fvcore FlopCountAnalysis"
    # fvcore underneath; eval mode, so the aux head (training only) is not counted.
    return float(count_macs(m, input_size=(3, size, size))), "inception_edu.cost.count_macs"


def train_step_fn(model: nn.Module, amp: bool, label_smoothing=0.1, aux_weight=0.4, clip=2.0):
    from inception_edu.train.losses import inception_loss

    opt = torch.optim.RMSprop(model.parameters(), lr=0.045, alpha=0.9, eps=1.0, momentum=0.9)

    def step(x, y):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        loss, _ = inception_loss(out, y, label_smoothing=label_smoothing, aux_weight=aux_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss

    return step


def measure(make_model, *, amp: bool, channels_last: bool, compile: bool, batch: int, size: int,
            warmup: int, steps: int, ddp: bool = False) -> dict:
    torch.manual_seed(0)
    model = make_model().cuda().train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ddp:  # one process per GPU under torchrun; the gradients all-reduced over nccl
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[torch.cuda.current_device()])
    fwd = torch.compile(model) if compile else model
    step = train_step_fn(fwd, amp)
    x = torch.randn(batch, 3, size, size, device="cuda")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device="cuda")
    t0 = time.perf_counter()
    for _ in range(warmup):           # includes compilation and cuDNN autotuning
        step(x, y)
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - t0
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        loss = step(x, y)
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / steps
    result = {"step_ms": ms, "images_per_s": batch * 1000.0 / ms, "warmup_s": warm_s,
              "final_loss": float(loss), "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30}
    del model, fwd, step
    if compile:
        torch._dynamo.reset()         # the next run compiles its own model from scratch
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--size", type=int, default=299)
    p.add_argument("--warmup", type=int, default=10, help="untimed steps (compilation included)")
    p.add_argument("--steps", type=int, default=50, help="timed steps")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile runs")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--ddp", action="store_true",
                   help="under torchrun: our model (bf16, channels_last, compiled unless "
                        "--no-compile) in DDP, images/s summed over the GPUs")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU: this benchmark measures GPU training throughput", file=sys.stderr)
        return 2
    if args.ddp:
        return ddp_scaling(args, argv)
    torch.backends.cudnn.benchmark = True
    # The fp32 run keeps PyTorch's defaults, recorded below: cuDNN convolutions may use TF32
    # (cudnn.allow_tf32 defaults to True), matmuls do not (matmul.allow_tf32 defaults to False).
    tf32 = {"cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32}

    from inception_edu import create_model

    device = torch.cuda.get_device_name()
    peak = peak_flops(device)
    runs: list[tuple[str, callable, dict]] = []
    ours = lambda: create_model("inception_v3", num_classes=1000)  # noqa: E731
    runs.append(("ours bf16 eager", ours, dict(amp=True, channels_last=True, compile=False)))
    if not args.no_compile:
        runs.append(("ours bf16 compiled", ours, dict(amp=True, channels_last=True, compile=True)))
    try:
        from torchvision.models import inception_v3 as tv_inception_v3
        tv = lambda: tv_inception_v3(weights=None, aux_logits=True, init_weights=True)  # noqa: E731
        tv_status = "installed"
    except Exception as err:  # not installed, or a build that does not match this torch
        tv, tv_status = None, f"not installed ({type(err).__name__})"
    if tv is not None:
        runs.append(("torchvision bf16 eager", tv, dict(amp=True, channels_last=True, compile=False)))
        if not args.no_compile:
            runs.append(("torchvision bf16 compiled", tv, dict(amp=True, channels_last=True, compile=True)))
        runs.append(("torchvision fp32 eager", tv, dict(amp=False, channels_last=False, compile=False)))

    results = []
    for name, make, settings in runs:
        macs, counter = forward_macs(make(), args.size)
        r = measure(make, batch=args.batch_size, size=args.size, warmup=args.warmup, steps=args.steps,
                    **settings)
        flops_per_image = 2 * 3 * macs
        r.update(run=name, **settings, forward_macs=macs, macs_counted_by=counter,
                 mfu=(r["images_per_s"] * flops_per_image / peak) if peak else None)
        results.append(r)
        print(f"{name}: {r['images_per_s']:.0f} images/s", file=sys.stderr, flush=True)

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"\nInception-v3 training step, batch {args.batch_size}, {args.size}x{args.size}, "
          f"{args.steps} timed steps after {args.warmup} warm-up steps")
    print(f"device: {device}; torch {torch.__version__}; torchvision: {tv_status}; "
          f"bf16 peak: {f'{peak / 1e12:.0f} TFLOP/s' if peak else 'unknown (MFU not reported)'}")
    print(f"command: `{command}`\n")
    print("| run | images/s | step (ms) | MFU | peak memory (GiB) |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        mfu = f"{100 * r['mfu']:.1f} %" if r["mfu"] is not None else "n/a"
        print(f"| {r['run']} | {r['images_per_s']:.0f} | {r['step_ms']:.1f} | {mfu} | "
              f"{r['max_memory_gib']:.1f} |")
    if tv is None:
        print(f"| torchvision inception_v3 | {tv_status} | | | |")
    # The targets: our fastest run >= 1.5x torchvision's plain fp32 eager loop, MFU >= 40 %.
    by_name = {r["run"]: r for r in results}
    best = max((r for r in results if r["run"].startswith("ours")), key=lambda r: r["images_per_s"])
    baseline = by_name.get("torchvision fp32 eager")
    speedup = best["images_per_s"] / baseline["images_per_s"] if baseline else None
    ratio = f"{speedup:.2f}x" if speedup else "n/a (torchvision not installed)"
    mfu = f"{100 * best['mfu']:.1f} %" if best["mfu"] is not None else "n/a (unknown peak)"
    print(f"\nfastest of ours: {best['run']}; vs torchvision fp32 eager: {ratio} (target >= 1.5x); "
          f"MFU {mfu} (target >= 40 %)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "device": device, "peak_bf16_flops": peak, "torch": torch.__version__,
            "torchvision": tv_status, "python": platform.python_version(), "command": command,
            "batch_size": args.batch_size, "size": args.size, "steps": args.steps,
            "warmup": args.warmup, "tf32": tf32, "results": results,
            "fastest_ours": best["run"], "speedup_vs_torchvision_fp32_eager": speedup}, indent=1))
    return 0


def ddp_scaling(args, argv) -> int:
    """Per-GPU and total images/s of our Inception-v3 in DDP; rank 0 reports."""
    import os

    import torch.distributed as dist

    from inception_edu import create_model

    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    world, rank = dist.get_world_size(), dist.get_rank()
    torch.backends.cudnn.benchmark = True
    ours = lambda: create_model("inception_v3", num_classes=1000)  # noqa: E731
    r = measure(ours, amp=True, channels_last=True, compile=not args.no_compile,
                batch=args.batch_size, size=args.size, warmup=args.warmup, steps=args.steps, ddp=True)
    rates = [None] * world
    dist.all_gather_object(rates, r["images_per_s"])
    if rank == 0:
        device = torch.cuda.get_device_name()
        command = "torchrun ... " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
        total = sum(rates)
        print(f"DDP over {world} x {device}: {total:.0f} images/s in all "
              f"({', '.join(f'{v:.0f}' for v in rates)} per GPU), batch {args.batch_size} per GPU; "
              f"compare with `python {sys.argv[0]}` on one GPU for the scaling; command: `{command}`")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"device": device, "world_size": world,
                                             "per_gpu_images_per_s": rates, "images_per_s": total,
                                             "batch_per_gpu": args.batch_size, "size": args.size,
                                             "compile": not args.no_compile, "command": command,
                                             "torch": torch.__version__, "step_ms_rank0": r["step_ms"]},
                                            indent=1))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
