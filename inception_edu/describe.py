"""A module's layers as text: what chapters 4, 6 and 9 each wrote for themselves.

The text is the diagram's reading of the module (:mod:`inception_edu.diagrams`): the same
labels :func:`~inception_edu.diagrams.draw_module` writes in its boxes (``1x7 conv, 192``,
``3x3 max pool /2``, ``1x1 conv, 320, linear``), so a table and a figure of the same block
can never disagree, and a layer the reader does not know is the same clear ``TypeError``.
"""
from __future__ import annotations

from torch import nn

# One reading of a module, shared with the diagrams (one definition of every label).
from .diagrams import _Box, _Fork, _read, _Residual
from .layers import Branches, ResidualBranches


def _as_text(items) -> str:
    parts = []
    for it in items:
        if isinstance(it, _Box):
            parts.append(it.label)
        elif isinstance(it, _Fork):       # filters side by side inside a branch (Fig. 7's 1x3 | 3x1)
            parts.append("(" + " | ".join(_as_text(chain) for chain in it.chains) + ")")
        elif isinstance(it, _Residual):
            inner = "(" + " | ".join(_as_text(chain) for chain in it.fork.chains) + ")"
            tail = [b.label for b in it.proj + [it.scale] if b is not None]
            parts.append("x + " + " -> ".join([inner, *tail]) + (" -> ReLU" if it.act is not None else ""))
    return " -> ".join(parts)


def describe_branches(block: nn.Module) -> list[str]:
    """One line of text per branch of a ``Branches`` or ``ResidualBranches`` block, layers in
    the order they run, e.g. for GoogLeNet's inception (3a)::

        ['1x1 conv, 64', '1x1 conv, 96 -> 3x3 conv, 128', '1x1 conv, 16 -> 5x5 conv, 32',
         '3x3 max pool -> 1x1 conv, 32']

    A bank of filters side by side inside a branch reads ``(1x3 conv, 384 | 3x1 conv, 384)``.
    For a residual block the lines are its branches; :func:`describe_module` adds the projection and
    the scale.
    """
    if not isinstance(block, (Branches, ResidualBranches)):
        raise TypeError(f"describe_branches takes a Branches or ResidualBranches block (an Inception "
                        f"module, e.g. model.features.inception3a); got {type(block).__name__}. "
                        f"For any other module use describe_module(module)")
    return [_as_text(_read(branch, f"branches.{i}")) for i, branch in enumerate(block.branches)]


def describe_module(module: nn.Module) -> str:
    """Any module the diagrams read, as one line: layers joined by ``->``, branches in
    ``( | )``, a residual block as ``x + (branches) -> projection -> scale -> ReLU``."""
    return _as_text(_read(module, ""))
