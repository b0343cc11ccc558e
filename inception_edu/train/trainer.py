"""The training loop: one :class:`Trainer`, plus :func:`fit`, :func:`evaluate`, :func:`predict_proba`.

On CUDA a step runs in bf16 autocast with channels_last tensors (optionally ``torch.compile``d),
reading from pinned memory with non-blocking copies. On the CPU it runs in fp32 with
deterministic algorithms and seeded RNGs, so a run repeats exactly and a resumed run matches an
uninterrupted one loss for loss.

Inside an initialised ``torch.distributed`` process group (``torchrun``; the CLI initialises
it: nccl on CUDA, gloo on the CPU) the trainer wraps the model in DistributedDataParallel,
gives each rank its shard of the training set (``DistributedSampler``, reseeded every epoch
with ``set_epoch``), sums evaluation over the ranks so every sample counts once, and lets rank
0 alone write checkpoints and report. Optional: an exponential moving average of the weights
(the papers' running average), gradient accumulation, step checkpoints resumed mid-epoch.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import (CheckpointError, load_checkpoint, rng_state, save_checkpoint,
                         seed_everything, set_rng_state)
from .data import ShardSampler, SkipBatches, rebuild_loader
from .losses import inception_loss, split_outputs
from .recipes import Recipe, build_optimizer, build_scheduler, get_recipe, initialize, sync_lr


def ema_with_warmup(decay: float):
    """An exponential moving average for ``AveragedModel(multi_avg_fn=...)`` whose decay after
    ``n`` updates is ``min(decay, (1 + n) / (10 + n))``.

    This is TensorFlow's ``tf.train.ExponentialMovingAverage(decay, num_updates=global_step)``,
    which the Inception training code used (tensorflow/models, research/inception,
    ``inception_train.py``: ``ExponentialMovingAverage(inception.MOVING_AVERAGE_DECAY,
    global_step)`` over the trainable variables and the BatchNorm statistics). Without the
    warm-up a decay of 0.9999 leaves the average at the initial weights for the first ~10,000
    steps: a short run would be evaluated at chance. Integer buffers (BatchNorm's
    ``num_batches_tracked``) take the current value.
    """
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - d)
        else:
            for a, c in zip(averaged, current):
                a.copy_(c)
    return update


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite: training stopped before writing anything."""


# -- device and precision -------------------------------------------------------------------
def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA, else Apple's MPS, else the CPU."""
    if device is not None and str(device) != "auto":
        try:
            device = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"unknown device {str(device)!r}: use cpu, cuda, cuda:1 or mps") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("CUDA was asked for but torch sees no CUDA GPU: pass --device cpu")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("MPS was asked for but is not available here: pass --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` ('auto', 'bf16', 'fp16', 'fp32'); None = fp32."""
    if precision not in ("auto", "bf16", "fp16", "fp32"):
        raise ValueError(f"precision must be auto, bf16, fp16 or fp32; got {precision!r}")
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    non_blocking = device.type == "cuda"
    if channels_last and x.dim() == 4:
        return x.to(device, non_blocking=non_blocking, memory_format=torch.channels_last)
    return x.to(device, non_blocking=non_blocking)


def _progress_enabled(progress: bool | None) -> bool:
    """Bars only on a terminal: never in notebooks (nbval compares stderr), CI or pipes."""
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty() and not os.environ.get("CI")


# -- distributed ----------------------------------------------------------------------------
def dist_info() -> tuple[int, int]:
    """(rank, world size) of the initialised process group; (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str | None = None) -> torch.device | None:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment): initialise the process
    group -- nccl with one GPU per process (``LOCAL_RANK``) on CUDA, gloo on the CPU -- and
    return this process's device. Without torchrun: None (nothing to do)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return None
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    want_cuda = (device in (None, "auto") and torch.cuda.is_available()) or \
        (device is not None and str(device).startswith("cuda"))
    if want_cuda:
        if not torch.cuda.is_available():
            raise ValueError("CUDA was asked for but torch sees no CUDA GPU: pass --device cpu")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s): "
                             f"pass --nproc_per_node {torch.cuda.device_count()} or fewer to torchrun")
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
        return torch.device("cuda", local)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def _broadcast_buffers(module: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm statistics) everywhere: the ranks' statistics drift apart
    by the last step's local update, and evaluation and checkpoints must see one model."""
    import torch.distributed as dist

    for b in module.buffers():
        dist.broadcast(b, src=0)


def _aux_modules(model: nn.Module) -> list[nn.Module]:
    """The auxiliary heads: ours (``model.aux``), torchvision's (AuxLogits, aux1, aux2)."""
    found = []
    aux = getattr(model, "aux", None)
    if isinstance(aux, nn.Module):
        found.append(aux)
    for name in ("AuxLogits", "aux1", "aux2"):
        m = getattr(model, name, None)
        if isinstance(m, nn.Module):
            found.append(m)
    return found


# -- history --------------------------------------------------------------------------------
@dataclass
class History:
    """One dict per finished epoch: epoch, train_loss, train_top1, val_loss, val_top1,
    val_top5, lr (of the epoch's last batch), images_per_s (training only), seconds."""

    rows: list[dict] = field(default_factory=list)

    def append(self, row: dict) -> None:
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i) -> dict:
        return self.rows[i]

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    def column(self, key: str) -> list:
        return [r.get(key) for r in self.rows]

    def to_dict(self) -> dict[str, list]:
        """Column-wise: ``{'epoch': [1, 2], 'train_loss': [...], ...}`` (handy for plots)."""
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        return {k: self.column(k) for k in keys}

    def as_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.rows)


