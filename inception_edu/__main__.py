"""Command line: ``python -m inception_edu list | cost MODEL [--size S] | train ...``."""
from __future__ import annotations

import argparse
import sys


def _si(n: float) -> tuple[str, str]:
    """``23834568`` -> ``('23.83', 'M')``: decimal prefix, two decimals."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f}", prefix
    return f"{n:g}", ""


def summary_line(params: int, macs: int, size: int) -> str:
    """``23.83 M parameters, 5.73 G multiply-adds (11.46 GFLOPs) at 299x299`` (1 MAC = 2 FLOPs)."""
    (p, pp), (m, mp), (f, fp) = _si(params), _si(macs), _si(2 * macs)
    return (f"{p} {pp + ' ' if pp else ''}parameters, {m} {mp + ' ' if mp else ''}multiply-adds "
            f"({f} {fp}FLOPs) at {size}x{size}")


def _inference_model(name: str, aux: bool = False):
    """The network as it runs at inference: without its auxiliary heads unless ``aux``."""
    from . import create_model
    model = create_model(name)
    if not aux and len(getattr(model, "aux", ())):
        # Inference cost: without the heads, which also lets the trunk take smaller inputs.
        model = create_model(name, aux_logits=False)
    return model


def _cmd_list(args) -> int:
    import torch

    from . import list_models
    from .pretrained import DEFAULT_WEIGHTS
    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}", file=sys.stderr)
        return 1
    rows = []
    for name in names:
        with torch.device("meta"):  # counts parameters without allocating or initializing them
            model = _inference_model(name)
        size = model.default_size
        rows.append((name, f"{size}x{size}", f"{sum(p.numel() for p in model.parameters()):,}",
                     DEFAULT_WEIGHTS.get(name, "-")))
    header = ("model", "native size", "parameters", "published weights (pretrained=True)")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    for i, row in enumerate([header] + rows):
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip())
    print("parameters without auxiliary heads; `python -m inception_edu cost MODEL` for the "
          "per-stage table")
    return 0


def _cmd_cost(args) -> int:
    import pandas as pd

    from .cost import MAC_UNIT, stage_table
    model = _inference_model(args.model, args.aux)
    size = args.size or model.default_size
    table = stage_table(model, size, with_aux=args.aux)
    total = table.iloc[-1]
    with pd.option_context("display.max_rows", None, "display.width", 160):
        aux = "with" if args.aux else "without"
        print(f"{args.model} at {size}x{size}, {aux} auxiliary heads: parameters and {MAC_UNIT}, "
              f"counted by fvcore")
        print(table.to_string(index=False, formatters={"params": "{:,}".format,
                                                       "multiply-adds": "{:,}".format}))
    print(summary_line(int(total["params"]), int(total["multiply-adds"]), size))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inception_edu",
                                     description="The Inception family: list, count and train networks.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the registered networks: native size, parameters, published weights")
    p.add_argument("pattern", nargs="?", help="shell-style filter, e.g. '*cifar*'")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("cost", help="parameters and multiply-adds per stage")
    p.add_argument("model")
    p.add_argument("--size", type=int, help="input side in pixels (default: the model's native size)")
    p.add_argument("--aux", action="store_true", help="also count the auxiliary heads (training cost)")
    p.set_defaults(func=_cmd_cost)

    from .train.cli import add_train_arguments, run_train
    p = sub.add_parser("train", help="train a network (digits, cifar10, synthetic or an image folder)")
    add_train_arguments(p)
    p.set_defaults(func=run_train)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # bad input: say what to do, without a traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
