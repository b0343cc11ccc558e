"""BatchNorm folding for inference: chapter 4's exercise as a library function.

In eval mode BatchNorm is a fixed per-channel affine map, ``y = gamma * (z - mu) / sqrt(var + eps)
+ beta``. After a convolution ``z = W * x + b`` it folds into the convolution:
``W' = W * gamma / sqrt(var + eps)`` (per output channel) and
``b' = (b - mu) * gamma / sqrt(var + eps) + beta``. Ioffe & Szegedy 2015, Sec. 3.1: "Since the
means and variances are fixed during inference, the normalization is simply a linear transform
applied to each activation. It may further be composed with the scaling by gamma and shift by
beta, to yield a single linear transform that replaces BN(x)." torch implements the folding in
``torch.nn.utils.fusion.fuse_conv_bn_eval`` (and ``fuse_linear_bn_eval``), which we call.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

_PAIRS = ((nn.Conv2d, nn.BatchNorm2d), (nn.Linear, nn.BatchNorm1d))


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


def _folding_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv or linear, BatchNorm) module names where the BatchNorm reads that layer's output
    and nothing else does, found in the dataflow graph torch.fx records (training mode, so
    the auxiliary heads are in it too)."""
    was_training = model.training
    try:
        graph = torch.fx.symbolic_trace(model.train()).graph
    except Exception as err:
        raise TypeError(f"fold_batchnorm finds each BatchNorm's convolution by tracing the model with "
                        f"torch.fx, which failed for {type(model).__name__}: {err}") from err
    finally:
        model.train(was_training)
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or len(node.args) != 1 or not isinstance(node.args[0], torch.fx.Node):
            continue
        src = node.args[0]
        if src.op != "call_module" or len(src.users) != 1:
            continue
        layer, bn = modules[src.target], modules[node.target]
        kinds = [(a, b) for a, b in _PAIRS if isinstance(layer, a) and type(bn) is b]
        # A module called twice would be folded for one of its uses only: leave it as it is.
        if kinds and calls[src.target] == calls[node.target] == 1 and bn.track_running_stats:
            pairs.append((src.target, node.target))
    return pairs


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm that follows a convolution (or a
    linear layer) folded into it; the BatchNorm becomes ``nn.Identity``.

    The copy computes the same function as ``model.eval()`` (up to float rounding), with one
    operation fewer per conv: an inference network. It has no BatchNorm left to train, so
    train the original and fold again. ``model`` itself is not changed.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"fold_batchnorm takes an nn.Module; got {type(model).__name__}")
    folded = copy.deepcopy(model)
    pairs = _folding_pairs(folded)
    folded.eval()
    for layer_name, bn_name in pairs:
        layer, bn = folded.get_submodule(layer_name), folded.get_submodule(bn_name)
        fuse = fuse_conv_bn_eval if isinstance(layer, nn.Conv2d) else fuse_linear_bn_eval
        _set_submodule(folded, layer_name, fuse(layer, bn))
        _set_submodule(folded, bn_name, nn.Identity())
    return folded.eval()  # the new modules too
