"""The family side by side: parameters, multiply-adds and the papers' ImageNet error.

* :func:`family_data` -- one row per full-size model of the library: parameters (inference
  network, no auxiliary heads), multiply-adds at an input size (fvcore's count, 1 MAC = 1),
  and the papers' single-crop top-1/top-5 error and cost from ``data/paper_results.csv``;
* :func:`plot_family` -- parameters vs multiply-adds (colour: the paper's top-1 error), and
  error vs multiply-adds with the Pareto front;
* :func:`explore_family` -- the same with the input size as a control.

Counting: the fast counter of :mod:`inception_edu.cost` (fvcore's rules on tensor shapes, on
PyTorch's ``meta`` device; equal to fvcore on every model, see ``tests/test_cost.py``), once
per model and size, cached. The explorer counts every size once when it is built; moving the
control only looks the numbers up.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

#: Input sides the explorer offers (0 = each model at the side its paper evaluated it at).
#: BN-Inception takes only sides whose 28x28-like grid is even, so it skips 299.
SIZES = (0, 128, 160, 224, 299, 384)

#: model -> (table, network, input side) of the papers' single-crop results in
#: ``paper_results.csv``: GoogLeNet and BN-Inception were evaluated at 224, the *Rethinking*
#: and Inception-v4 networks at 299 (also Inception-ResNet-v1, whose facenet port's native
#: side is 160). ``googlenet_bn`` (torchvision's BN layout, a 3x3 for the 5x5) is in no
#: paper's table. Both Inception-ResNet-v2 layouts get the paper's row: the 5/10/5 blocks of
#: its figure (``_paper``) and the 10/20/9 blocks of the released weights.
PAPER_ROWS = {
    "googlenet": ("rethinking_single_crop", "GoogLeNet", 224),
    "bn_inception": ("rethinking_single_crop", "BN-Inception", 224),
    "inception_v2": ("rethinking_single_crop", "Inception-v2", 299),
    # Table 3's last row, "Inception-v2 BN-auxiliary", is Inception-v3.
    "inception_v3": ("rethinking_single_crop", "Inception-v2 BN-auxiliary", 299),
    "inception_v4": ("inception_v4_single_crop", "Inception-v4", 299),
    "inception_resnet_v1": ("inception_v4_single_crop", "Inception-ResNet-v1", 299),
    "inception_resnet_v2": ("inception_v4_single_crop", "Inception-ResNet-v2", 299),
    "inception_resnet_v2_paper": ("inception_v4_single_crop", "Inception-ResNet-v2", 299),
}
#: Drawing order: the family's chronology.
ORDER = ("googlenet", "googlenet_bn", "bn_inception", "inception_v2", "inception_v3", "inception_v4",
         "inception_resnet_v1", "inception_resnet_v2_paper", "inception_resnet_v2")
COLUMNS = ["model", "paper_network", "input", "params", "multiply-adds", "conv_fc_macs",
           "top1_error", "top5_error", "paper_macs"]


def family_models() -> list[str]:
    """Every registered full-size model (the ``*_cifar`` ones are for small inputs), in order."""
    from .. import list_models

    names = [n for n in list_models() if not n.endswith("_cifar")]
    return [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]


@lru_cache(maxsize=None)
def paper_results() -> dict[tuple[str, str], dict]:
    """``(table, network) -> row`` of the packaged ``paper_results.csv`` (single-crop rows)."""
    text = resources.files("inception_edu").joinpath("data/paper_results.csv").read_text()
    rows = {}
    for row in csv.DictReader(text.splitlines()):
        if row["crops"] == "1":
            rows[(row["table"], row["network"])] = row
    return rows


def _number(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


@lru_cache(maxsize=None)
def _meta_model(name: str):
    """The inference network on the ``meta`` device: shapes only, built in milliseconds."""
    import torch

    from .. import create_model

    with torch.device("meta"):
        model = create_model(name)
        if len(getattr(model, "aux", ())):
            # The heads do not run at inference; without them the trunk also takes smaller inputs.
            model = create_model(name, aux_logits=False)
    return model.eval()


@lru_cache(maxsize=None)
def _counts(name: str, size: int) -> tuple[int, int, int, int] | None:
    """(input side, params, multiply-adds, conv + fc multiply-adds), or None where the model
    cannot take that side."""
    from ..cost import PAPER_OPS, count_macs, count_params

    model = _meta_model(name)
    side = size or (PAPER_ROWS[name][2] if name in PAPER_ROWS else model.default_size)
    try:
        ops = count_macs(model, side, by_operator=True, counter="fast")
    except ValueError:
        return None
    return side, count_params(model), sum(ops.values()), sum(ops.get(o, 0) for o in PAPER_OPS)


def family_data(size: int | None = None):
    """A pandas DataFrame, one row per model (:func:`family_models`), columns :data:`COLUMNS`.

    ``size``: input side for every model (None or 0: each at the side its paper evaluated it
    at, :data:`PAPER_ROWS`, else its native ``default_size``). Rows of models
    that cannot take ``size`` keep their name and paper numbers, with NaN counts.
    ``multiply-adds`` is what :func:`inception_edu.count_macs` returns (fvcore: conv, linear,
    BatchNorm, adaptive pooling); ``conv_fc_macs`` is the papers' unit (conv + fully
    connected); ``paper_macs`` the papers' own figure (Rethinking Table 3; None elsewhere).
    """
    import pandas as pd

    size = int(size or 0)
    if size < 0:
        raise ValueError(f"size must be an input side in pixels, or 0/None for each model's native size; got {size}")
    rows = []
    for name in family_models():
        counts = _counts(name, size)
        key = PAPER_ROWS[name][:2] if name in PAPER_ROWS else None
        paper = paper_results().get(key, {}) if key else {}
        cost = _number(paper.get("cost_bn_ops", ""))
        side, params, macs, conv_fc = counts if counts else (size, None, None, None)
        rows.append((name, key[1] if key else "", side, params, macs, conv_fc,
                     _number(paper.get("top1_error_pct", "")), _number(paper.get("top5_error_pct", "")),
                     cost * 1e9 if cost else None))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.attrs["size"] = size
    return frame


@lru_cache(maxsize=None)
def _table(sizes: tuple[int, ...]) -> dict:
    return {s: family_data(s) for s in sizes}


def family_table(sizes=SIZES) -> dict:
    """``{size: family_data(size)}`` for every size, counted once and cached."""
    return _table(tuple(int(s or 0) for s in sizes))


#: Where each model's label sits (points, from the marker), on the (left, right) panel: the
#: family's points crowd around 5-6 B multiply-adds and 20-24 M parameters.
LABEL_OFFSETS = (
    {"googlenet_bn": (5, -10), "inception_v2": (-5, -10), "inception_v3": (-5, 5),
     "inception_resnet_v1": (5, -10), "inception_v4": (5, -10), "inception_resnet_v2_paper": (5, -10)},
    {"inception_v2": (5, -10), "inception_v3": (-5, -10), "inception_resnet_v1": (5, 3),
     "inception_v4": (-5, -10), "inception_resnet_v2_paper": (-5, -10), "inception_resnet_v2": (5, 3)},
)


def _pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both cost and error (lower is better on both)."""
    front, best = [], float("inf")
    for x, y in sorted(points):
        if y < best:
            front.append((x, y))
            best = y
    return front