# -- evaluation -----------------------------------------------------------------------------
class Predictions(NamedTuple):
    #: N x K softmax probabilities (float32, on the CPU).
    probs: torch.Tensor
    #: N true labels.
    targets: torch.Tensor


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def _eval_batches(model: nn.Module, loader: Iterable, device, precision: str):
    device = torch.device(device) if device is not None else _model_device(model)
    dtype = _autocast_dtype(device, precision)
    channels_last = device.type == "cuda"
    was_training = model.training
    model.eval()
    try:
        for x, y in loader:
            x, y = _to_device(x, device, channels_last), _to_device(y, device, False)
            with _autocast(device, dtype):
                logits, _ = split_outputs(model(x))
            yield logits.float(), y
    finally:
        model.train(was_training)


def _eval_model(model, averaged: bool) -> nn.Module:
    """The network to evaluate: a Trainer's or a trained model's averaged weights when present."""
    if isinstance(model, Trainer):
        return model.eval_model if averaged else model.model
    ema = model.__dict__.get("averaged")
    return ema if (averaged and ema is not None) else model


def _sharded_eval_loader(loader, distributed: bool | None):
    """Under DDP with more than one rank: the loader with a :class:`ShardSampler` (each sample
    on exactly one rank, no padding), and True; else the loader unchanged, and False."""
    rank, world = dist_info()
    use = world > 1 if distributed is None else bool(distributed)
    if not use or world == 1:
        return loader, False
    if not isinstance(getattr(loader, "sampler", None), ShardSampler):
        loader = rebuild_loader(loader, sampler=ShardSampler(loader.dataset, world, rank))
    return loader, True


