"""Deterministic "fingerprint" weights and input, as defined in the reference data's README.

Two implementations of a network that compute the same function give the same float64
logits on these weights to about 1e-9; a wrong padding, concat order, BatchNorm eps, residual
scale or activation does not. The book uses this to show that our models *are* the published
ones, and the tests use it against the logits stored in ``tests/data/reference_models.json``.
"""
from __future__ import annotations

import math
import zlib

import torch


def fingerprint_tensor(key: str, shape) -> torch.Tensor:
    shape = tuple(shape)
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.float64)
    s = (zlib.crc32(key.encode("utf-8")) % 10007) / 10007
    base = torch.sin(0.5 * i + 2 * math.pi * s)
    if len(shape) >= 2:
        value = base * 2 / math.sqrt(n / shape[0])
    elif key.endswith("running_var"):
        value = 1 + 0.25 * (base + 1)
    elif key.endswith("running_mean"):
        value = 0.1 * base
    elif key.endswith("bias"):
        value = 0.05 * base
    else:
        value = 1 + 0.1 * base
    return value.reshape(shape)


def fingerprint_state_dict(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """Reference-named float64 weights from a ``{key: shape}`` table.

    ``num_batches_tracked`` entries are integer counters and stay 0.
    """
    return {k: (torch.zeros(shape, dtype=torch.long) if k.endswith("num_batches_tracked")
                else fingerprint_tensor(k, shape)) for k, shape in shapes.items()}


def fingerprint_input(size: int) -> torch.Tensor:
    return torch.sin(0.01 * torch.arange(3 * size * size, dtype=torch.float64)).reshape(1, 3, size, size)