def _short(name: str) -> str:
    return name.replace("inception_resnet_", "inc-res-").replace("inception_", "inc-")


def draw_family(data):
    """Left: parameters vs multiply-adds, coloured and labelled by the paper's top-1 error.
    Right: top-1 error vs multiply-adds, the Pareto front, and (at the papers' input sizes)
    the papers' own cost beside ours."""
    import matplotlib as mpl

    from .cost import two_panels

    frame = data
    fig, (left, right) = two_panels()
    size = frame.attrs.get("size", 0)
    cmap, norm = mpl.colormaps["viridis_r"], mpl.colors.Normalize(19, 30)
    counted = frame[frame["multiply-adds"].notna()]
    known = counted[counted["top1_error"].notna()]
    unknown = counted[counted["top1_error"].isna()]

    def label(ax, r, x, y, text):
        dx, dy = LABEL_OFFSETS[ax is right].get(r["model"], (5, 3))
        ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7,
                    ha="left" if dx >= 0 else "right")

    left.scatter(known["multiply-adds"] / 1e9, known["params"] / 1e6, s=60, c=known["top1_error"],
                 cmap=cmap, norm=norm, edgecolors="k", linewidths=0.8, zorder=3)
    left.scatter(unknown["multiply-adds"] / 1e9, unknown["params"] / 1e6, s=60, facecolors="none",
                 edgecolors="gray", zorder=3)
    for _, r in counted.iterrows():
        err = r["top1_error"]
        text = _short(r["model"]) + (f" ({err:g} %)" if err == err else "")   # err == err: not NaN
        label(left, r, r["multiply-adds"] / 1e9, r["params"] / 1e6, text)
    missing = frame[frame["multiply-adds"].isna()]["model"].tolist()
    left.set_xlabel("billion multiply-adds (1 MAC = 1)")
    left.set_ylabel("million parameters")
    where = "at the papers' input sizes" if not size else f"all at {size}x{size}"
    left.set_title(f"cost {where}; colour, (%): paper's top-1 error", fontsize=9)
    if missing:
        left.text(0.98, 0.03, f"{', '.join(map(_short, missing))} cannot take {size}x{size}",
                  transform=left.transAxes, ha="right", fontsize=7, color="gray")
    left.grid(alpha=0.3)
    left.margins(x=0.25, y=0.15)

    xs, ys = known["multiply-adds"] / 1e9, known["top1_error"]
    right.scatter(xs, ys, s=50, c=ys, cmap=cmap, norm=norm, edgecolors="k", linewidths=0.8, zorder=3)
    for (_, r), x, y in zip(known.iterrows(), xs, ys):
        label(right, r, x, y, _short(r["model"]))
    if not size:
        theirs = known[known["paper_macs"].notna()]
        right.scatter(theirs["paper_macs"] / 1e9, theirs["top1_error"], s=50, facecolors="none",
                      edgecolors="gray", zorder=2, label="the paper's own cost")
        for (_, r) in theirs.iterrows():
            right.plot([r["paper_macs"] / 1e9, r["multiply-adds"] / 1e9], [r["top1_error"]] * 2,
                       color="gray", lw=0.8, zorder=1)
    front = _pareto(list(zip(xs, ys)))
    if front:
        right.step([p[0] for p in front], [p[1] for p in front], where="post", color="tab:red", lw=1,
                   alpha=0.7, label="Pareto front (ours)")
    right.set_xlabel("billion multiply-adds (1 MAC = 1)")
    right.set_ylabel("paper's top-1 error (%, single crop)")
    right.set_title("error vs cost (the errors are the papers' ImageNet results)", fontsize=9)
    right.grid(alpha=0.3)
    right.margins(x=0.25, y=0.1)
    right.legend(frameon=False, fontsize=7, loc="upper right")
    return fig


