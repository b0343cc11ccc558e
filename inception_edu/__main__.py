"""Command line: ``python -m inception_edu list | cost MODEL [--size S] | train ...``."""
from __future__ import annotations

import argparse
import sys


def _cmd_list(args) -> int:
    from . import list_models
    for name in list_models(args.pattern):
        print(name)
    return 0


def _cmd_cost(args) -> int:
    import pandas as pd

    from . import create_model
    from .cost import MAC_UNIT, stage_table
    model = create_model(args.model)
    if not args.aux and len(getattr(model, "aux", ())):
        # Inference cost: without the heads, which also lets the trunk take smaller inputs.
        model = create_model(args.model, aux_logits=False)
    size = args.size or model.default_size
    table = stage_table(model, size, with_aux=args.aux)
    with pd.option_context("display.max_rows", None, "display.width", 160):
        aux = "with" if args.aux else "without"
        print(f"{args.model} at {size}x{size}, {aux} auxiliary heads: parameters and {MAC_UNIT}, "
              f"counted by fvcore")
        print(table.to_string(index=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inception_edu",
                                     description="The Inception family: list, count and train networks.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the registered networks")
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