def evaluate(model: nn.Module, loader: Iterable, *, device=None, precision: str = "auto",
             averaged: bool = True, distributed: bool | None = None) -> dict:
    """``{'loss', 'top1', 'top5'}`` of ``model`` in eval mode over ``loader``.

    loss is the plain cross-entropy (negative log-likelihood, no smoothing); top1/top5 are
    fractions in [0, 1] (top5 = top-k with k = min(5, classes)).

    model: a network or a :class:`Trainer`. After training with ``ema_decay`` the averaged
        weights are evaluated (``model.averaged``, the papers' running average); pass
        ``averaged=False`` for the raw ones.
    distributed: inside a process group of several ranks (default: whenever one is
        initialised) every rank evaluates its own share (rank, rank + world, ...: each sample
        once, unlike ``DistributedSampler``, which pads) and the sums are all-reduced, so every
        rank returns the result of the whole set. Every rank must call it.
    """
    model = _eval_model(model, averaged)
    loader, sharded = _sharded_eval_loader(loader, distributed)
    dev = torch.device(device) if device is not None else _model_device(model)
    loss_sum = torch.zeros((), dtype=torch.float64)
    top1 = top5 = n = 0
    for logits, y in _eval_batches(model, loader, dev, precision):
        loss_sum += F.cross_entropy(logits, y, reduction="sum").cpu().double()  # MPS has no float64
        k = min(5, logits.shape[1])
        hits = logits.topk(k, dim=1).indices == y.unsqueeze(1)          # N x k
        top1 += int(hits[:, 0].sum())
        top5 += int(hits.any(dim=1).sum())
        n += y.numel()
    if sharded:  # nccl reduces device tensors only; float64 keeps the counts exact
        sums = torch.tensor([float(loss_sum), top1, top5, n], dtype=torch.float64,
                            device=dev if dev.type == "cuda" else "cpu")
        loss_sum, top1, top5, n = _all_reduce_sum(sums).cpu().tolist()
        top1, top5, n = int(top1), int(top5), int(n)
    if n == 0:
        raise ValueError("evaluate got an empty loader")
    return {"loss": float(loss_sum) / n, "top1": top1 / n, "top5": top5 / n}


def predict_proba(model: nn.Module, loader: Iterable, *, device=None, precision: str = "auto") -> Predictions:
    """Softmax probabilities and labels of a whole loader (for reliability diagrams), of the
    averaged weights when the model has them (as :func:`evaluate`); one process's loader."""
    model = _eval_model(model, True)
    probs, targets = [], []
    for logits, y in _eval_batches(model, loader, device, precision):
        probs.append(logits.softmax(dim=1).cpu())
        targets.append(y.cpu())
    if not probs:
        raise ValueError("predict_proba got an empty loader")
    return Predictions(torch.cat(probs), torch.cat(targets))


