"""Figures every chapter shares: learning curves of one or more training runs.

Topic figures (bottleneck cost, factorization, label smoothing, residual scaling, the family)
live next to their numbers in ``inception_edu.figures``; this module holds what is common.
Every function returns its matplotlib ``Figure``; in a notebook end the cell with
``plt.show()`` or ``;`` so the figure is shown once.
"""
from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt

#: What the History columns mean, for axis labels.
LABELS = {"train_loss": "training loss", "val_loss": "validation loss", "train_top1": "training top-1",
          "val_top1": "validation top-1", "val_top5": "validation top-5", "lr": "learning rate"}


def plot_history(histories: Mapping[str, object], metrics=("train_loss", "val_top1"), title: str = ""):
    """One panel per metric, one line per run: ``plot_history({'with aux': h1, 'without': h2})``.

    ``histories`` maps a run's name to a :class:`inception_edu.train.History` (or anything with
    ``.column(key)``, or a dict of columns).
    """
    if not histories:
        raise ValueError("plot_history needs at least one run: {'name': history}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, h in histories.items():
            column = h.column if hasattr(h, "column") else h.get
            values = column(metric)
            if values is None or not len(values):
                raise ValueError(f"run {name!r} has no {metric!r}; it has: "
                                 f"{', '.join(getattr(h, 'to_dict', lambda: h)().keys())}")
            ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    axes[0][0].legend(frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
