"""Why the Inception modules are cheap: three cost pictures and their explorers.

* **The 1x1 bottleneck** (GoogLeNet, Sec. 4): a ``k x k`` convolution alone vs after a 1x1
  reduction -- :func:`bottleneck_data`, :func:`plot_bottleneck`, :func:`explore_bottleneck`.
* **Factorized convolutions** (*Rethinking*, Sec. 3): ``n x n`` vs stacked 3x3 or
  ``1 x n`` + ``n x 1`` -- :func:`factorization_data`, :func:`plot_factorization`,
  :func:`explore_factorization`.
* **Grid reduction** (*Rethinking*, Sec. 5, Fig. 9/10): pool then expand, expand then pool,
  or both in parallel -- :func:`grid_reduction_data`, :func:`plot_grid_reduction`,
  :func:`explore_grid_reduction`.

Every number comes from the formulas of :mod:`inception_edu.cost` (tested there against
fvcore on the layers they describe), so an explorer redraws without counting anything.
Unit: multiply-adds, 1 MAC = 1 (FLOPs = 2 x).
"""
from __future__ import annotations

from . import check_whole
from ..cost import GRID_OPTIONS, bottleneck_cost, conv_macs, factorization_cost, grid_reduction_cost

UNIT = "multiply-adds (1 MAC = 1)"


