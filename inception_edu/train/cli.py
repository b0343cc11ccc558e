"""``python -m inception_edu train ...``: train a registered network and keep its metrics.

    python -m inception_edu train --model googlenet_cifar --data digits --epochs 5 --out runs/g
    python -m inception_edu train --model googlenet_cifar --data digits --epochs 10 --out runs/g --resume

writes ``OUT/last.pt`` (a checkpoint, atomically, after every epoch) and ``OUT/metrics.json``
(recipe, history, test result), and prints one line per epoch and the final test accuracy.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_train_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from .recipes import list_recipes

    p.add_argument("--model", help="a registered network (python -m inception_edu list); "
                                   "with --resume, defaults to the checkpoint's")
    p.add_argument("--data", default="digits",
                   help="digits | cifar10 | synthetic | PATH of an image folder (default: digits)")
    p.add_argument("--epochs", type=int, help="epochs to plan for (default: the recipe's)")
    p.add_argument("--recipe", choices=list_recipes(),
                   help="default: fast (with --resume: the checkpoint's recipe)")
    p.add_argument("--out", required=True, help="folder for last.pt and metrics.json")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--aux-weight", type=float, help="weight of each auxiliary classifier's loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA mostly)")
    p.add_argument("--device", help="cpu | cuda | mps (default: the best available)")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--width-mult", type=float, help="channel width multiplier (small models)")
    p.add_argument("--size", type=int, help="input side in pixels (default 32; synthetic too)")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 into --root")
    p.add_argument("--root", default="data", help="where CIFAR-10 lives (default: ./data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _write_json(path: Path, obj) -> None:
    from .checkpoint import atomic_write

    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


def run_train(args: argparse.Namespace) -> int:
    import torch

    from ..registry import create_model
    from .checkpoint import load_checkpoint, seed_everything
    from .data import make_loaders
    from .recipes import Recipe, get_recipe
    from .trainer import NonFiniteLossError, Trainer, evaluate, pick_device

    out = Path(args.out)
    ckpt_path = out / "last.pt"
    model_name, model_kwargs, base_recipe, epochs = args.model, {}, args.recipe or "fast", args.epochs
    if args.width_mult is not None:
        model_kwargs["width_mult"] = args.width_mult
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
                 "label_smoothing": args.label_smoothing, "aux_weight": args.aux_weight}
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
                        epochs=epochs, batch_size=args.batch_size)
    device = pick_device(args.device)
    seed_everything(args.seed)
    loaders = make_loaders(args.data, recipe.batch_size, args.size, seed=args.seed,
                           num_workers=args.num_workers, device=device, root=args.root,
                           download=args.download)
    model_kwargs = {"num_classes": loaders.num_classes, **model_kwargs}
    model = create_model(model_name, **model_kwargs)
    size = args.size or 32
    min_size = getattr(model, "min_size", 0)
    if min_size > size:
        raise ValueError(f"{model_name} needs inputs of at least {min_size}x{min_size} pixels: "
                         f"pass --size {min_size} (the images are resized)")

    meta = {"model": model_name, "model_kwargs": model_kwargs, "data": str(args.data),
            "recipe": recipe.to_dict(), "device": str(device), "seed": args.seed,
            "torch": str(torch.__version__)}

    def report(trainer, row):
        print(f"epoch {row['epoch']:3d}/{trainer.planned_epochs}  train loss {row['train_loss']:.4f}  "
              f"val loss {row.get('val_loss', float('nan')):.4f}  val top-1 "
              f"{100 * row.get('val_top1', float('nan')):.2f} %  {row['images_per_s']:.0f} img/s",
              flush=True)
        _write_json(out / "metrics.json", {**meta, "history": trainer.history.rows})

    trainer = Trainer(model, recipe, device=device, precision=args.precision, compile=args.compile,
                      seed=args.seed, checkpoint=ckpt_path, model_name=model_name,
                      model_kwargs=model_kwargs, progress=False if args.no_progress else None,
                      on_epoch_end=report)
    try:
        history = trainer.fit(loaders.train, loaders.val, resume=ckpt_path if args.resume else None)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    test = evaluate(trainer.model, loaders.test, device=device, precision=args.precision)
    _write_json(out / "metrics.json", {**meta, "history": history.rows, "test": test})
    print(f"test top-1 {100 * test['top1']:.2f} %  top-5 {100 * test['top5']:.2f} %  "
          f"loss {test['loss']:.4f}  ({len(history)} epochs, {model_name} on {args.data})")
    return 0
