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
    # cost.py: counting, and the cited analytic formulas
    "count_params": "cost", "count_macs": "cost", "count_flops": "cost", "stage_table": "cost",
    "conv_macs": "cost", "conv_params": "cost", "PAPER_OPS": "cost",
    # published.py: the published parameter / multiply-add figures (package data)
    "published_figure": "published", "published_figures": "published",
    # layers.py and describe.py: what the chapters used to write for themselves
    "remove_batchnorm": "layers", "width_multiplier": "layers",
    "describe_branches": "describe", "describe_module": "describe",
    # pretrained.py: the published weights' configs and their preprocessing
    "eval_transform": "pretrained", "list_pretrained": "pretrained", "get_pretrained_cfg": "pretrained",
    # fold.py: BatchNorm folded into the convolutions, for inference
    "fold_batchnorm": "fold",
    # training
    "train": "train", "Trainer": "train", "load_digits": "train",
    # experiments: the cluttered digits, several seeds per variant (train/cluttered.py, experiments.py)
    "load_cluttered": "train.cluttered", "plot_cluttered_samples": "train.cluttered",
    "run_seeds": "train.experiments",
    # figures and explorers (matplotlib, ipywidgets)
    "Explorer": "widgets", "plot_history": "plots",
    "plot_bottleneck": "figures.cost", "explore_bottleneck": "figures.cost",
    "plot_factorization": "figures.cost", "explore_factorization": "figures.cost",
    "plot_grid_reduction": "figures.cost", "explore_grid_reduction": "figures.cost",
    "plot_family": "figures.family", "explore_family": "figures.family",
    "plot_head_params": "figures.heads", "explore_head_params": "figures.heads",
    "plot_class_activation_maps": "figures.heads",
    "plot_label_smoothing": "figures.label_smoothing", "explore_label_smoothing": "figures.label_smoothing",
    "plot_residual_scaling": "figures.residual", "explore_residual_scaling": "figures.residual",
    "plot_activation_growth": "figures.residual", "plot_stage_grad_norms": "figures.aux",
    "plot_confidence": "figures.label_smoothing", "plot_reliability": "figures.label_smoothing",
    "plot_logit_gaps": "figures.label_smoothing", "plot_uniform_blocks": "figures.uniform",
    "explore_uniform_blocks": "figures.uniform", "plot_stage_costs": "figures.uniform",
    "explore_stage_grad_norms": "figures.aux", "plot_schedule": "figures.schedule",
    "explore_lr_schedule": "figures.schedule",
    # diagrams.py: modules and networks drawn from their own layers
    "draw_module": "diagrams", "draw_network": "diagrams", "to_svg": "diagrams", "show_svg": "diagrams",
    "plot_diagram": "diagrams", "explore_diagram": "diagrams",
}


def __getattr__(name):
    if name in _LAZY:
        module = import_module(f".{_LAZY[name]}", __name__)
        return module if name == _LAZY[name] else getattr(module, name)  # 'train' is the subpackage
    raise AttributeError(f"module 'inception_edu' has no attribute {name!r}")


__all__ = ["__version__", "create_model", "list_models", "from_reference", "list_references",
           "InceptionOutputs", *_LAZY]
