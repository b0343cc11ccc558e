"""The training loop: one :class:`Trainer`, plus :func:`fit`, :func:`evaluate`, :func:`predict_proba`.

On CUDA a step runs in bf16 autocast with channels_last tensors (optionally ``torch.compile``d),
reading from pinned memory with non-blocking copies. On the CPU it runs in fp32 with
deterministic algorithms and seeded RNGs, so a run repeats exactly and a resumed run matches an
uninterrupted one loss for loss.
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
from .losses import inception_loss, split_outputs
from .recipes import Recipe, build_optimizer, build_scheduler, get_recipe, sync_lr


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


def evaluate(model: nn.Module, loader: Iterable, *, device=None, precision: str = "auto") -> dict:
    """``{'loss', 'top1', 'top5'}`` of ``model`` in eval mode over ``loader``.

    loss is the plain cross-entropy (negative log-likelihood, no smoothing); top1/top5 are
    fractions in [0, 1] (top5 = top-k with k = min(5, classes)).
    """
    loss_sum = torch.zeros((), dtype=torch.float64)
    top1 = top5 = n = 0
    for logits, y in _eval_batches(model, loader, device, precision):
        loss_sum += F.cross_entropy(logits, y, reduction="sum").cpu().double()  # MPS has no float64
        k = min(5, logits.shape[1])
        hits = logits.topk(k, dim=1).indices == y.unsqueeze(1)          # N x k
        top1 += int(hits[:, 0].sum())
        top5 += int(hits.any(dim=1).sum())
        n += y.numel()
    if n == 0:
        raise ValueError("evaluate got an empty loader")
    return {"loss": float(loss_sum) / n, "top1": top1 / n, "top5": top5 / n}


def predict_proba(model: nn.Module, loader: Iterable, *, device=None, precision: str = "auto") -> Predictions:
    """Softmax probabilities and labels of a whole loader (for reliability diagrams)."""
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
        shuffle generator (None: leave them as they are).
    checkpoint: a path; the trainer writes it (atomically) after every epoch.
    precision: 'auto' (bf16 autocast on CUDA, fp32 elsewhere), 'bf16', 'fp16' or 'fp32'.
    deterministic: on the CPU, run with ``torch.use_deterministic_algorithms`` during fit.
    on_epoch_end: called with (trainer, history row) after each epoch (the CLI prints there).
    **overrides: recipe fields (lr, weight_decay, label_smoothing, aux_weight, epochs, ...).
    """

    def __init__(self, model: nn.Module, recipe: str | Recipe = "fast", *, device=None,
                 precision: str = "auto", compile: bool = False, seed: int | None = 0,
                 checkpoint: str | Path | None = None, model_name: str | None = None,
                 model_kwargs: dict | None = None, progress: bool | None = None,
                 deterministic: bool = True,
                 on_epoch_end: Callable[["Trainer", dict], None] | None = None, **overrides):
        self.recipe = get_recipe(recipe, **overrides)
        self.device = pick_device(device)
        self.precision = precision
        self.amp_dtype = _autocast_dtype(self.device, precision)
        self.channels_last = self.device.type == "cuda"
        self.seed = seed
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        # What create_model needs to rebuild the network (it records that on the models it
        # builds); for other modules, the class name and, if known, the number of classes.
        built_name, built_kwargs = getattr(model, "create_args", (None, None))
        if built_kwargs is None:
            built_kwargs = {"num_classes": model.num_classes} if hasattr(model, "num_classes") else {}
        self.model_name = model_name or built_name or getattr(model, "name", None) or type(model).__name__
        self.model_kwargs = dict(model_kwargs if model_kwargs is not None else built_kwargs)
        self.progress = _progress_enabled(progress)
        self.deterministic = deterministic
        self.on_epoch_end = on_epoch_end

        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # The compiled module shares parameters with self.model; checkpoints use self.model.
        self.step_model = torch.compile(self.model) if compile else self.model
        self.optimizer = build_optimizer(self.model, self.recipe)
        self.scaler = (torch.amp.GradScaler(self.device.type)
                       if self.amp_dtype == torch.float16 else None)
        self.scheduler = None
        self.planned_epochs = self.recipe.epochs
        self.epoch = 0          # epochs finished
        self.history = History()

    # -- state ------------------------------------------------------------------------------
    def state_dict(self, train_loader=None) -> dict:
        return {
            "model_name": self.model_name,
            "model_kwargs": self.model_kwargs,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "recipe": self.recipe.to_dict(),
            "epochs": self.planned_epochs,
            "epoch": self.epoch,
            "seed": self.seed,
            "history": [dict(r) for r in self.history],
            "rng": rng_state(getattr(train_loader, "generator", None)),
            "torch_version": str(torch.__version__),
        }

    def save(self, path: str | Path, train_loader=None) -> Path:
        """Write a checkpoint (atomically); pass the train loader to keep its shuffle state."""
        return save_checkpoint(path, self.state_dict(train_loader))

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
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if ckpt.get("epochs") != self.planned_epochs:
                sync_lr(self.scheduler)   # a longer/shorter plan: continue on the new curve
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch = int(ckpt["epoch"])
        self.history = History([dict(r) for r in ckpt["history"]])
        set_rng_state(ckpt["rng"], getattr(train_loader, "generator", None))

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

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, train_loader, val_loader=None, *, epochs: int | None = None,
            stop_after: int | None = None, resume: str | Path | None = None) -> History:
        """Train until ``epochs`` are done (default: the recipe's) and return the history.

        stop_after: end this call after that epoch even though the schedule plans for
            ``epochs`` (continue later with ``fit(..., resume=checkpoint)`` or another fit).
        resume: a checkpoint path to continue from (model, optimizer, schedule, history, RNGs).
        """
        epochs = epochs or self.recipe.epochs
        steps = len(train_loader)
        if steps == 0:
            raise ValueError("the training loader is empty")
        if self.scheduler is None:
            self.scheduler = build_scheduler(self.optimizer, self.recipe, steps, epochs)
            self.planned_epochs = epochs
        else:
            self._plan(epochs, steps)
        if resume is not None:
            self._restore(resume, train_loader)
        elif self.epoch == 0 and self.seed is not None:
            seed_everything(self.seed)
            gen = getattr(train_loader, "generator", None)
            if gen is not None:
                gen.manual_seed(self.seed)
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
                row = self._train_epoch(train_loader, steps)
                if val_loader is not None:
                    val = evaluate(self.model, val_loader, device=self.device,
                                   precision=self.precision)
                    row.update(val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"])
                self.epoch += 1
                row = {"epoch": self.epoch, **row}
                self.history.append(row)
                if self.checkpoint is not None:
                    self.save(self.checkpoint, train_loader)
                bar.set_postfix({k: round(v, 4) for k, v in row.items()
                                 if k in ("train_loss", "val_loss", "val_top1")})
                if self.on_epoch_end is not None:
                    self.on_epoch_end(self, row)
        finally:
            if deterministic:
                torch.use_deterministic_algorithms(previous)
        return self.history

    def _train_epoch(self, loader, steps: int) -> dict:
        from tqdm import tqdm

        model, opt, sched, r = self.step_model, self.optimizer, self.scheduler, self.recipe
        self.model.train()
        # On an accelerator, reading the loss back every batch stalls the queue: check for
        # NaN/inf every `every` batches instead (the model then may already hold NaNs, but no
        # checkpoint has been written since the last good epoch).
        every = 1 if self.device.type == "cpu" else 25
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        bad_since = torch.zeros((), device=self.device, dtype=torch.bool)
        seen, checked = 0, 0
        start = time.perf_counter()
        batches = tqdm(loader, desc=f"epoch {self.epoch + 1}", unit="batch", total=steps,
                       disable=not self.progress, leave=False)
        for i, (x, y) in enumerate(batches):
            x, y = _to_device(x, self.device, self.channels_last), _to_device(y, self.device, False)
            with _autocast(self.device, self.amp_dtype):
                output = model(x)
            loss, logits = inception_loss(output, y, label_smoothing=r.label_smoothing,
                                          aux_weight=r.aux_weight)
            bad_since |= ~torch.isfinite(loss.detach())
            if (i + 1) % every == 0 or i + 1 == steps:
                if bool(bad_since):
                    self._diverged(checked, i, steps, float(loss.detach()))
                checked = i + 1
            opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                if r.clip_grad_norm:
                    self.scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(self.model.parameters(), r.clip_grad_norm)
                self.scaler.step(opt)
                self.scaler.update()
            else:
                loss.backward()
                if r.clip_grad_norm:
                    nn.utils.clip_grad_norm_(self.model.parameters(), r.clip_grad_norm)
                opt.step()
            lr = opt.param_groups[0]["lr"]
            if sched.per_batch:
                sched.step()
            n = y.shape[0]
            loss_sum += loss.detach().float() * n
            correct += (logits.detach().argmax(1) == y).sum()
            seen += n
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if not sched.per_batch:
            sched.step()
        return {"train_loss": float(loss_sum) / seen, "train_top1": int(correct) / seen,
                "lr": lr, "images_per_s": seen / seconds, "seconds": seconds}

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