def plot_family(size: int | None = None):
    """Static figure of :func:`family_data` (each model at its paper's input size by default)."""
    return draw_family(family_data(size))


def explore_family(size: int = 224, sizes=SIZES):
    """Live :func:`plot_family` with the input side as a control; first every model at
    224 x 224, the size most later work compares at (0: each at its paper's size).

    Counts every model at every size in ``sizes`` once, when it is built (a few seconds, then
    cached for the session); a redraw only looks the numbers up.
    """
    from ..widgets import Explorer, dropdown

    sizes = tuple(int(s or 0) for s in sizes)
    size = int(size or 0)
    if size not in sizes:
        sizes = tuple(sorted(set(sizes) | {size}))
    table = family_table(sizes)
    options = [("as in the papers" if s == 0 else f"{s} x {s}", s) for s in sizes]
    controls = {"size": dropdown(options, size, "input size")}
    return Explorer(lambda size: table[size].copy(), draw_family, controls, title="the Inception family",
                    name="explore_family", numbers=family_numbers)


def family_numbers(frame) -> dict:
    """Three landmarks' multiply-adds at the chosen size (NaN where a model cannot take it)."""
    rows = frame.set_index("model")["multiply-adds"]
    return {f"{m} (MACs)": rows[m] for m in ("googlenet", "inception_v3", "inception_v4") if m in rows}
