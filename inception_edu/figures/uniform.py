"""Inception-v4's uniform blocks: where the cost sits, and why uniform makes it add up.

Szegedy et al. (2017, Sec. 3.1) "decided to shed this unnecessary baggage and made uniform
choices for the Inception blocks for each grid size": every block on the 35x35 grid is the
same Inception-A, every block on the 17x17 grid the same Inception-B, every block on the 8x8
grid the same Inception-C. A network of that shape costs

    cost(n_A, n_B, n_C) = stem + n_A * A + Reduction-A + n_B * B + Reduction-B + n_C * C + head

for parameters and multiply-adds alike: a linear function of the three block counts, which
Inception-v4 sets to 4, 7 and 3 (the paper's Fig. 9).

* :func:`plot_stage_costs` -- a model's stage table (:func:`inception_edu.cost.stage_table`)
  drawn as bars, one per row, coloured by kind;
* :func:`uniform_blocks_data` / :func:`plot_uniform_blocks` / :func:`explore_uniform_blocks`
  -- the cost of a v4-shaped network for any block counts, from the costs of one of each
  block (counted once, on PyTorch's meta device, then pure arithmetic).
"""
from __future__ import annotations

#: Inception-v4's block counts (Fig. 9): 4 x A, 7 x B, 3 x C.
V4_COUNTS = {"A": 4, "B": 7, "C": 3}
#: The groups of rows, in trunk order: (key, label, colour).
GROUPS = (("stem", "stem", "tab:gray"), ("A", "Inception-A (35x35)", "tab:blue"),
          ("red_a", "Reduction-A", "tab:purple"), ("B", "Inception-B (17x17)", "tab:orange"),
          ("red_b", "Reduction-B", "tab:pink"), ("C", "Inception-C (8x8)", "tab:green"),
          ("head", "pool + classifier", "tab:brown"))
KIND_COLORS = {"stem": "tab:gray", "pool": "tab:gray", "inception": "tab:blue", "reduction": "tab:purple",
               "residual": "tab:olive", "classifier": "tab:brown", "auxiliary": "tab:cyan"}

_UNIT_COSTS: dict[int, dict] = {}


def _group(stage: str) -> str:
    """Which group an ``inception_v4`` stage row belongs to (TF-slim names: Mixed_5b ...)."""
    if stage == "head":
        return "head"
    if stage == "Mixed_6a":
        return "red_a"
    if stage == "Mixed_7a":
        return "red_b"
    for prefix, key in (("Mixed_5", "A"), ("Mixed_6", "B"), ("Mixed_7", "C")):
        if stage.startswith(prefix) and stage != "Mixed_5a":
            return key
    return "stem"


def unit_costs(table=None, size: int = 299) -> dict:
    """Parameters and multiply-adds of each group of Inception-v4, one block of A/B/C each.

    From ``table`` (``stage_table(create_model('inception_v4'), size)``) if given, else
    counted once per ``size`` (meta device, a few seconds) and remembered.
    """
    if table is None and size in _UNIT_COSTS:
        return _UNIT_COSTS[size]
    if table is None:
        import torch

        from .. import create_model
        from ..cost import stage_table

        with torch.device("meta"):   # shapes only: no memory for 42 M weights, built in milliseconds
            model = create_model("inception_v4")
        table = stage_table(model, size, counter="fast")
    rows = table[table["stage"] != "total"]
    costs = {key: {"params": 0, "macs": 0, "rows": 0} for key, _, _ in GROUPS}
    for _, row in rows.iterrows():
        c = costs[_group(row["stage"])]
        c["params"] += int(row["params"])
        c["macs"] += int(row["multiply-adds"])
        c["rows"] += 1
    for key in V4_COUNTS:   # one block of each: the blocks of a grid are identical
        n = costs[key]["rows"]
        costs[key] = {"params": costs[key]["params"] // n, "macs": costs[key]["macs"] // n, "rows": 1}
    total = table[table["stage"] == "total"].iloc[0]
    costs["v4_total"] = {"params": int(total["params"]), "macs": int(total["multiply-adds"])}
    _UNIT_COSTS[size] = costs
    return costs


def uniform_blocks_data(n_a: int = 4, n_b: int = 7, n_c: int = 3, size: int = 299, table=None) -> dict:
    """Cost of a v4-shaped network with ``n_a`` / ``n_b`` / ``n_c`` blocks per grid.

    Returns ``{'counts', 'groups': {key: {'params', 'macs'}}, 'params', 'macs', 'v4': {...}}``
    where each group's cost is count x one block (stem, reductions and head once).
    """
    counts = {"A": n_a, "B": n_b, "C": n_c}
    for key, n in counts.items():
        if int(n) != n or n < 0:
            raise ValueError(f"the number of Inception-{key} blocks must be a whole number >= 0; got {n!r}")
    unit = unit_costs(table, size)
    groups = {}
    for key, _, _ in GROUPS:
        times = counts.get(key, 1)
        groups[key] = {"params": times * unit[key]["params"], "macs": times * unit[key]["macs"]}
    v4 = {key: {"params": V4_COUNTS.get(key, 1) * unit[key]["params"],
                "macs": V4_COUNTS.get(key, 1) * unit[key]["macs"]} for key, _, _ in GROUPS}
    return {"counts": counts, "size": size, "groups": groups,
            "params": sum(g["params"] for g in groups.values()), "macs": sum(g["macs"] for g in groups.values()),
            "v4": {"groups": v4, "params": unit["v4_total"]["params"], "macs": unit["v4_total"]["macs"]},
            "unit": {k: dict(unit[k]) for k, _, _ in GROUPS}}


def draw_uniform_blocks(data: dict):
    """Stacked bars of multiply-adds and parameters by group: the chosen counts vs Inception-v4."""
    import matplotlib.pyplot as plt

    # Fixed margins, room below for the legend (tight_layout ignores a figure legend and
    # costs a second layout on every redraw).
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.36, top=0.91, wspace=0.45)
    c = data["counts"]
    rows = [(f"A / B / C = {c['A']} / {c['B']} / {c['C']}", data["groups"]),
            ("Inception-v4 (4 / 7 / 3)", data["v4"]["groups"])]
    for ax, metric, unit, scale in ((axes[0], "macs", "multiply-adds (billions)", 1e9),
                                     (axes[1], "params", "parameters (millions)", 1e6)):
        for y, (_, groups) in zip((1, 0), rows):
            left = 0.0
            for key, label, color in GROUPS:
                width = groups[key][metric] / scale
                ax.barh(y, width, left=left, color=color, edgecolor="white", label=label if y == 1 else None)
                left += width
            ax.text(left, y, f"  {left:.2f}", va="center", fontsize=9)
        ax.set_yticks([1, 0], [r[0] for r in rows], fontsize=9)
        ax.set_xlabel(unit)
        ax.set_xlim(0, max(data[metric], data["v4"][metric]) / scale * 1.18)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_title(f"multiply-adds at {data['size']}x{data['size']}", fontsize=10)
    axes[1].set_title("parameters", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False, fontsize=8,
               bbox_to_anchor=(0.5, 0.0))
    return fig


