"""``python -m inception_edu train ...``: train a registered network and keep its metrics.

    python -m inception_edu train --model googlenet_cifar --data digits --epochs 5 --out runs/g
    python -m inception_edu train --model googlenet_cifar --data digits --epochs 10 --out runs/g --resume

writes ``OUT/last.pt`` (a checkpoint, atomically, after every epoch), ``OUT/best.pt`` (the
epoch with the best validation top-1), ``OUT/metrics.json`` (recipe, history, final result) and
``OUT/metrics.csv`` (one row per epoch, the columns of timm's summary.csv), and prints one line
per epoch and the final accuracy.

Under ``torchrun`` (several processes) it trains with DistributedDataParallel: nccl with one
GPU per process on CUDA, gloo on the CPU; rank 0 alone prints and writes files.

    torchrun --nproc_per_node=8 -m inception_edu train --model inception_v3 --data /imagenet \
        --size 299 --recipe rethinking --out runs/v3
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path


def add_train_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from .recipes import list_recipes

    p.add_argument("--model", help="a registered network (python -m inception_edu list); "
                                   "with --resume, defaults to the checkpoint's")
    p.add_argument("--data", default="digits",
                   help="digits | cluttered | cifar10 | synthetic | PATH of an image folder (default: digits)")
    p.add_argument("--epochs", type=int, help="epochs to plan for (default: the recipe's)")
    p.add_argument("--recipe", choices=list_recipes(),
                   help="default: the model's (fast; nin for the plain nin_cifar, batch_norm=False; "
                        "with --resume: the checkpoint's)")
    p.add_argument("--out", required=True, help="folder for last.pt and metrics.json")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--aux-weight", type=float, help="weight of each auxiliary classifier's loss")
    p.add_argument("--ema-decay", type=float,
                   help="running average of the weights, e.g. 0.9999 (the rethinking and googlenet "
                        "recipes' default); evaluation uses the averaged weights")
    p.add_argument("--accum-steps", type=int,
                   help="micro-batches per optimizer step (global batch = batch size x processes "
                        "x this)")
    p.add_argument("--sync-bn", action="store_true",
                   help="under torchrun: BatchNorm statistics over all GPUs (SyncBatchNorm)")
    p.add_argument("--save-every-steps", type=int,
                   help="also write OUT/last.pt every N optimizer steps (resumes mid-epoch)")
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard logs to OUT/tensorboard (needs: pip install tensorboard)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA mostly)")
    p.add_argument("--device", help="cpu | cuda | mps (default: the best available)")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--width-mult", type=float, help="channel width multiplier (small models)")
    p.add_argument("--model-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                   help="options of the network's builder, as timm's train.py takes them, e.g. "
                        "--model-kwargs batch_norm=False drop_rate=0.2 (nin_cifar trains with "
                        "batch_norm=True unless told otherwise)")
    p.add_argument("--size", type=int, help="input side in pixels (default 32; synthetic too)")
    p.add_argument("--num-workers", type=int,
                   help="decoding processes per training process (default: none for digits, "
                        "cluttered and synthetic, else from the CPU count)")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 into --root")
    p.add_argument("--root", default="data", help="where CIFAR-10 lives (default: ./data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def parse_model_kwargs(items: list[str]) -> dict:
    """``["batch_norm=False", "drop_rate=0.2"]`` -> ``{"batch_norm": False, "drop_rate": 0.2}``
    (values read as Python literals, else kept as text)."""
    import ast

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-kwargs takes KEY=VALUE pairs (e.g. batch_norm=False); "
                             f"got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def _write_json(path: Path, obj) -> None:
    from .checkpoint import atomic_write

    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


#: metrics.csv's columns: those of timm's summary.csv (timm/utils/summary.py: epoch,
#: train_ + train metrics, eval_ + eval metrics, lr), accuracies in percent as timm's; eval_*
#: are the weights evaluation uses (the averaged ones with --ema-decay, then raw_eval_* too).
CSV_COLUMNS = ("epoch", "train_loss", "eval_loss", "eval_top1", "eval_top5", "lr")


def metrics_csv(history) -> str:
    """The history as timm's summary.csv."""
    rows = []
    ema = any("ema_val_top1" in r for r in history)
    for r in history:
        pre = "ema_val_" if ema else "val_"
        row = {"epoch": r["epoch"], "train_loss": r["train_loss"],
               "eval_loss": r.get(pre + "loss"),
               "eval_top1": 100 * r[pre + "top1"] if pre + "top1" in r else None,
               "eval_top5": 100 * r[pre + "top5"] if pre + "top5" in r else None, "lr": r["lr"]}
        if ema:
            row.update(raw_eval_loss=r.get("val_loss"), raw_eval_top1=100 * r["val_top1"],
                       raw_eval_top5=100 * r["val_top5"])
        rows.append(row)
    out = io.StringIO()
    columns = list(CSV_COLUMNS) + (["raw_eval_loss", "raw_eval_top1", "raw_eval_top5"] if ema else [])
    w = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # torch's writer needs the tensorboard package
        raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard "
                         "(or drop --tensorboard; metrics.csv has the same numbers)") from err
    return SummaryWriter(str(folder))


