"""Data for the chapters and the CLI: digits, cluttered digits, CIFAR-10, an image folder,
synthetic tensors.

Every source returns a :class:`Loaders` (train, val, test DataLoaders + the number of
classes). :func:`make_loaders` picks one by name:
``'digits' | 'cluttered' | 'cifar10' | 'synthetic' | PATH``.

* ``digits``: scikit-learn's 1,797 handwritten digits (8x8, ships with scikit-learn, no
  download), upsampled to 32x32, three channels -- small enough to train an Inception network
  on a laptop CPU in a minute.
* ``cluttered``: the same digits at several scales, at random places on a 32x32 canvas among
  fragments of other digits and noise (:mod:`inception_edu.train.cluttered`, after the
  cluttered MNIST of Jaderberg et al. 2015): hard enough that the chapters' variants differ.
* ``cifar10``: through torchvision (Colab has it).
* a folder: one subfolder per class (``PATH/cat/1.jpg``), read with Pillow. Training images
  get GoogLeNet's augmentation (Szegedy et al. 2014, Sec. 6: random crops of 8-100 % of the
  area with aspect ratio 3/4-4/3, resized, and flips), evaluation images a resize + centre
  crop at the model's ``crop_pct``; ``torchvision.transforms.v2`` when installed, plain torch
  and Pillow otherwise.
* ``synthetic``: random tensors for throughput measurements.

Training loaders drop the last incomplete batch (a batch of one cannot be normalized by a
BatchNorm on a 1x1 map, and a short batch would weigh its images more); evaluation loaders keep
every image.
"""
from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

# ImageNet's channel statistics (used for image folders, the usual choice for photos) and
# CIFAR-10's training-set ones: defined once, beside the published weights' preprocessing.
from ..pretrained import (CIFAR10_MEAN, CIFAR10_STD, DEFAULT_CROP_PCT, IMAGENET_MEAN,  # noqa: F401
                          IMAGENET_STD, eval_transform, transforms_v2)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class Loaders(NamedTuple):
    train: DataLoader
    val: DataLoader
    test: DataLoader
    #: Number of classes, for ``create_model(..., num_classes=loaders.num_classes)``.
    num_classes: int
    #: Class names in label order.
    classes: tuple[str, ...] = ()
    #: What ``test`` holds: ``'test'``, or ``'validation'`` where there is no separate test
    #: set (an image folder without ``test/``), so a result is never mislabelled "test".
    test_name: str = "test"


# -- splits and loaders ---------------------------------------------------------------------
def stratified_split(labels, fractions=(0.70, 0.15, 0.15), seed: int = 0) -> tuple[np.ndarray, ...]:
    """Indices of a fixed, seeded split that keeps each class's share in every part."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    train_f, val_f, test_f = fractions
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 3 else None  # too few per class to stratify
    rest_f = val_f + test_f
    train_idx, rest_idx = train_test_split(idx, test_size=rest_f, random_state=seed, stratify=stratify)
    rest_labels = labels[rest_idx] if stratify is not None else None
    if rest_labels is not None and np.unique(rest_labels, return_counts=True)[1].min() < 2:
        rest_labels = None
    val_idx, test_idx = train_test_split(rest_idx, test_size=test_f / rest_f, random_state=seed,
                                         stratify=rest_labels)
    return np.sort(train_idx), np.sort(val_idx), np.sort(test_idx)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker with base_seed + worker_id; numpy and random follow it.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def default_num_workers(local_world_size: int | None = None) -> int:
    """Decoding processes per training process: the usable cores shared among the local
    processes (torchrun's LOCAL_WORLD_SIZE), one left for the training loop, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    local = local_world_size or int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(8, cores // max(1, local) - 1))


def make_loader(dataset: Dataset, batch_size: int, *, train: bool, seed: int = 0,
                num_workers: int = 0, device: torch.device | str | None = None,
                prefetch_factor: int = 4) -> DataLoader:
    """A DataLoader with a seeded generator (shuffle order and worker seeds follow ``seed``).

    train: shuffle and drop the last incomplete batch. With workers, they persist across
    epochs (no re-spawn per epoch) and each keeps ``prefetch_factor`` batches ready; on CUDA
    batches come in pinned memory (for non-blocking copies).
    """
    pin = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    workers = dict(persistent_workers=True, prefetch_factor=prefetch_factor) if num_workers else {}
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train,
                      num_workers=num_workers, pin_memory=pin, worker_init_fn=_seed_worker,
                      generator=torch.Generator().manual_seed(seed), **workers)