def two_panels(width_ratios=(1, 1)):
    """A 10 x 3.5 inch figure with two panels and fixed margins.

    Fixed margins instead of ``tight_layout``: laying text out twice per redraw is most of
    an explorer's time, and a redraw has 100 ms."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": list(width_ratios)})
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.89, wspace=0.28)
    for ax in axes:
        ax.locator_params(nbins=5)  # few tick labels: each one is laid out on every redraw
    return fig, axes


def _si(n: float) -> str:
    """1234567 -> '1.23 M' (the figures' labels)."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g} {unit}"
    return f"{n:.3g}"


# -- the 1x1 bottleneck ---------------------------------------------------------------------------
def bottleneck_data(c_in: int = 192, c_mid: int = 16, c_out: int = 32, k: int = 5, hw: int = 28) -> dict:
    """A ``k x k`` conv ``c_in -> c_out`` on an ``hw x hw`` grid, alone ("naive") and after a
    1x1 reduction to ``c_mid`` channels (GoogLeNet Sec. 4; formula: :func:`inception_edu.cost.bottleneck_cost`).

    Defaults: GoogLeNet's inception (3a) 5x5 branch (28x28x192, "#5x5 reduce" 16, "#5x5" 32).
    Returns the two costs (multiply-adds and parameters, with the 1x1 and ``k x k`` parts),
    ``speedup`` (naive / bottlenecked) and ``savings`` (fraction saved), the break-even
    reduction width (above it the bottleneck costs more than it saves), and the curve of the
    bottlenecked cost for every reduction width from 1 to ``max(c_in, c_mid)``.
    """
    check_whole(c_in=c_in, c_mid=c_mid, c_out=c_out, k=k, hw=hw)
    c = bottleneck_cost(c_in, c_mid, c_out, k, hw)
    widths = list(range(1, max(c_in, c_mid) + 1))
    return {
        "c_in": c_in, "c_mid": c_mid, "c_out": c_out, "k": k, "hw": hw,
        "naive_macs": c.before_macs, "bottleneck_macs": c.after_macs,
        "reduce_macs": conv_macs(c_in, c_mid, 1, hw), "conv_macs": conv_macs(c_mid, c_out, k, hw),
        "naive_params": c.before_params, "bottleneck_params": c.after_params,
        "speedup": c.speedup, "savings": c.savings,
        # c_in c_mid + k^2 c_mid c_out = k^2 c_in c_out  <=>  c_mid = k^2 c_in c_out / (c_in + k^2 c_out)
        "break_even": k * k * c_in * c_out / (c_in + k * k * c_out),
        "widths": widths, "macs_by_width": [bottleneck_cost(c_in, w, c_out, k, hw).after_macs for w in widths],
    }


def draw_bottleneck(data: dict):
    """Bars: naive vs bottlenecked (1x1 part + k x k part); curve: cost vs the reduction width."""
    d = data
    fig, (left, right) = two_panels((1, 1.3))
    k = d["k"]
    left.bar([0], [d["naive_macs"] / 1e6], color="tab:red", width=0.6)
    left.bar([1], [d["reduce_macs"] / 1e6], color="tab:green", width=0.6, label="1x1 reduction")
    left.bar([1], [d["conv_macs"] / 1e6], bottom=[d["reduce_macs"] / 1e6], color="tab:blue", width=0.6,
             label=f"{k}x{k} on {d['c_mid']} channels")
    top = max(d["naive_macs"], d["bottleneck_macs"]) / 1e6
    for x, v, p in ((0, d["naive_macs"], d["naive_params"]), (1, d["bottleneck_macs"], d["bottleneck_params"])):
        left.text(x, v / 1e6 + 0.02 * top, f"{_si(v)} MACs\n{_si(p)} params", ha="center", va="bottom", fontsize=8)
    left.set_xticks([0, 1], [f"{k}x{k} alone", f"1x1 ({d['c_mid']}) -> {k}x{k}"])
    left.set_ylim(0, top * 1.35)
    left.set_ylabel("million multiply-adds")
    # The legend goes above the shorter bar.
    left.legend(frameon=False, fontsize=8, loc="upper right" if d["speedup"] >= 1 else "upper left")
    verdict = (f"{d['speedup']:.2f}x cheaper" if d["speedup"] >= 1 else f"{1 / d['speedup']:.2f}x dearer")
    left.set_title(f"{d['hw']}x{d['hw']}x{d['c_in']} -> {d['c_out']} channels: {verdict}", fontsize=10)

    right.plot(d["widths"], [m / 1e6 for m in d["macs_by_width"]], color="tab:blue", label="with 1x1 reduction")
    right.axhline(d["naive_macs"] / 1e6, color="tab:red", ls="--", label=f"{k}x{k} alone")
    right.plot([d["c_mid"]], [d["bottleneck_macs"] / 1e6], "o", color="k", mfc="none", ms=8)
    if d["break_even"] <= d["widths"][-1]:
        right.axvline(d["break_even"], color="gray", lw=0.8, ls=":")
        right.text(d["break_even"], d["naive_macs"] / 1e6 * 0.5, f" break-even\n {d['break_even']:.0f} channels",
                   fontsize=8, color="gray")
    right.set_xlabel("reduction width (channels after the 1x1)")
    right.set_ylabel("million multiply-adds")
    right.set_title(f"saving {100 * d['savings']:.0f} % at width {d['c_mid']}" if d["savings"] >= 0
                    else f"costing {-100 * d['savings']:.0f} % more at width {d['c_mid']}", fontsize=10)
    right.grid(alpha=0.3)
    right.legend(frameon=False, fontsize=8, loc="lower right")
    return fig


def plot_bottleneck(c_in: int = 192, c_mid: int = 16, c_out: int = 32, k: int = 5, hw: int = 28):
    """Static figure of :func:`bottleneck_data` (GoogLeNet's (3a) 5x5 branch by default)."""
    return draw_bottleneck(bottleneck_data(c_in, c_mid, c_out, k, hw))


def explore_bottleneck(c_in: int = 192, c_mid: int = 16, c_out: int = 32, k: int = 5, hw: int = 28):
    """Live :func:`plot_bottleneck`: input channels, reduction width, output channels, kernel, grid."""
    from ..widgets import Explorer, dropdown, slider

    controls = {
        "c_in": slider(c_in, 16, max(1024, c_in), 16 if c_in % 16 == 0 else 1, "input channels"),
        "c_mid": slider(c_mid, 1, max(256, c_mid), 1, "reduction width (1x1)"),
        "c_out": slider(c_out, 16, max(512, c_out), 16 if c_out % 16 == 0 else 1, "output channels"),
        "k": dropdown(sorted({1, 3, 5, 7, k}), k, "kernel k x k"),
        "hw": slider(hw, 1, max(56, hw), 1, "grid H = W"),
    }
    return Explorer(bottleneck_data, draw_bottleneck, controls, title="1x1 bottleneck", name="explore_bottleneck",
                    grid=BOTTLENECK_GRID, numbers=bottleneck_numbers)


#: The web page's values (80 frames): every kernel, reduction widths in doublings, the
#: inputs of GoogLeNet's (3a) and (4a) on its 28 and 14 grids; (3a)'s 32 outputs.
BOTTLENECK_GRID = {"c_in": [192, 480], "c_mid": [8, 16, 32, 64, 128], "c_out": [32],
                   "k": [1, 3, 5, 7], "hw": [14, 28]}


def bottleneck_numbers(d: dict) -> dict:
    """The numbers shown beside the figure."""
    return {"k x k alone (MACs)": d["naive_macs"], "with the 1x1 (MACs)": d["bottleneck_macs"],
            "speed-up": d["speedup"], "break-even width": d["break_even"]}


# -- factorized convolutions ----------------------------------------------------------------------
KINDS = {"stacked": "stacked 3x3 (symmetric)", "asymmetric": "1 x n then n x 1 (asymmetric)"}


def _layers(n: int, kind: str) -> list[str]:
    return ["3x3"] * ((n - 1) // 2) if kind == "stacked" else [f"1x{n}", f"{n}x1"]


def factorization_data(n: int = 5, kind: str = "stacked", channels: int = 64, hw: int = 17,
                       max_n: int = 9) -> dict:
    """An ``n x n`` convolution vs its factorization, all widths ``channels``, on ``hw x hw``
    (*Rethinking* Sec. 3; formula: :func:`inception_edu.cost.factorization_cost`).

    ``kind``: ``"stacked"`` ((n-1)/2 3x3 convs: 5x5 -> two 3x3 is 18/25, "28 % cheaper") or
    ``"asymmetric"`` (1 x n then n x 1: 2/n, "33 %" for 3x3). Returns both costs, the
    factorized layers and their costs, ``ratio``/``savings``, and the relative cost of both
    kinds for every odd kernel 3..``max_n`` (``ratio_by_n``; independent of widths and grid).
    """
    check_whole(n=n, channels=channels, hw=hw)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}; got {kind!r}")
    c = factorization_cost(n, channels, channels, hw, kind=kind)
    ns = list(range(3, max(max_n, n) + 1, 2))
    return {
        "n": n, "kind": kind, "channels": channels, "hw": hw,
        "full_macs": c.before_macs, "factorized_macs": c.after_macs,
        "full_params": c.before_params, "factorized_params": c.after_params,
        "ratio": c.ratio, "savings": c.savings,
        "layers": _layers(n, kind),
        "layer_macs": [conv_macs(channels, channels, _pair(s), hw) for s in _layers(n, kind)],
        "ns": ns,
        "ratio_by_n": {k: [factorization_cost(m, 1, 1, 1, kind=k).ratio for m in ns] for k in KINDS},
    }


def _pair(text: str) -> tuple[int, int]:
    h, w = text.split("x")
    return int(h), int(w)


def draw_factorization(data: dict):
    """Bars: n x n vs the factorized layers; curve: relative cost vs n for both kinds."""
    d = data
    n = d["n"]
    fig, (left, right) = two_panels()
    left.bar([0], [d["full_macs"] / 1e6], color="tab:red", width=0.6)
    bottom = 0.0
    colors = ["tab:blue", "tab:cyan", "tab:purple", "tab:olive"]
    for i, (name, m) in enumerate(zip(d["layers"], d["layer_macs"])):
        left.bar([1], [m / 1e6], bottom=[bottom], color=colors[i % len(colors)], width=0.6,
                 label=f"{name} ({i + 1})" if d["layers"].count(name) > 1 else name)
        bottom += m / 1e6
    top = max(d["full_macs"], d["factorized_macs"]) / 1e6
    for x, v, p in ((0, d["full_macs"], d["full_params"]), (1, d["factorized_macs"], d["factorized_params"])):
        left.text(x, v / 1e6 + 0.02 * top, f"{_si(v)} MACs\n{_si(p)} params", ha="center", va="bottom", fontsize=8)
    left.set_xticks([0, 1], [f"{n}x{n}", " + ".join(d["layers"])])
    left.set_ylim(0, top * 1.35)
    left.set_ylabel("million multiply-adds")
    left.legend(frameon=False, fontsize=8, loc="upper right")
    c, hw = d["channels"], d["hw"]
    left.set_title(f"{hw}x{hw}x{c} -> {c}: {100 * d['savings']:.0f} % cheaper", fontsize=10)

    for kind, style in (("stacked", "o-"), ("asymmetric", "s-")):
        right.plot(d["ns"], d["ratio_by_n"][kind], style, ms=4, label=KINDS[kind],
                   lw=2.5 if kind == d["kind"] else 1, alpha=1 if kind == d["kind"] else 0.5)
    right.plot([n], [d["ratio"]], "o", color="k", mfc="none", ms=10)
    right.axhline(1, color="tab:red", ls="--", lw=1, label="n x n (1.0)")
    right.set_xticks(d["ns"], [f"{m}x{m}" for m in d["ns"]])
    right.set_ylim(0, 1.1)
    right.set_xlabel("kernel replaced")
    right.set_ylabel("cost relative to n x n")
    right.set_title("equal widths: the ratio depends on n only", fontsize=10)
    right.grid(alpha=0.3)
    right.legend(frameon=False, fontsize=8, loc="lower left")
    return fig


def plot_factorization(n: int = 5, kind: str = "stacked", channels: int = 64, hw: int = 17):
    """Static figure of :func:`factorization_data` (5x5 -> two 3x3 by default)."""
    return draw_factorization(factorization_data(n, kind, channels, hw))


def explore_factorization(n: int = 5, kind: str = "stacked", channels: int = 64, hw: int = 17):
    """Live :func:`plot_factorization`: kernel size, symmetric vs asymmetric, channels, grid."""
    from ..widgets import Explorer, dropdown, slider

    controls = {
        "n": dropdown(sorted({3, 5, 7, 9, n}), n, "kernel n x n"),
        "kind": dropdown([(label, key) for key, label in KINDS.items()], kind, "factorize into"),
        "channels": slider(channels, 16, max(1024, channels), 16 if channels % 16 == 0 else 1, "channels"),
        "hw": slider(hw, 1, max(71, hw), 1, "grid H = W"),
    }
    return Explorer(factorization_data, draw_factorization, controls, title="factorized convolutions",
                    name="explore_factorization", grid=FACTORIZATION_GRID, numbers=factorization_numbers)


#: The web page's values (96 frames): every odd kernel, both kinds, the widths and grids of
#: BN-Inception's and Inception-v3's modules (96 on 28x28, 192 on 17x17, ...).
FACTORIZATION_GRID = {"n": [3, 5, 7, 9], "channels": [64, 96, 192, 384], "hw": [8, 17, 28]}


def factorization_numbers(d: dict) -> dict:
    return {"n x n (MACs)": d["full_macs"], "factorized (MACs)": d["factorized_macs"],
            "cost ratio": d["ratio"]}


# -- grid reduction ------------------------------------------------------------------------------
def grid_reduction_data(d: int = 32, k: int = 256, kernel: int = 1) -> dict:
    """Three ways from ``d x d x k`` to ``d/2 x d/2 x 2k`` (*Rethinking* Sec. 5, Fig. 9/10;
    formula: :func:`inception_edu.cost.grid_reduction_cost`).

    ``kernel``: the convolutions' kernel (the paper's costs are for 1x1: ``2 d^2 k^2`` for
    expand-then-pool). Returns per option (in :data:`inception_edu.cost.GRID_OPTIONS` order)
    its multiply-adds, parameters, output shape (H, W, C) and narrowest representation (the
    number of values the network is squeezed through), plus the input's size.
    """
    check_whole(d=d, k=k, kernel=kernel)
    if d < 2:
        raise ValueError(f"a grid reduction needs a grid of at least 2x2; got d={d}")
    options = grid_reduction_cost(d, k, kernel)
    return {
        "d": d, "k": k, "kernel": kernel, "input": d * d * k,
        "names": [o.name for o in options],
        "macs": [o.macs for o in options], "params": [o.params for o in options],
        "outputs": [o.output for o in options], "narrowest": [o.narrowest for o in options],
        "bottleneck": [o.narrowest < o.output[0] * o.output[1] * o.output[2] for o in options],
    }


def draw_grid_reduction(data: dict):
    """Bars: each option's cost; and the size of the representation it passes through."""
    g = data
    colors = ["tab:orange", "tab:red", "tab:green"]
    fig, (left, right) = two_panels()
    fig.subplots_adjust(left=0.17)   # room for the options' names
    y = list(range(len(g["names"])))[::-1]
    top = max(g["macs"]) / 1e6
    left.barh(y, [m / 1e6 for m in g["macs"]], color=colors)
    for yi, m in zip(y, g["macs"]):
        left.text(m / 1e6 + 0.02 * top, yi, _si(m), va="center", fontsize=8)
    left.set_yticks(y, g["names"], fontsize=9)
    left.set_xlim(0, top * 1.3)
    left.set_xlabel("million multiply-adds")
    d, k, h = g["d"], g["k"], g["outputs"][0][0]
    kk = g["kernel"]
    left.set_title(f"{d}x{d}x{k} -> {h}x{h}x{2 * k} ({kk}x{kk} convolutions)", fontsize=10)

    right.barh(y, [n / 1e3 for n in g["narrowest"]], color=colors)
    right.axvline(g["input"] / 1e3, color="k", ls=":", lw=1, label=f"input {d}x{d}x{k}")
    out = g["outputs"][0]
    right.axvline(out[0] * out[1] * out[2] / 1e3, color="gray", ls="--", lw=1, label=f"output {h}x{h}x{2 * k}")
    for yi, n, b in zip(y, g["narrowest"], g["bottleneck"]):
        right.text(n / 1e3, yi, "  bottleneck" if b else "", va="center", fontsize=8, color="tab:red")
    right.set_yticks(y, ["" for _ in y])
    right.set_xlim(0, g["input"] / 1e3 * 1.45)
    right.set_xlabel("narrowest representation (thousand values)")
    right.set_title("what the information squeezes through", fontsize=10)
    right.legend(frameon=False, fontsize=8, loc="lower right")
    return fig


def plot_grid_reduction(d: int = 32, k: int = 256, kernel: int = 1):
    """Static figure of :func:`grid_reduction_data` (32x32x256 -> 16x16x512 by default)."""
    return draw_grid_reduction(grid_reduction_data(d, k, kernel))


def explore_grid_reduction(d: int = 32, k: int = 256, kernel: int = 1):
    """Live :func:`plot_grid_reduction`: grid side d, channels k, convolution kernel."""
    from ..widgets import Explorer, dropdown, slider

    controls = {
        "d": slider(d, 2, max(147, d), 1, "grid d"),
        "k": slider(k, 16, max(1024, k), 16 if k % 16 == 0 else 1, "channels k"),
        "kernel": dropdown(sorted({1, 3, kernel}), kernel, "conv kernel"),
    }
    return Explorer(grid_reduction_data, draw_grid_reduction, controls, title="grid reduction",
                    name="explore_grid_reduction", grid=GRID_REDUCTION_GRID, numbers=grid_reduction_numbers)


#: The web page's values (84 frames): the family's grids (147 ... 8, and powers of two) and widths.
GRID_REDUCTION_GRID = {"d": [8, 17, 32, 35, 71, 147], "k": [64, 128, 256, 288, 512, 768, 1024], "kernel": [1, 3]}


def grid_reduction_numbers(g: dict) -> dict:
    return {f"{name} (MACs)": m for name, m in zip(g["names"], g["macs"])}


__all__ = ["bottleneck_data", "draw_bottleneck", "plot_bottleneck", "explore_bottleneck",
           "factorization_data", "draw_factorization", "plot_factorization", "explore_factorization",
           "grid_reduction_data", "draw_grid_reduction", "plot_grid_reduction", "explore_grid_reduction",
           "GRID_OPTIONS", "KINDS", "UNIT", "BOTTLENECK_GRID", "FACTORIZATION_GRID", "GRID_REDUCTION_GRID"]