def plot_uniform_blocks(n_a: int = 4, n_b: int = 7, n_c: int = 3, size: int = 299, table=None):
    """Static figure of :func:`uniform_blocks_data`."""
    return draw_uniform_blocks(uniform_blocks_data(n_a, n_b, n_c, size, table))


def explore_uniform_blocks(n_a: int = 4, n_b: int = 7, n_c: int = 3, table=None):
    """Live explorer: move the number of A, B and C blocks; the cost follows, block by block."""
    from ..widgets import Explorer, slider

    unit_costs(table)   # count once, up front, so slider moves are arithmetic only

    def compute(n_a, n_b, n_c):
        return uniform_blocks_data(n_a, n_b, n_c)

    controls = {"n_a": slider(n_a, 0, 10, 1, "Inception-A blocks"),
                "n_b": slider(n_b, 0, 14, 1, "Inception-B blocks"),
                "n_c": slider(n_c, 0, 6, 1, "Inception-C blocks")}
    return Explorer(compute, draw_uniform_blocks, controls, title="uniform blocks", name="explore_uniform_blocks",
                    grid=UNIFORM_GRID, numbers=uniform_numbers)


#: The web page's block counts (100 frames), Inception-v4's 4 / 7 / 3 and chapter 9's 2 / 4 / 2 among them.
UNIFORM_GRID = {"n_a": [0, 2, 4, 6, 8], "n_b": [0, 4, 7, 10, 14], "n_c": [0, 2, 3, 6]}


def uniform_numbers(d: dict) -> dict:
    return {"multiply-adds": d["macs"], "parameters": d["params"], "multiply-adds / Inception-v4's": d["macs"] / d["v4"]["macs"]}


def plot_stage_costs(table, title: str = ""):
    """Two bar charts of a stage table: multiply-adds and parameters per row, by kind."""
    import matplotlib.pyplot as plt

    rows = table[~table["stage"].isin(["total", "other"])]
    fig, axes = plt.subplots(2, 1, figsize=(11, 5.2), sharex=True)
    x = list(range(len(rows)))
    colors = [KIND_COLORS.get(k, "tab:gray") for k in rows["kind"]]
    axes[0].bar(x, rows["multiply-adds"] / 1e6, color=colors)
    axes[0].set_ylabel("multiply-adds (millions)")
    axes[1].bar(x, rows["params"] / 1e6, color=colors)
    axes[1].set_ylabel("parameters (millions)")
    axes[1].set_xticks(x, rows["stage"], rotation=90, fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3, axis="y")
    kinds = list(dict.fromkeys(rows["kind"]))
    from matplotlib.patches import Patch

    axes[0].legend([Patch(color=KIND_COLORS.get(k, "tab:gray")) for k in kinds], kinds, frameon=False,
                   fontsize=8, ncol=len(kinds))
    if title:
        axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