def rebuild_loader(loader: DataLoader, **changes) -> DataLoader:
    """The same DataLoader (dataset, batch size, workers, generator, ...) with ``sampler=`` or
    ``batch_sampler=`` replaced: how the trainer shards a loader across processes."""
    kw = dict(num_workers=loader.num_workers, collate_fn=loader.collate_fn,
              pin_memory=loader.pin_memory, worker_init_fn=loader.worker_init_fn,
              generator=loader.generator, timeout=loader.timeout)
    if loader.num_workers:
        kw.update(persistent_workers=loader.persistent_workers,
                  prefetch_factor=loader.prefetch_factor)
    if "batch_sampler" not in changes:
        kw.update(batch_size=loader.batch_size, drop_last=loader.drop_last)
    kw.update(changes)
    return DataLoader(loader.dataset, **kw)


class ShardSampler(torch.utils.data.Sampler):
    """Indices ``rank, rank + world, rank + 2 world, ...``: each sample on exactly one process.

    For evaluation under DDP. ``DistributedSampler`` pads the last shard with repeated samples
    so every rank gets as many; summed over ranks those would count twice. Without padding the
    ranks may hold one batch more or less, which evaluation (no collective per batch) allows.
    """

    def __init__(self, dataset, num_replicas: int, rank: int):
        self.n, self.world, self.rank = len(dataset), num_replicas, rank

    def __iter__(self):
        return iter(range(self.rank, self.n, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))


class SkipBatches(torch.utils.data.Sampler):
    """A batch sampler that leaves out the first ``skip`` batches of another one (a step
    checkpoint resumed mid-epoch), without reading those images."""

    def __init__(self, batch_sampler, skip: int):
        self.batch_sampler, self.skip = batch_sampler, skip

    def __iter__(self):
        it = iter(self.batch_sampler)
        for _ in range(self.skip):
            next(it, None)
        yield from it

    def __len__(self) -> int:
        return max(0, len(self.batch_sampler) - self.skip)


class RandomShift(Dataset):
    """Light augmentation: zero-pad by ``pad`` pixels, crop back at a random offset (and flip).

    The crop offset comes from torch's global RNG (per worker when workers are used), so a
    seeded run is repeatable and a resumed run continues identically.
    """

    def __init__(self, base: Dataset, pad: int = 2, flip: bool = False):
        self.base, self.pad, self.flip = base, pad, flip

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]                                   # C x H x W
        if self.pad:
            h, w = x.shape[-2:]
            x = F.pad(x, (self.pad,) * 4)                     # C x (H+2p) x (W+2p)
            dy, dx = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
            x = x[:, dy:dy + h, dx:dx + w]
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, y


# -- digits ---------------------------------------------------------------------------------
def _digits_arrays(size: int, channels: int, seed: int):
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0   # N x 1 x 8 x 8, in [0, 1]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)  # N x 1 x S x S
    x = x.repeat(1, channels, 1, 1)                                            # N x C x S x S
    y = torch.tensor(bunch.target, dtype=torch.long)
    splits = stratified_split(bunch.target, seed=seed)
    train_idx = torch.as_tensor(splits[0])
    mean, std = x[train_idx].mean(), x[train_idx].std()   # statistics of the training part only
    x = (x - mean) / std
    return x, y, splits


def load_digits(split: str = "train", size: int = 32, *, channels: int = 3, seed: int = 0) -> TensorDataset:
    """One part of scikit-learn's digits as a ``TensorDataset`` of (C x size x size, label).

    The split is a fixed stratified 70 / 15 / 15 % (1,257 / 270 / 270 images with
    ``seed=0``); pixels are scaled to [0, 1], resized bilinearly and normalized with the
    training part's mean and standard deviation.
    """
    parts = ("train", "val", "test")
    if split not in parts:
        raise ValueError(f"split must be one of {parts}; got {split!r}")
    if size < 8:
        raise ValueError(f"size must be at least 8 (the digits are 8x8); got {size}")
    x, y, splits = _digits_arrays(size, channels, seed)
    idx = torch.as_tensor(splits[parts.index(split)])
    return TensorDataset(x[idx], y[idx])


