"""inception_edu: the Inception family of image networks, built exactly, counted, and trained.

The public surface. Heavy parts (cost counting, plots, widgets, training) load on first use,
so ``import inception_edu`` stays fast and quiet.
"""
from importlib import import_module

from . import models  # noqa: F401  (registers every model)
from .convert import from_reference, list_references
from .models.base import InceptionOutputs
from .registry import create_model, list_models

__version__ = "0.1.0"

# name -> submodule that defines it; loaded on first access (PEP 562).
_LAZY = {
    "count_params": "cost", "count_macs": "cost", "stage_table": "cost",
    "train": "train", "Trainer": "train", "load_digits": "train",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'inception_edu' has no attribute {name!r}")


__all__ = ["__version__", "create_model", "list_models", "from_reference", "list_references",
           "InceptionOutputs", *_LAZY]
