"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts -- nothing that needs
unpickling arbitrary classes -- so loading one cannot run code:

    format, version          "inception_edu.checkpoint", 1
    model_name, model_kwargs what to pass to create_model to rebuild the network
    model                    the model's state_dict
    optimizer, scheduler     their state_dicts; scaler: GradScaler's (fp16 only) or None
    recipe                   the Recipe's fields; epochs: the plan; epoch: epochs done
    history                  one dict per finished epoch
    rng                      torch CPU (+ CUDA), numpy, Python random, the train loader's generator

It is written to a temporary file in the same folder and moved over the old one with
``os.replace`` (atomic on POSIX and Windows), so a crash mid-write leaves the previous
checkpoint whole.
"""
from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

FORMAT, VERSION = "inception_edu.checkpoint", 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, not ours, or of another model."""


# -- random number generators ---------------------------------------------------------------
def rng_state(generator: torch.Generator | None = None) -> dict:
    """Every RNG a training step reads, as tensors/lists/ints (weights_only-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "loader": generator.get_state() if generator is not None else None,
    }
    return state


def set_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    # RNG states must be CPU byte tensors, whatever map_location the checkpoint was read with.
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if generator is not None and state.get("loader") is not None:
        generator.set_state(state["loader"].cpu())


def seed_everything(seed: int) -> None:
    """Seed Python's random, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- files ----------------------------------------------------------------------------------
def atomic_write(path: str | Path, write) -> Path:
    """Call ``write(file_object)`` on a temp file beside ``path``, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` (a dict as described in the module docstring) atomically."""
    state = {"format": FORMAT, "version": VERSION, **state}
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, *, model_name: str | None = None,
                    model_kwargs: dict | None = None, map_location="cpu") -> dict:
    """Read and check a checkpoint; raise :class:`CheckpointError` saying what to do.

    With ``model_name`` (and ``model_kwargs``), also check that the checkpoint holds that
    network, so a resumed run cannot silently load the wrong one.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train without --resume first, or pass "
                              f"the path of an existing last.pt")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut-off one has no directory
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt: not a "
                              f"complete PyTorch file). Delete it and train again without --resume.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"{path} holds objects that safe loading (weights_only=True) refuses; "
                              f"it was not written by inception_edu: {str(err).splitlines()[0]}") from err
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt: "
                              f"{str(err).splitlines()[0] if str(err) else type(err).__name__}). "
                              f"Delete it and train again without --resume.") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        keys = sorted(ckpt)[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is a PyTorch file but not an inception_edu checkpoint "
                              f"(it holds {keys}). For bare weights use "
                              f"model.load_state_dict(torch.load(path, weights_only=True)).")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer inception_edu (checkpoint version "
                              f"{ckpt['version']} > {VERSION}): upgrade inception_edu")
    if model_name is not None and ckpt.get("model_name") != model_name:
        raise CheckpointError(f"this checkpoint holds {ckpt.get('model_name')}; you asked for "
                              f"{model_name}: pass --model {ckpt.get('model_name')} or start fresh "
                              f"without --resume")
    if model_kwargs is not None and ckpt.get("model_kwargs", {}) != model_kwargs:
        raise CheckpointError(f"this checkpoint holds {ckpt.get('model_name')} built with "
                              f"{ckpt.get('model_kwargs')}; you asked for {model_kwargs}: pass the "
                              f"same options or start fresh without --resume")
    return ckpt


def load_model(path: str | Path, map_location="cpu"):
    """Rebuild the network a checkpoint holds (via ``create_model``) with its trained weights."""
    from ..registry import create_model, list_models

    ckpt = load_checkpoint(path, map_location=map_location)
    if ckpt["model_name"] not in list_models():
        raise CheckpointError(f"{path} holds {ckpt['model_name']!r}, which is not a registered "
                              f"model: build it yourself and load_state_dict(ckpt['model']) with "
                              f"ckpt = load_checkpoint(path)")
    model = create_model(ckpt["model_name"], **ckpt.get("model_kwargs", {}))
    model.load_state_dict(ckpt["model"])
    return model.eval()