def digits_loaders(batch_size: int = 64, size: int = 32, *, augment: bool = True, seed: int = 0,
                   num_workers: int = 0, device=None) -> Loaders:
    """Train / val / test loaders of the digits (train shuffled, shifted by up to 2 pixels)."""
    x, y, splits = _digits_arrays(size, 3, seed)
    train, val, test = (TensorDataset(x[torch.as_tensor(s)], y[torch.as_tensor(s)]) for s in splits)
    if augment:
        train = RandomShift(train, pad=max(1, size // 16))
    kw = dict(seed=seed, num_workers=num_workers, device=device)
    return Loaders(make_loader(train, batch_size, train=True, **kw),
                   make_loader(val, batch_size, train=False, **kw),
                   make_loader(test, batch_size, train=False, **kw),
                   10, tuple(str(d) for d in range(10)))


# -- CIFAR-10 -------------------------------------------------------------------------------
def cifar10_loaders(root: str | Path = "data", batch_size: int = 128, *, download: bool = False,
                    augment: bool = True, val_size: int = 5000, seed: int = 0, num_workers: int = 2,
                    device=None) -> Loaders:
    """CIFAR-10 through torchvision: 45,000 train / 5,000 val (seeded) / 10,000 test.

    Training images get the usual augmentation: random 32x32 crop of the 4-pixel padded image,
    horizontal flip. ``download=True`` fetches the data into ``root`` (about 170 MB).
    """
    try:
        import torchvision
        from torchvision import transforms as T
    except ImportError as err:  # also catches torchvision builds that do not match torch
        raise ValueError("CIFAR-10 needs torchvision: pip install torchvision (Colab has it)") from err
    norm = [T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)]
    train_tf = T.Compose(([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []) + norm)
    plain_tf = T.Compose(norm)
    try:
        train_full = torchvision.datasets.CIFAR10(root, train=True, transform=train_tf, download=download)
        val_full = torchvision.datasets.CIFAR10(root, train=True, transform=plain_tf, download=False)
        test = torchvision.datasets.CIFAR10(root, train=False, transform=plain_tf, download=download)
    except RuntimeError as err:  # "Dataset not found or corrupted"
        raise ValueError(f"CIFAR-10 is not in {root!s}: pass download=True (--download on the "
                         f"command line) to fetch it, or point root at a folder that has "
                         f"cifar-10-batches-py/") from err
    perm = torch.randperm(len(train_full), generator=torch.Generator().manual_seed(seed)).tolist()
    train, val = Subset(train_full, perm[val_size:]), Subset(val_full, perm[:val_size])
    kw = dict(seed=seed, num_workers=num_workers, device=device)
    return Loaders(make_loader(train, batch_size, train=True, **kw),
                   make_loader(val, batch_size, train=False, **kw),
                   make_loader(test, batch_size, train=False, **kw),
                   10, tuple(train_full.classes))


# -- an image folder (no torchvision) -------------------------------------------------------
_LAYOUT = ("pass a folder with one subfolder per class, e.g. PATH/cat/1.jpg, PATH/dog/2.png "
           "(or PATH/train/<class>/..., PATH/val/<class>/..., PATH/test/<class>/...)")


def _scan(root: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    samples = [(f, label) for label, c in enumerate(classes) for f in sorted((root / c).rglob("*"))
               if f.suffix.lower() in IMAGE_EXTENSIONS]
    return samples, classes


#: GoogLeNet's crops (Szegedy et al. 2014, Sec. 6): "sampling of various sized patches of the
#: image whose size is distributed evenly between 8% and 100% of the image area and whose
#: aspect ratio is chosen randomly between 3/4 and 4/3" (torchvision's RandomResizedCrop
#: defaults are these numbers).
CROP_SCALE, CROP_RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


def random_sized_crop_box(height: int, width: int, scale=CROP_SCALE, ratio=CROP_RATIO):
    """(top, left, h, w) of a random crop: area uniform in ``scale``, aspect ratio log-uniform
    in ``ratio``; ten tries, then the whole image clamped to the ratio range (torchvision's
    ``RandomResizedCrop.get_params``, drawn from torch's global RNG as it does)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
        aspect = math.exp(torch.empty(1).uniform_(*log_ratio).item())
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = torch.randint(0, height - h + 1, size=(1,)).item()
            left = torch.randint(0, width - w + 1, size=(1,)).item()
            return top, left, h, w
    in_ratio = width / height                                  # fallback: a centre crop
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _pil_to_tensor(im) -> torch.Tensor:
    return torch.from_numpy(np.asarray(im, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0  # 3 x H x W


class TrainTransform:
    """PIL image -> normalized ``3 x size x size`` tensor: GoogLeNet's random-sized crop
    (:data:`CROP_SCALE`, :data:`CROP_RATIO`), bilinear resize, horizontal flip (p = 0.5).

    ``backend``: ``'torchvision'`` (``transforms.v2``), ``'torch'`` (Pillow + torch, the same
    sampling rule) or ``'auto'`` (torchvision when it imports).
    """

    def __init__(self, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD, backend: str = "auto"):
        self.size = size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)
        self.pipeline = None
        v2 = transforms_v2(backend)
        if v2 is not None:
            self.pipeline = v2.Compose([
                v2.ToImage(),
                v2.RandomResizedCrop(size, scale=CROP_SCALE, ratio=CROP_RATIO, antialias=True),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])
        self.backend = "torchvision" if self.pipeline is not None else "torch"

    def __call__(self, im) -> torch.Tensor:
        if self.pipeline is not None:
            return self.pipeline(im)
        from PIL import Image

        top, left, h, w = random_sized_crop_box(im.height, im.width)
        im = im.resize((self.size, self.size), Image.BILINEAR, box=(left, top, left + w, top + h))
        x = _pil_to_tensor(im)
        if torch.rand(1).item() < 0.5:
            x = x.flip(-1)
        return (x - self.mean) / self.std


def eval_image_transform(size: int, crop_pct: float | None = None):
    """Resize the shorter side to ``floor(size / crop_pct)``, centre crop ``size``, normalize
    with ImageNet's statistics: :func:`inception_edu.pretrained.eval_transform`, the one
    definition of that pipeline. ``crop_pct`` defaults as for a model built without weights
    (0.875, timm's default; 1.0 for inputs of 64 pixels or fewer)."""
    if crop_pct is None:
        crop_pct = 1.0 if size <= 64 else DEFAULT_CROP_PCT
    return eval_transform({"input_size": (3, size, size), "crop_pct": crop_pct,
                           "interpolation": "bilinear", "mean": IMAGENET_MEAN, "std": IMAGENET_STD})


class ImageFolder(Dataset):
    """Images in class subfolders, read with Pillow (RGB) and passed through ``transform``
    (default: an evaluation resize + centre crop to ``size``)."""

    def __init__(self, samples: list[tuple[Path, int]], classes: list[str], size: int = 32,
                 transform=None):
        self.samples, self.classes, self.size = samples, classes, size
        self.transform = transform if transform is not None else eval_image_transform(size)

    @classmethod
    def from_path(cls, root: str | Path, size: int = 32, **kw) -> "ImageFolder":
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"no folder at {root}: {_LAYOUT}")
        samples, classes = _scan(root)
        if not samples:
            raise ValueError(f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in class "
                             f"subfolders: {_LAYOUT}")
        return cls(samples, classes, size, **kw)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as im:
            x = self.transform(im.convert("RGB"))
        return x, label


def folder_loaders(root: str | Path, batch_size: int = 64, size: int = 32, *, augment: bool = True,
                   seed: int = 0, num_workers: int | None = None, device=None,
                   crop_pct: float | None = None) -> Loaders:
    """Loaders of your own images. ``root/train``, ``root/val`` (``root/test``) are used when
    present (the ImageNet layout); otherwise one folder of classes is split 70 / 15 / 15 %
    (stratified, seeded). Without ``root/test`` the held-out part is ``val`` and the loaders
    say so (``test_name='validation'``).

    augment: GoogLeNet's random-sized crops and flips for training (:class:`TrainTransform`);
    evaluation images are resized and centre-cropped at ``crop_pct``.
    num_workers: decoding processes (default: :func:`default_num_workers`).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"no folder at {root}: {_LAYOUT}")
    if num_workers is None:
        num_workers = default_num_workers()
    plain = eval_image_transform(size, crop_pct)
    train_tf = TrainTransform(size) if augment else plain
    test_name = "test"
    if (root / "train").is_dir() and (root / "val").is_dir():
        train = ImageFolder.from_path(root / "train", size, transform=train_tf)
        val = ImageFolder.from_path(root / "val", size, transform=plain)
        if val.classes != train.classes:
            raise ValueError(f"{root}/val has classes {val.classes}, but {root}/train has "
                             f"{train.classes}: both need the same class subfolders")
        if (root / "test").is_dir():
            test = ImageFolder.from_path(root / "test", size, transform=plain)
        else:
            test, test_name = val, "validation"
        classes = train.classes
    else:
        full = ImageFolder.from_path(root, size)
        if len(full) < 3:
            raise ValueError(f"{root} holds {len(full)} image(s); a train/val/test split needs "
                             f"at least 3 (and more per class to learn anything)")
        classes = full.classes
        labels = [label for _, label in full.samples]
        tr, va, te = stratified_split(labels, seed=seed)
        train, val, test = (ImageFolder([full.samples[i] for i in part], classes, size, transform=tf)
                            for part, tf in ((tr, train_tf), (va, plain), (te, plain)))
    kw = dict(seed=seed, num_workers=num_workers, device=device)
    return Loaders(make_loader(train, batch_size, train=True, **kw),
                   make_loader(val, batch_size, train=False, **kw),
                   make_loader(test, batch_size, train=False, **kw),
                   len(classes), tuple(classes), test_name)


# -- synthetic ------------------------------------------------------------------------------
class SyntheticImages(Dataset):
    """``num_samples`` random images (fixed seed) with labels ``i % num_classes``.

    A bank of at most 256 distinct images is drawn once and indexed modulo its length, so a
    299x299 data set costs 270 MB at most and reading it costs nothing (throughput measures the
    network, not the data). Each class adds its own small offset, so a network can learn it.
    """

    def __init__(self, num_samples: int = 1024, size: int = 32, num_classes: int = 10,
                 seed: int = 0, channels: int = 3):
        g = torch.Generator().manual_seed(seed)
        bank = min(num_samples, 256)
        self.images = torch.randn(bank, channels, size, size, generator=g)     # B x C x S x S
        self.offsets = torch.randn(num_classes, channels, 1, 1, generator=g)    # K x C x 1 x 1
        self.num_samples, self.num_classes = num_samples, num_classes

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, i):
        y = i % self.num_classes
        return self.images[i % len(self.images)] + self.offsets[y], y


def synthetic_loaders(batch_size: int = 64, size: int = 32, *, num_samples: int = 1024,
                      num_classes: int = 10, seed: int = 0, num_workers: int = 0, device=None) -> Loaders:
    kw = dict(seed=seed, num_workers=num_workers, device=device)
    train = SyntheticImages(num_samples, size, num_classes, seed)
    held_out = SyntheticImages(max(batch_size, num_samples // 8), size, num_classes, seed + 1)
    return Loaders(make_loader(train, batch_size, train=True, **kw),
                   make_loader(held_out, batch_size, train=False, **kw),
                   make_loader(held_out, batch_size, train=False, **kw),
                   num_classes, tuple(str(k) for k in range(num_classes)))


# -- dispatch -------------------------------------------------------------------------------
def make_loaders(data: str | Path, batch_size: int = 64, size: int | None = None, *, seed: int = 0,
                 num_workers: int | None = None, device=None, augment: bool = True, root: str | Path = "data",
                 download: bool = False, num_classes: int = 10, num_samples: int = 1024) -> Loaders:
    """``'digits'``, ``'cluttered'``, ``'cifar10'``, ``'synthetic'`` or the path of an image folder.

    num_workers: ``None`` = none for the in-memory sets (digits, cluttered, synthetic: a worker
    would only copy tensors), :func:`default_num_workers` for those decoded from files.
    """
    name = str(data)
    in_memory = name in ("digits", "cluttered", "synthetic")
    if num_workers is None:
        num_workers = 0 if in_memory else default_num_workers()
    kw = dict(seed=seed, num_workers=num_workers, device=device)
    if name == "digits":
        return digits_loaders(batch_size, size or 32, augment=augment, **kw)
    if name == "cluttered":   # multi-scale digits in clutter (train/cluttered.py); seed fixes the data
        from .cluttered import cluttered_loaders

        return cluttered_loaders(batch_size, size or 32, **kw)
    if name in ("cifar10", "cifar-10"):
        if size not in (None, 32):
            raise ValueError(f"CIFAR-10 images are 32x32; got size={size} (leave it unset)")
        return cifar10_loaders(root, batch_size, download=download, augment=augment, **kw)
    if name == "synthetic":
        return synthetic_loaders(batch_size, size or 32, num_samples=num_samples,
                                 num_classes=num_classes, **kw)
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ValueError(f"no folder at {path} (and {name!r} is not 'digits', 'cifar10' or "
                         f"'synthetic'): {_LAYOUT}")
    return folder_loaders(path, batch_size, size or 32, augment=augment, **kw)