# -- training -------------------------------------------------------------------------------
class Trainer:
    """Train one model with one recipe; checkpoint every epoch; resume exactly.

    ``Trainer(model, 'fast', lr=1e-3).fit(train_loader, val_loader, epochs=5)``

    model_name / model_kwargs: what ``create_model`` needs to rebuild the network; stored in
        the checkpoint and checked on resume (default: what ``create_model`` recorded on the
        model, else ``model.name`` or the class name).
    seed: at the start of a fresh fit, seed Python, numpy, torch and the train loader's
        shuffle generator (None: leave them as they are). Rank r of a process group uses
        seed + r for its dropout and augmentation (its shard order comes from the sampler).
    checkpoint: a path; the trainer writes it (atomically) after every epoch (rank 0 only).
    best_checkpoint: a path for the checkpoint of the epoch with the best validation top-1
        (of the averaged weights when ``ema_decay`` is set).
    save_every_steps: also write ``checkpoint`` every that many optimizer steps, so an epoch
        of hours can be resumed from the middle (exactly: the skipped batches are not read).
    precision: 'auto' (bf16 autocast on CUDA, fp32 elsewhere), 'bf16', 'fp16' or 'fp32'.
    sync_bn: under DDP, convert BatchNorm to SyncBatchNorm (statistics over the global batch;
        CUDA only, as torch's SyncBatchNorm).
    deterministic: on the CPU, run with ``torch.use_deterministic_algorithms`` during fit.
    on_epoch_end: called with (trainer, history row) after each epoch, on rank 0 only (the
        CLI prints and writes its metrics there).
    **overrides: recipe fields (lr, weight_decay, label_smoothing, aux_weight, epochs,
        ema_decay, accum_steps, ...).
    """

    def __init__(self, model: nn.Module, recipe: str | Recipe = "fast", *, device=None,
                 precision: str = "auto", compile: bool = False, seed: int | None = 0,
                 checkpoint: str | Path | None = None, best_checkpoint: str | Path | None = None,
                 save_every_steps: int | None = None, model_name: str | None = None,
                 model_kwargs: dict | None = None, progress: bool | None = None,
                 deterministic: bool = True, sync_bn: bool = False,
                 on_epoch_end: Callable[["Trainer", dict], None] | None = None, **overrides):
        from torch.optim.swa_utils import AveragedModel

        self.recipe = get_recipe(recipe, **overrides)
        self.rank, self.world_size = dist_info()
        self.is_main = self.rank == 0
        if device is None and self.world_size > 1 and torch.cuda.is_available():
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = pick_device(device)
        self.precision = precision
        self.amp_dtype = _autocast_dtype(self.device, precision)
        self.channels_last = self.device.type == "cuda"
        self.seed = seed
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.best_checkpoint = Path(best_checkpoint) if best_checkpoint is not None else None
        if save_every_steps is not None and save_every_steps < 1:
            raise ValueError(f"save_every_steps must be at least 1; got {save_every_steps}")
        if save_every_steps and self.checkpoint is None:
            raise ValueError("save_every_steps writes the checkpoint: pass checkpoint=PATH too")
        self.save_every_steps = save_every_steps
        # What create_model needs to rebuild the network (it records that on the models it
        # builds); for other modules, the class name and, if known, the number of classes.
        built_name, built_kwargs = getattr(model, "create_args", (None, None))
        if built_kwargs is None:
            built_kwargs = {"num_classes": model.num_classes} if hasattr(model, "num_classes") else {}
        self.model_name = model_name or built_name or getattr(model, "name", None) or type(model).__name__
        self.model_kwargs = dict(model_kwargs if model_kwargs is not None else built_kwargs)
        self.progress = _progress_enabled(progress) and self.is_main
        self.deterministic = deterministic
        self.on_epoch_end = on_epoch_end

        model.__dict__.pop("averaged", None)      # a previous run's average: not copied below
        self._init_fresh = bool(self.recipe.init)   # applied in fit() when training starts fresh
        # Heads that are not in the loss get no gradient. Under DDP that matters: a parameter
        # without a gradient would leave its all-reduce bucket waiting forever. We freeze them
        # (DDP syncs only parameters that require grad) instead of find_unused_parameters=True,
        # which would walk the autograd graph after every backward to discover the same thing.
        if not self.recipe.aux_weight:
            for head in _aux_modules(model):
                head.requires_grad_(False)
        if sync_bn and self.world_size > 1:
            if self.device.type != "cuda":
                raise ValueError("--sync-bn needs CUDA GPUs (torch's SyncBatchNorm runs on GPUs "
                                 "only); drop it on the CPU")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ddp = None
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DDP(self.model, device_ids=ids)
        # The compiled module shares parameters with self.model; checkpoints use self.model.
        wrapped = self.ddp if self.ddp is not None else self.model
        self.step_model = torch.compile(wrapped) if compile else wrapped
        self.optimizer = build_optimizer(self.model, self.recipe)
        self.scaler = (torch.amp.GradScaler(self.device.type)
                       if self.amp_dtype == torch.float16 else None)
        # The papers' running average of the weights (GoogLeNet's Polyak averaging; Rethinking
        # Sec. 8), of parameters and buffers (BatchNorm statistics) alike, updated after every
        # optimizer step. Every rank holds the same one (the parameters are the same after the
        # all-reduce; buffers are taken from rank 0 before evaluating and saving).
        self.ema = None
        if self.recipe.ema_decay:
            self.ema = AveragedModel(self.model, multi_avg_fn=ema_with_warmup(self.recipe.ema_decay),
                                     use_buffers=True)
            self.model.__dict__["averaged"] = self.ema   # not a submodule: not in state_dict
        self.scheduler = None
        self.planned_epochs = self.recipe.epochs
        self.steps_per_epoch = None
        self.epoch = 0          # epochs finished
        self.step_in_epoch = 0  # batches of the current epoch done (a step checkpoint)
        self.best_top1 = None
        self.history = History()
        self._partial = None    # the current epoch's sums, from a step checkpoint
        self._epoch_start = None

    @property
    def eval_model(self) -> nn.Module:
        """The weights evaluation uses: the averaged ones when ``ema_decay`` is set."""
        return self.ema if self.ema is not None else self.model

    def evaluate(self, loader, **kw) -> dict:
        """:func:`evaluate` of :attr:`eval_model` (summed over the ranks under DDP)."""
        return evaluate(self.eval_model, loader, device=self.device, precision=self.precision, **kw)

    # -- state ------------------------------------------------------------------------------
    def _gather(self, obj):
        """Every rank's ``obj``, in rank order (a list of one without a process group)."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def _rng(self, train_loader) -> dict:
        gen = getattr(train_loader, "generator", None)
        return {**rng_state(gen), "epoch_start": self._epoch_start}

    def state_dict(self, train_loader=None, rngs: list | None = None, partial: dict | None = None) -> dict:
        rngs = rngs if rngs is not None else [self._rng(train_loader)]
        r = self.recipe
        return {
            "model_name": self.model_name,
            "model_kwargs": self.model_kwargs,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "recipe": r.to_dict(),
            "epochs": self.planned_epochs,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "partial": partial,
            "steps_per_epoch": self.steps_per_epoch,
            # The run's scale: per-process batch x processes x accumulation = the batch one
            # optimizer step sees (what a paper calls its batch size).
            "world_size": self.world_size,
            "global_batch": r.batch_size * self.world_size * r.accum_steps,
            "best_top1": self.best_top1,
            "seed": self.seed,
            "history": [dict(row) for row in self.history],
            "rng": rngs[0],
            "rng_ranks": rngs,
            "torch_version": str(torch.__version__),
        }

    def _sync_buffers(self) -> None:
        if self.world_size > 1:
            _broadcast_buffers(self.model)
            if self.ema is not None:
                _broadcast_buffers(self.ema)

    def save(self, path: str | Path, train_loader=None, partial: dict | None = None) -> Path | None:
        """Write a checkpoint (atomically, rank 0 only; every rank must call it under DDP);
        pass the train loader to keep its shuffle state."""
        rngs = self._gather(self._rng(train_loader))
        self._sync_buffers()
        if not self.is_main:
            return None
        return save_checkpoint(path, self.state_dict(train_loader, rngs, partial))

    def _restore(self, path: str | Path, train_loader) -> None:
        ckpt = load_checkpoint(path, model_name=self.model_name, map_location=self.device)
        held = ckpt.get("model_kwargs") or {}
        differ = sorted(k for k in set(held) & set(self.model_kwargs) if held[k] != self.model_kwargs[k])
        if differ:
            raise CheckpointError(
                f"{path} holds {self.model_name} built with "
                f"{', '.join(f'{k}={held[k]!r}' for k in differ)}; this model has "
                f"{', '.join(f'{k}={self.model_kwargs[k]!r}' for k in differ)}: build the model "
                f"with the checkpoint's options or start fresh without resume")
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as err:  # missing/unexpected keys or other shapes: another network
            first = str(err).splitlines()[0]
            raise CheckpointError(f"{path} does not fit this model ({first}): build the network "
                                  f"the checkpoint was trained with, or start fresh without "
                                  f"resume") from err
        if (ckpt.get("ema") is not None) != (self.ema is not None):
            raise CheckpointError(f"{path} was trained {'with' if ckpt.get('ema') is not None else 'without'} "
                                  f"weight averaging (ema_decay) and this run is "
                                  f"{'with' if self.ema is not None else 'without'}: use the "
                                  f"checkpoint's recipe or start fresh without resume")
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])
        step = int(ckpt.get("step_in_epoch") or 0)
        old_world = int(ckpt.get("world_size") or 1)
        if step and old_world != self.world_size:
            raise CheckpointError(f"{path} was written in the middle of an epoch by {old_world} "
                                  f"process(es); a mid-epoch checkpoint resumes only with the same "
                                  f"number ({old_world}, since each one's shard is cut there): resume "
                                  f"with that many, or from an end-of-epoch checkpoint")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
            old_steps = ckpt.get("steps_per_epoch")
            if old_steps and old_steps != self.steps_per_epoch and self.scheduler.per_batch:
                # Another world size (or batch): the epochs done stay done, on the new count.
                self.scheduler.last_epoch = int(ckpt["epoch"]) * self.steps_per_epoch
                sync_lr(self.scheduler)
            elif ckpt.get("epochs") != self.planned_epochs:
                sync_lr(self.scheduler)   # a longer/shorter plan: continue on the new curve
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch = int(ckpt["epoch"])
        self.step_in_epoch = step
        self._partial = ckpt.get("partial")
        self.best_top1 = ckpt.get("best_top1")
        self.history = History([dict(r) for r in ckpt["history"]])
        rngs = ckpt.get("rng_ranks") or [ckpt["rng"]]
        gen = getattr(train_loader, "generator", None)
        if self.rank < len(rngs):
            set_rng_state(rngs[self.rank], gen)
            self._epoch_start = rngs[self.rank].get("epoch_start")
        else:  # more processes than wrote the checkpoint: a seed of their own, fixed by epoch
            seed_everything((self.seed or 0) + self.rank + 1000 * self.epoch)
            if gen is not None:
                gen.manual_seed((self.seed or 0) + self.rank + 1000 * self.epoch)

    def _plan(self, epochs: int, steps_per_epoch: int) -> None:
        """Build the schedule for ``epochs`` (keeping the step count when re-planning)."""
        old = self.scheduler
        if old is not None and epochs == self.planned_epochs:
            return
        state = old.state_dict() if old is not None else None
        self.scheduler = build_scheduler(self.optimizer, self.recipe, steps_per_epoch, epochs)
        if state is not None:
            self.scheduler.load_state_dict(state)
            sync_lr(self.scheduler)
        self.planned_epochs = epochs

    def _shard(self, train_loader):
        """Each rank's part of the training set: a DistributedSampler (shuffled, reseeded per
        epoch, the incomplete tail dropped as the loader drops its last batch)."""
        from torch.utils.data.distributed import DistributedSampler

        if self.world_size == 1 or isinstance(getattr(train_loader, "sampler", None), DistributedSampler):
            return train_loader
        if getattr(train_loader, "batch_size", None) is None:
            raise ValueError("under DDP the trainer shards the training loader itself: build it "
                             "with batch_size=... (not a custom batch_sampler)")
        sampler = DistributedSampler(train_loader.dataset, num_replicas=self.world_size,
                                     rank=self.rank, shuffle=True, seed=self.seed or 0,
                                     drop_last=True)
        return rebuild_loader(train_loader, sampler=sampler)

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, train_loader, val_loader=None, *, epochs: int | None = None,
            stop_after: int | None = None, resume: str | Path | None = None) -> History:
        """Train until ``epochs`` are done (default: the recipe's) and return the history.

        stop_after: end this call after that epoch even though the schedule plans for
            ``epochs`` (continue later with ``fit(..., resume=checkpoint)`` or another fit).
        resume: a checkpoint path to continue from (model, averaged weights, optimizer,
            schedule, history, RNGs; mid-epoch for a step checkpoint). It may come from a run
            with another number of processes (at an epoch's end).
        """
        epochs = epochs or self.recipe.epochs
        train_loader = self._shard(train_loader)
        batches = len(train_loader)
        if batches == 0:
            n = len(getattr(train_loader, "dataset", ()))
            raise ValueError(f"the training loader is empty: {n} images per process cannot make "
                             f"one full batch of {getattr(train_loader, 'batch_size', '?')} (the "
                             f"incomplete last batch is dropped): lower the batch size")
        k = self.recipe.accum_steps
        steps = math.ceil(batches / k)              # optimizer steps per epoch
        self.steps_per_epoch = steps
        if self.scheduler is None:
            self.scheduler = build_scheduler(self.optimizer, self.recipe, steps, epochs)
            self.planned_epochs = epochs
        else:
            self._plan(epochs, steps)
        if resume is not None:
            self._restore(resume, train_loader)
        elif self.epoch == 0 and self.step_in_epoch == 0 and self.seed is not None:
            seed_everything(self.seed + self.rank)
            gen = getattr(train_loader, "generator", None)
            if gen is not None:
                gen.manual_seed(self.seed + self.rank)
            if self._init_fresh:
                initialize(self.model, self.recipe.init)
                if self.ddp is not None:      # the same start on every rank
                    import torch.distributed as dist
                    for p in self.model.parameters():
                        dist.broadcast(p.data, src=0)
                if self.ema is not None:
                    self.ema.n_averaged.zero_()
                self._init_fresh = False
        last = min(epochs, stop_after) if stop_after is not None else epochs

        deterministic = self.deterministic and self.device.type == "cpu"
        previous = torch.are_deterministic_algorithms_enabled()
        if deterministic:
            torch.use_deterministic_algorithms(True)
        try:
            from tqdm import tqdm

            bar = tqdm(range(self.epoch, last), desc="epochs", unit="epoch", initial=self.epoch,
                       total=last, disable=not self.progress, leave=True)
            for _ in bar:
                row = self._train_epoch(train_loader, batches)
                if val_loader is not None:
                    self._sync_buffers()
                    val = evaluate(self.model, val_loader, device=self.device,
                                   precision=self.precision, averaged=False)
                    row.update(val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"])
                    if self.ema is not None:
                        ema = evaluate(self.ema, val_loader, device=self.device, precision=self.precision)
                        row.update(ema_val_loss=ema["loss"], ema_val_top1=ema["top1"],
                                   ema_val_top5=ema["top5"])
                self.epoch += 1
                self.step_in_epoch = 0
                row = {"epoch": self.epoch, **row}
                self.history.append(row)
                score = row.get("ema_val_top1", row.get("val_top1"))
                improved = score is not None and (self.best_top1 is None or score > self.best_top1)
                if improved:
                    self.best_top1 = score
                if self.checkpoint is not None:
                    self.save(self.checkpoint, train_loader)
                if improved and self.best_checkpoint is not None:
                    self.save(self.best_checkpoint, train_loader)
                bar.set_postfix({k: round(v, 4) for k, v in row.items()
                                 if k in ("train_loss", "val_loss", "val_top1")})
                if self.on_epoch_end is not None and self.is_main:
                    self.on_epoch_end(self, row)
        finally:
            if deterministic:
                torch.use_deterministic_algorithms(previous)
        return self.history

    def _forward_backward(self, x, y, scale: float, sync: bool):
        """One micro-batch: forward, loss, backward of loss * scale (1/K when accumulating).
        Under DDP, a micro-batch that does not end a step skips the all-reduce (no_sync)."""
        r = self.recipe
        ctx = self.ddp.no_sync() if (self.ddp is not None and not sync) else contextlib.nullcontext()
        with ctx:
            with _autocast(self.device, self.amp_dtype):
                output = self.step_model(x)
            loss, logits = inception_loss(output, y, label_smoothing=r.label_smoothing,
                                          aux_weight=r.aux_weight)
            scaled = loss * scale if scale != 1 else loss
            if self.scaler is not None:
                self.scaler.scale(scaled).backward()
            else:
                scaled.backward()
        return loss, logits

    def _optimizer_step(self) -> None:
        r, opt = self.recipe, self.optimizer
        if self.scaler is not None:
            if r.clip_grad_norm:
                self.scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(self.model.parameters(), r.clip_grad_norm)
            self.scaler.step(opt)
            self.scaler.update()
        else:
            if r.clip_grad_norm:
                nn.utils.clip_grad_norm_(self.model.parameters(), r.clip_grad_norm)
            opt.step()
        opt.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def _train_epoch(self, loader, batches: int) -> dict:
        from tqdm import tqdm

        opt, sched, k = self.optimizer, self.scheduler, self.recipe.accum_steps
        self.model.train()
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)             # a new shuffle of the shards every epoch
        gen = getattr(loader, "generator", None)
        skip = self.step_in_epoch
        if skip:
            # A step checkpoint: replay the epoch's shuffle from its start, leave out the
            # batches already trained on (not read), then continue with the saved RNGs.
            if gen is not None and self._epoch_start is not None:
                gen.set_state(self._epoch_start.cpu())
            it_loader = rebuild_loader(loader, batch_sampler=SkipBatches(loader.batch_sampler, skip))
        else:
            self._epoch_start = gen.get_state() if gen is not None else None
            it_loader = loader
        # On an accelerator, reading the loss back every batch stalls the queue: check for
        # NaN/inf every `every` batches instead (the model then may already hold NaNs, but no
        # checkpoint has been written since the last good epoch).
        every = 1 if self.device.type == "cpu" else 25
        part = self._partial or {}
        loss_sum = torch.tensor(float(part.get("loss_sum", 0.0)), device=self.device)
        correct = torch.tensor(int(part.get("correct", 0)), device=self.device, dtype=torch.long)
        bad_since = torch.zeros((), device=self.device, dtype=torch.bool)
        seen, checked = int(part.get("seen", 0)), skip
        lr = part.get("lr", opt.param_groups[0]["lr"])
        before = float(part.get("seconds", 0.0))
        self._partial = None
        start = time.perf_counter()
        bar = tqdm(it_loader, desc=f"epoch {self.epoch + 1}", unit="batch", total=batches,
                   initial=skip, disable=not self.progress, leave=False)
        opt.zero_grad(set_to_none=True)
        for i, (x, y) in enumerate(bar, start=skip):
            x, y = _to_device(x, self.device, self.channels_last), _to_device(y, self.device, False)
            group_start = (i // k) * k
            group = min(k, batches - group_start)      # the last group of an epoch may be short
            ends_step = i + 1 == group_start + group
            loss, logits = self._forward_backward(x, y, 1.0 / group, sync=ends_step)
            bad_since |= ~torch.isfinite(loss.detach())
            if (i + 1) % every == 0 or i + 1 == batches:
                bad = bad_since.clone()
                if self.world_size > 1:  # every rank stops together, or the others would hang
                    bad = _all_reduce_sum(bad.to(torch.int32)).bool()
                if bool(bad):
                    self._diverged(checked, i, batches, float(loss.detach()))
                checked = i + 1
            n = y.shape[0]
            loss_sum += loss.detach().float() * n
            correct += (logits.detach().argmax(1) == y).sum()
            seen += n
            if ends_step:
                lr = opt.param_groups[0]["lr"]
                self._optimizer_step()
                if sched.per_batch:
                    sched.step()
                done = i + 1
                step_no = self.epoch * self.steps_per_epoch + done // k + (done % k > 0)
                if (self.save_every_steps and step_no % self.save_every_steps == 0
                        and done < batches):
                    self.step_in_epoch = done
                    partial = {"loss_sum": float(loss_sum), "correct": int(correct), "seen": seen,
                               "lr": lr, "seconds": before + time.perf_counter() - start}
                    self.save(self.checkpoint, loader, partial=partial)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = before + time.perf_counter() - start
        if not sched.per_batch:
            sched.step()
        # Each rank saw its shard; the epoch's training numbers are over all of them.
        sums = torch.tensor([float(loss_sum), float(correct), float(seen)], dtype=torch.float64)
        if self.world_size > 1:
            sums = _all_reduce_sum(sums.to(self.device)).cpu()
        total_loss, total_correct, total_seen = sums.tolist()
        return {"train_loss": total_loss / total_seen, "train_top1": total_correct / total_seen,
                "lr": lr, "images_per_s": total_seen / seconds, "seconds": seconds}

    def _diverged(self, first: int, last: int, steps: int, value: float):
        where = (f"batch {last + 1}" if first == last else f"batches {first + 1}-{last + 1}")
        kept = ""
        if self.checkpoint is not None and self.checkpoint.exists():
            kept = (f" The last good checkpoint, {self.checkpoint} (after epoch {self.epoch}), "
                    f"is unchanged.")
        raise NonFiniteLossError(
            f"the loss became {value if not math.isfinite(value) else 'NaN/inf'} in epoch "
            f"{self.epoch + 1}, {where} of {steps} (lr={self.optimizer.param_groups[0]['lr']:.3g}). "
            f"Lower the learning rate (lr=..., --lr) or clip gradients (clip_grad_norm=..., "
            f"e.g. 2.0 as the 'rethinking' recipe does).{kept}")


def fit(model: nn.Module, train_loader, val_loader=None, *, recipe: str | Recipe = "fast",
        epochs: int | None = None, **kwargs) -> History:
    """One call: ``fit(model, loaders.train, loaders.val, recipe='fast', epochs=3, lr=1e-3)``.

    Keyword arguments go to :class:`Trainer` (device, seed, checkpoint, progress, recipe
    field overrides, ...). Returns the :class:`History`; the model is trained in place.
    """
    resume = kwargs.pop("resume", None)
    stop_after = kwargs.pop("stop_after", None)
    trainer = Trainer(model, recipe, **kwargs)
    return trainer.fit(train_loader, val_loader, epochs=epochs, stop_after=stop_after, resume=resume)