def run_train(args: argparse.Namespace) -> int:
    from .trainer import init_distributed

    started = init_distributed(args.device)
    try:
        return _run_train(args, started)
    finally:
        if started is not None:
            import torch.distributed as dist

            dist.destroy_process_group()


def _run_train(args: argparse.Namespace, dist_device) -> int:
    import torch

    from ..registry import create_model
    from .checkpoint import load_checkpoint, seed_everything
    from .data import make_loaders
    from .recipes import Recipe, default_model_kwargs, default_recipe, get_recipe
    from .trainer import NonFiniteLossError, Trainer, dist_info, pick_device

    rank, world = dist_info()
    main = rank == 0
    out = Path(args.out)
    ckpt_path = out / "last.pt"
    model_name, epochs = args.model, args.epochs
    model_kwargs = parse_model_kwargs(args.model_kwargs)
    if args.width_mult is not None:
        model_kwargs["width_mult"] = args.width_mult
    if not args.resume:
        defaults = {k: v for k, v in default_model_kwargs(args.model).items() if k not in model_kwargs}
        if defaults and main:
            said = ", ".join(f"{k}={v}" for k, v in defaults.items())
            print(f"{args.model}: {said} (the CLI's default for it; the plain network does not "
                  f"learn in a short run: --model-kwargs "
                  f"{' '.join(f'{k}={not v}' if isinstance(v, bool) else k + '=...' for k, v in defaults.items())}"
                  f" for the paper's)", flush=True)
        model_kwargs = {**defaults, **model_kwargs}
    base_recipe = args.recipe or default_recipe(args.model, model_kwargs)
    if args.resume:
        # Fail before any work if the checkpoint is missing, corrupt or of another network.
        ckpt = load_checkpoint(ckpt_path, model_name=args.model)
        model_name = ckpt["model_name"]
        stored = {k: v for k, v in ckpt.get("model_kwargs", {}).items() if k != "num_classes"}
        for k, v in model_kwargs.items():
            if stored.get(k) != v:
                held = f"{k}={stored[k]}" if k in stored else f"no {k} option"
                raise ValueError(f"this checkpoint holds {model_name} with {held}; you asked for "
                                 f"{k}={v}: drop the option or start fresh without --resume")
        model_kwargs = stored
        base_recipe = Recipe.from_dict(ckpt["recipe"])
        if args.recipe and args.recipe != base_recipe.name:
            raise ValueError(f"this checkpoint was trained with the {base_recipe.name!r} recipe; "
                             f"you asked for {args.recipe!r}: drop --recipe or start fresh "
                             f"without --resume")
        # The optimizer state (rates included) comes back from the checkpoint, so a changed
        # rate or batch size would be silently ignored or would bend the schedule: refuse.
        asked = {"lr": args.lr, "weight_decay": args.weight_decay, "batch_size": args.batch_size,
                 "label_smoothing": args.label_smoothing, "aux_weight": args.aux_weight,
                 "ema_decay": args.ema_decay, "accum_steps": args.accum_steps}
        changed = [f"--{k.replace('_', '-')} {v} (checkpoint: {getattr(base_recipe, k)})"
                   for k, v in asked.items() if v is not None and v != getattr(base_recipe, k)]
        if changed:
            raise ValueError(f"a resumed run continues the checkpoint's recipe; you asked for "
                             f"{', '.join(changed)}: drop those options or start fresh without "
                             f"--resume")
        epochs = epochs or ckpt["epochs"]
        del ckpt
    elif not model_name:
        raise ValueError("pass --model NAME (see: python -m inception_edu list)")

    recipe = get_recipe(base_recipe, lr=args.lr, weight_decay=args.weight_decay,
                        label_smoothing=args.label_smoothing, aux_weight=args.aux_weight,
                        epochs=epochs, batch_size=args.batch_size, ema_decay=args.ema_decay,
                        accum_steps=args.accum_steps)
    device = dist_device if dist_device is not None else pick_device(args.device)
    writer = _tensorboard_writer(out / "tensorboard") if (args.tensorboard and main) else None
    seed_everything(args.seed)
    loaders = make_loaders(args.data, recipe.batch_size, args.size, seed=args.seed,
                           num_workers=args.num_workers, device=device, root=args.root,
                           download=args.download)
    model_kwargs = {"num_classes": loaders.num_classes, **model_kwargs}
    model = create_model(model_name, **model_kwargs)
    size = args.size or 32
    min_size = getattr(model, "aux_min_size", getattr(model, "min_size", 0))  # training runs the aux heads
    if min_size > size:
        raise ValueError(f"{model_name} needs inputs of at least {min_size}x{min_size} pixels: "
                         f"pass --size {min_size} (the images are resized)")

    meta = {"model": model_name, "model_kwargs": model_kwargs, "data": str(args.data),
            "recipe": recipe.to_dict(), "device": str(device), "seed": args.seed,
            "world_size": world, "global_batch": recipe.batch_size * world * recipe.accum_steps,
            "torch": str(torch.__version__)}

    def write_metrics(history, **final):
        from .checkpoint import atomic_write

        _write_json(out / "metrics.json", {**meta, "history": history, **final})
        atomic_write(out / "metrics.csv", lambda f: f.write(metrics_csv(history).encode()))

    def report(trainer, row):   # rank 0 only
        ema = (f"  averaged top-1 {100 * row['ema_val_top1']:.2f} %" if "ema_val_top1" in row else "")
        print(f"epoch {row['epoch']:3d}/{trainer.planned_epochs}  train loss {row['train_loss']:.4f}  "
              f"val loss {row.get('val_loss', float('nan')):.4f}  val top-1 "
              f"{100 * row.get('val_top1', float('nan')):.2f} %{ema}  {row['images_per_s']:.0f} img/s",
              flush=True)
        write_metrics(trainer.history.rows)
        if writer is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    writer.add_scalar(k, v, row["epoch"])
            writer.flush()

    trainer = Trainer(model, recipe, device=device, precision=args.precision, compile=args.compile,
                      seed=args.seed, checkpoint=ckpt_path, best_checkpoint=out / "best.pt",
                      save_every_steps=args.save_every_steps, sync_bn=args.sync_bn,
                      model_name=model_name, model_kwargs=model_kwargs,
                      progress=False if args.no_progress else None, on_epoch_end=report)
    try:
        history = trainer.fit(loaders.train, loaders.val, resume=ckpt_path if args.resume else None)
    except NonFiniteLossError as err:
        if main:
            print(f"error: {err}", file=sys.stderr)
        return 1
    # The final result: of the averaged weights when there are any, summed over the ranks.
    test = trainer.evaluate(loaders.test)
    name = loaders.test_name          # 'validation' when the data has no separate test set
    if main:
        write_metrics(history.rows, **{name: test, "final_split": name})
        if writer is not None:
            writer.close()
        print(f"{name} top-1 {100 * test['top1']:.2f} %  top-5 {100 * test['top5']:.2f} %  "
              f"loss {test['loss']:.4f}  ({len(history)} epochs, {model_name} on {args.data})")
    return 0
