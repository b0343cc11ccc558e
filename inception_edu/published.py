"""The published parameter and multiply-add figures the book quotes, as package data.

``data/published.csv`` holds one row per figure: the ``subject`` (a reference key of
:func:`inception_edu.list_references`, or ``paper.<model>`` for a number a paper prints), the
``quantity`` (``params``, ``params_without_aux``, ``fvcore_macs`` = fvcore's total, ``macs`` /
``published_gmacs`` = conv + linear multiply-adds as published, ...), the ``value``, the
``input_size`` it was measured at, and its ``source``. A chapter reads the figure from here
instead of typing it (:func:`published_figure`), and ``tests/test_published.py`` holds the rows to the references.
(Accuracies and the papers' cost columns are in ``data/paper_results.csv``.)
"""
from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources
from typing import NamedTuple


class PublishedFigure(NamedTuple):
    subject: str
    quantity: str
    value: int | float
    input_size: int
    source: str


def _number(text: str) -> int | float:
    # A count measured to the unit (13004888) stays an int; a printed figure (1.5e9, 1.498) a float.
    return int(text) if text.isdigit() else float(text)


@lru_cache(maxsize=1)
def published_figures() -> tuple[PublishedFigure, ...]:
    """Every row of ``data/published.csv``, in file order."""
    text = resources.files("inception_edu").joinpath("data/published.csv").read_text()
    return tuple(PublishedFigure(r["subject"], r["quantity"], _number(r["value"]), int(r["input_size"]),
                                 r["source"]) for r in csv.DictReader(text.splitlines()))


def published_figure(subject: str, quantity: str) -> int | float:
    """One published figure, e.g. ``published_figure("timm.inception_v4", "params")`` -> 42679816.

    An unknown subject or quantity is a ``ValueError`` that lists what there is.
    """
    rows = [r for r in published_figures() if r.subject == subject]
    if not rows:
        subjects = sorted({r.subject for r in published_figures()})
        raise ValueError(f"no published figures for {subject!r}; subjects: {', '.join(subjects)}")
    for r in rows:
        if r.quantity == quantity:
            return r.value
    raise ValueError(f"{subject!r} has no published {quantity!r}; it has: {', '.join(r.quantity for r in rows)}")
