"""Published weights: where each file lives, the preprocessing it expects, and loading it.

    model = create_model("inception_v3", pretrained=True).eval()   # torchvision's weights
    x = eval_transform(model)(Image.open("cat.jpg")).unsqueeze(0)  # 1 x 3 x 299 x 299
    model(x).softmax(1).topk(5)

``create_model(name, pretrained=...)`` lands here. ``True`` (or a weights name from
:func:`list_pretrained`) downloads the file the reference library itself downloads, through
``torch.hub`` (its cache, its progress bar, its SHA-256 check where the file name carries a
hash); a path loads a local ``.pth`` / ``.pt`` / ``.bin`` (``torch.load(weights_only=True)``)
or ``.safetensors`` file. Either way the state dict goes through
:func:`inception_edu.from_reference`, so it may come in any key order.

Every value below is read from the reference's own code, cited next to it.
"""
from __future__ import annotations

import copy
import fnmatch
import http.client
import math
import os
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import torch
from torch import nn

#: ImageNet's channel statistics: torchvision's ``ImageClassification`` defaults
#: (torchvision/transforms/_presets.py), used by its GoogLeNet and Inception-v3 weights.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: timm's ``IMAGENET_INCEPTION_MEAN/STD`` (timm/data/constants.py): the TF-slim ports' [-1, 1].
INCEPTION_MEAN, INCEPTION_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
#: CIFAR-10's training-set statistics, used by our trainer for the 32x32 networks.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
#: timm's ``DEFAULT_CROP_PCT`` (timm/data/constants.py), for networks without weights.
DEFAULT_CROP_PCT = 0.875

WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


class DownloadError(RuntimeError):
    """The published file could not be fetched or read; the message says what to do."""


def _cfg(reference: str, model: str, url: str, size: int, crop_pct: float, interpolation: str,
         mean, std, num_classes: int, note: str, source: str, license: str | None,
         file_name: str | None = None, transform_input: bool = False, input_space: str = "RGB",
         input_range=(0, 1), model_kwargs: dict | None = None) -> dict[str, Any]:
    return {
        # Which converter reads the file (a key of reference_models.json / list_references()).
        "reference": reference,
        # Our registry name, and the options that make it the network the weights belong to.
        "model": model, "model_kwargs": dict(model_kwargs or {}),
        "url": url,
        # Name in torch.hub's cache: the URL's own file name unless two files would share one.
        "file_name": file_name or os.path.basename(urlparse(url).path),
        "input_size": (3, size, size),
        # The crop is this fraction of the resized shorter side (timm's convention).
        "crop_pct": crop_pct, "interpolation": interpolation,
        # Pixels are scaled to input_range, reordered to input_space, then (x - mean) / std.
        "mean": tuple(mean), "std": tuple(std), "input_space": input_space,
        "input_range": tuple(input_range),
        "num_classes": num_classes,
        # torchvision's builders set transform_input=True for these weights: the network maps
        # ImageNet-normalized input back to the [-1, 1] scaling the TF weights were trained on.
        "transform_input": transform_input,
        "license": license, "note": note, "source": source,
    }


#: The published weights of every full-size network that has a reference, by name.
PRETRAINED: dict[str, dict[str, Any]] = {
    # torchvision/models/googlenet.py (0.29.1), GoogLeNet_Weights.IMAGENET1K_V1:
    # url, transforms=partial(ImageClassification, crop_size=224) (resize_size 256, bilinear,
    # ImageNet mean/std: transforms/_presets.py); googlenet() sets transform_input=True for them,
    # and keeps the (untrained) aux heads only when asked (original_aux_logits default False).
    "torchvision.googlenet": _cfg(
        "torchvision.googlenet", "googlenet_bn",
        "https://download.pytorch.org/models/googlenet-1378be20.pth",
        224, 224 / 256, "bilinear", IMAGENET_MEAN, IMAGENET_STD, 1000, transform_input=True,
        model_kwargs={"transform_input": True, "aux_logits": False},
        note="ImageNet-1k weights ported by torchvision from the TF GoogLeNet (69.778 % top-1 per "
             "torchvision); the file's aux heads are not trained",
        source="torchvision/models/googlenet.py", license=None),
    # torchvision/models/inception.py (0.29.1), Inception_V3_Weights.IMAGENET1K_V1:
    # url, transforms=partial(ImageClassification, crop_size=299, resize_size=342);
    # inception_v3() sets transform_input=True and keeps the aux head (default True).
    "torchvision.inception_v3": _cfg(
        "torchvision.inception_v3", "inception_v3",
        "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
        299, 299 / 342, "bilinear", IMAGENET_MEAN, IMAGENET_STD, 1000, transform_input=True,
        model_kwargs={"transform_input": True},
        note="ImageNet-1k weights of Google's TF Inception-v3, ported by torchvision (77.294 % "
             "top-1 per torchvision)",
        source="torchvision/models/inception.py", license=None),
    # timm/models/inception_v4.py, default_cfgs['inception_v4.tf_in1k']: hf_hub_id 'timm/'
    # (completed to 'timm/inception_v4.tf_in1k' by timm/models/_registry.py), input_size
    # (3, 299, 299), crop_pct 0.875, bicubic, IMAGENET_INCEPTION_MEAN/STD, license apache-2.0.
    # timm/models/_hub.py load_state_dict_from_hf loads 'model.safetensors' first; the URL is
    # the Hugging Face Hub's resolve URL of that file.
    "timm.inception_v4": _cfg(
        "timm.inception_v4", "inception_v4",
        "https://huggingface.co/timm/inception_v4.tf_in1k/resolve/main/model.safetensors",
        299, 0.875, "bicubic", INCEPTION_MEAN, INCEPTION_STD, 1000,
        file_name="timm-inception_v4.tf_in1k.safetensors",
        note="ImageNet-1k weights of Google's TF-slim Inception-v4, as timm publishes them "
             "(inception_v4.tf_in1k)",
        source="timm/models/inception_v4.py", license="apache-2.0"),
    # timm/models/inception_resnet_v2.py, default_cfgs['inception_resnet_v2.tf_in1k']
    # ("ported from http://download.tensorflow.org/models/inception_resnet_v2_2016_08_30.tar.gz"):
    # input_size (3, 299, 299), crop_pct 0.8975, bicubic, IMAGENET_INCEPTION_MEAN/STD, apache-2.0.
    "timm.inception_resnet_v2": _cfg(
        "timm.inception_resnet_v2", "inception_resnet_v2",
        "https://huggingface.co/timm/inception_resnet_v2.tf_in1k/resolve/main/model.safetensors",
        299, 0.8975, "bicubic", INCEPTION_MEAN, INCEPTION_STD, 1000,
        file_name="timm-inception_resnet_v2.tf_in1k.safetensors",
        note="ImageNet-1k weights of Google's TF-slim Inception-ResNet-v2, as timm publishes "
             "them (inception_resnet_v2.tf_in1k)",
        source="timm/models/inception_resnet_v2.py", license="apache-2.0"),
    # Same file, default_cfgs['inception_resnet_v2.tf_ens_adv_in1k'] (Tramer et al. 2017,
    # ens_adv_inception_resnet_v2_2017_08_18.tar.gz): the same settings.
    "timm.inception_resnet_v2.tf_ens_adv_in1k": _cfg(
        "timm.inception_resnet_v2", "inception_resnet_v2",
        "https://huggingface.co/timm/inception_resnet_v2.tf_ens_adv_in1k/resolve/main/model.safetensors",
        299, 0.8975, "bicubic", INCEPTION_MEAN, INCEPTION_STD, 1000,
        file_name="timm-inception_resnet_v2.tf_ens_adv_in1k.safetensors",
        note="ImageNet-1k weights of Google's ensemble-adversarially trained Inception-ResNet-v2, "
             "as timm publishes them (inception_resnet_v2.tf_ens_adv_in1k)",
        source="timm/models/inception_resnet_v2.py", license="apache-2.0"),
    # pretrainedmodels/models/bninception.py, pretrained_settings['bninception']['imagenet']:
    # url, input_space 'BGR', input_size [3, 224, 224], input_range [0, 255], mean [104, 117,
    # 128], std [1, 1, 1]; pretrainedmodels/utils.py TransformImage: scale 0.875 and
    # transforms.Resize (bilinear) of the shorter side, centre crop.
    "pretrainedmodels.bninception": _cfg(
        "pretrainedmodels.bninception", "bn_inception",
        "http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth",
        224, 0.875, "bilinear", (104, 117, 128), (1, 1, 1), 1000,
        input_space="BGR", input_range=(0, 255),
        note="a Caffe reproduction of BN-Inception trained by Xiong Yuanjun, ported by "
             "pretrainedmodels (73.524 % top-1 per its README); expects BGR pixels in 0-255 "
             "minus per-channel means",
        source="pretrainedmodels/models/bninception.py", license=None),
    # facenet_pytorch/models/inception_resnet_v1.py load_weights('vggface2') and the 8631-class
    # head of pretrained='vggface2'; input: 160x160 face crops (models/mtcnn.py image_size=160,
    # resized with PIL BILINEAR in models/utils/detect_face.py crop_resize) standardized by
    # fixed_image_standardization: (x - 127.5) / 128 on 0-255 pixels (models/mtcnn.py).
    "facenet_pytorch.InceptionResnetV1": _cfg(
        "facenet_pytorch.InceptionResnetV1", "inception_resnet_v1",
        "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
        160, 1.0, "bilinear", (127.5,) * 3, (128.0,) * 3, 8631, input_range=(0, 255),
        model_kwargs={"num_classes": 8631},
        note="VGGFace2 face-recognition weights (David Sandberg's TF facenet 20180402-114759, "
             "ported by facenet-pytorch) with an 8631-identity head; feed aligned 160x160 face "
             "crops, not ImageNet photos",
        source="facenet_pytorch/models/inception_resnet_v1.py", license=None),
    # Same function, load_weights('casia-webface'): 10575 identities.
    "facenet_pytorch.InceptionResnetV1.casia-webface": _cfg(
        "facenet_pytorch.InceptionResnetV1", "inception_resnet_v1",
        "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180408-102900-casia-webface.pt",
        160, 1.0, "bilinear", (127.5,) * 3, (128.0,) * 3, 10575, input_range=(0, 255),
        model_kwargs={"num_classes": 10575},
        note="CASIA-WebFace face-recognition weights (David Sandberg's TF facenet 20180408-102900, "
             "ported by facenet-pytorch) with a 10575-identity head; feed aligned 160x160 face crops",
        source="facenet_pytorch/models/inception_resnet_v1.py", license=None),
}

#: What ``pretrained=True`` loads for each model name.
DEFAULT_WEIGHTS = {
    "googlenet_bn": "torchvision.googlenet",
    "inception_v3": "torchvision.inception_v3",
    "inception_v4": "timm.inception_v4",
    "inception_resnet_v2": "timm.inception_resnet_v2",
    "bn_inception": "pretrainedmodels.bninception",
    "inception_resnet_v1": "facenet_pytorch.InceptionResnetV1",
}


def list_pretrained(pattern: str | None = None) -> list[str]:
    """Names of the published weights, sorted; ``pattern`` is a wildcard like ``'timm.*'``."""
    names = sorted(PRETRAINED)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def get_pretrained_cfg(name: str) -> dict[str, Any]:
    """A copy of the configuration of published weights ``name`` (see :func:`list_pretrained`)."""
    if name not in PRETRAINED:
        raise ValueError(f"no published weights called {name!r}; known: {', '.join(list_pretrained())}")
    return copy.deepcopy(PRETRAINED[name])


def native_cfg(model: nn.Module) -> dict[str, Any]:
    """The ``pretrained_cfg`` of a network built without weights: its native input size."""
    size = int(getattr(model, "default_size", 224))
    chans = int(getattr(model, "in_chans", 3))
    small = size <= 64  # the *_cifar networks: our trainer normalizes with CIFAR-10's statistics
    mean, std = (CIFAR10_MEAN, CIFAR10_STD) if small else (IMAGENET_MEAN, IMAGENET_STD)
    if chans != 3:
        mean, std = (0.5,) * chans, (0.5,) * chans
    name = getattr(model, "create_args", (getattr(model, "name", None),))[0]
    return {
        "reference": None, "weights": None, "model": name, "model_kwargs": {}, "url": None,
        "file_name": None, "file": None, "input_size": (chans, size, size),
        "crop_pct": 1.0 if small else DEFAULT_CROP_PCT, "interpolation": "bilinear",
        "mean": tuple(mean), "std": tuple(std), "input_space": "RGB", "input_range": (0, 1),
        "num_classes": int(getattr(model, "num_classes", 0)),
        "transform_input": bool(getattr(model, "transform_input", False)),
        "license": None, "source": None,
        "note": f"no weights loaded (random initialization); native input {size}x{size}",
    }


# -- reading files ------------------------------------------------------------------------------
def _safetensors_loader(file_name: str):
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise ImportError(f"reading {file_name} needs the safetensors package: pip install "
                          f"safetensors (or save the weights with torch.save as a .pth file)") from None
    return load_file


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth`` / ``.pt`` / ``.bin`` (``weights_only``) or ``.safetensors`` file.

    A training checkpoint that wraps the weights (``{"state_dict": ...}`` or ``{"model": ...}``)
    is unwrapped. Anything unreadable is a ``ValueError`` naming the file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"no weights file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        load_file = _safetensors_loader(path.name)
        try:
            obj = load_file(str(path), device="cpu")
        except Exception as err:
            raise ValueError(f"{path} is not a readable .safetensors file (truncated or corrupt?): "
                             f"{err}") from None
    elif suffix in (".pth", ".pt", ".bin"):
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"{path} could not be read by torch.load(weights_only=True): {first}. "
                             f"Is it truncated or corrupt, or does it hold more than tensors? Save "
                             f"only model.state_dict().") from None
    else:
        raise ValueError(f"{path.name}: weights files end in {', '.join(WEIGHT_SUFFIXES)}")
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ValueError(f"{path} does not hold a state dict (names -> tensors): save "
                         f"model.state_dict()")
    return dict(obj)


# -- downloading --------------------------------------------------------------------------------
def cache_path(name: str) -> Path:
    """Where torch.hub's cache keeps published weights ``name`` (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / get_pretrained_cfg(name)["file_name"]


def _hash_prefix(url: str) -> str | None:
    # torch.hub.load_state_dict_from_url(check_hash=True): the hex digits after the last '-' of
    # the file name are the start of its SHA-256 (googlenet-1378be20.pth). Names without one
    # (facenet's 20180402-114759-vggface2.pt, the Hub's model.safetensors) are not checked.
    match = torch.hub.HASH_REGEX.search(os.path.basename(urlparse(url).path))
    return match.group(1) if match and match.group(1) else None


def download_weights(name: str, progress: bool = True) -> Path:
    """Fetch published weights ``name`` into torch.hub's cache (once) and return the file.

    torch.hub writes to a temporary file and moves it into place only when complete and, where
    the file name carries a hash, when the SHA-256 matches: a failed download leaves nothing.
    """
    cfg = get_pretrained_cfg(name)
    url, dst = cfg["url"], cache_path(name)
    if dst.is_file():
        return dst
    hash_prefix = _hash_prefix(url)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(dst), hash_prefix, progress=progress)
    except RuntimeError as err:
        if "invalid hash value" not in str(err):
            raise
        raise DownloadError(
            f"the file downloaded from {url} is not the published one: its SHA-256 does not start "
            f"with {hash_prefix} as its name says ({err}). Nothing was saved in {dst.parent}. "
            f"Try again (a proxy or a broken connection can alter a download), or fetch the file "
            f"yourself and pass pretrained=\"PATH\".") from None
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(
            f"could not download the {name} weights from {url} ({err}). Offline? Download that "
            f"file elsewhere and save it as {dst} (torch.hub's cache, read first by "
            f"pretrained=True), or save it anywhere and pass "
            f"create_model({cfg['model']!r}, pretrained=\"PATH\").") from err
    return dst


def _load_downloaded(name: str, progress: bool) -> dict[str, torch.Tensor]:
    if cache_path(name).suffix == ".safetensors":
        _safetensors_loader(cache_path(name).name)  # say so before downloading, not after
    path = download_weights(name, progress)
    try:
        return load_state_dict_file(path)
    except ValueError as err:
        # A truncated or corrupt file in the cache would fail every later call: remove it.
        path.unlink(missing_ok=True)
        url = PRETRAINED[name]["url"]
        raise DownloadError(f"the file downloaded from {url} could not be read and was removed "
                            f"from the cache ({err}). Try again, or download it yourself and pass "
                            f"pretrained=\"PATH\".") from None


# -- building -----------------------------------------------------------------------------------
def _resolve(name: str, pretrained) -> tuple[str | None, Path | None]:
    """(weights name, None) for published weights, (None, path) for a local file."""
    from .registry import list_models

    if pretrained is True:
        if name not in DEFAULT_WEIGHTS:
            with_weights = ", ".join(f"{m} ({w})" for m, w in sorted(DEFAULT_WEIGHTS.items()))
            raise ValueError(f"{name} has no published weights (no reference library publishes "
                             f"this network). Networks with weights: {with_weights}. A file of "
                             f"your own loads with pretrained=\"PATH\".")
        return DEFAULT_WEIGHTS[name], None
    if isinstance(pretrained, (str, os.PathLike)):
        text = os.fspath(pretrained)
        if text in PRETRAINED:
            owner = PRETRAINED[text]["model"]
            if owner != name:
                raise ValueError(f"{text} are weights for {owner}, not {name}: "
                                 f"create_model({owner!r}, pretrained={text!r})")
            return text, None
        path = Path(text).expanduser()
        if path.is_file():
            return None, path
        if text in list_models() or path.suffix.lower() not in WEIGHT_SUFFIXES:
            raise ValueError(f"pretrained={text!r} is neither published weights "
                             f"({', '.join(list_pretrained())}) nor an existing weights file")
        raise ValueError(f"no weights file at {path}")
    raise TypeError(f"pretrained must be True, a weights name or the path of a weights file; "
                    f"got {type(pretrained).__name__}")


def _cfg_for_file(name: str, state_dict: Mapping[str, torch.Tensor]):
    """(weights name, cfg) for a local file in the reference's layout, or (None, None).

    The classifier's width picks among the reference's published weights (facenet's 8631
    VGGFace2 or 10575 CASIA-WebFace identities); a file with another width (weights of your
    own in the reference's layout) keeps the default weights' preprocessing and its own width.
    """
    from .convert import reference_keys

    if name not in DEFAULT_WEIGHTS:
        return None, None
    cfg = get_pretrained_cfg(DEFAULT_WEIGHTS[name])
    keys = reference_keys()[cfg["reference"]]
    if not set(state_dict) <= set(keys):
        return None, None  # not the reference's names: a state dict of our own model
    classifier = state_dict.get(keys[-2])  # every reference registers its classifier last
    classes = int(classifier.shape[0]) if classifier is not None else cfg["num_classes"]
    for weights in list_pretrained():
        other = PRETRAINED[weights]
        if other["model"] == name and other["num_classes"] == classes:
            return weights, get_pretrained_cfg(weights)
    cfg["num_classes"] = cfg["model_kwargs"]["num_classes"] = classes
    cfg["note"] = (f"weights in {cfg['reference']}'s layout with a {classes}-class head; the "
                   f"preprocessing is that of {DEFAULT_WEIGHTS[name]}")
    return None, cfg


def build_pretrained(name: str, pretrained, num_classes: int | None = None, progress: bool = True,
                     **kwargs) -> nn.Module:
    """``create_model(name, pretrained=...)``: the network with the published or a local file's
    weights, and ``model.pretrained_cfg`` saying what they are and what input they expect.

    The weights' own options come first (torchvision's ``transform_input=True``, facenet's 8631
    classes); ``kwargs`` override them. A ``num_classes`` other than the weights' loads
    everything but the classifier, which starts afresh (timm's behaviour).
    """
    from .convert import check_fits, from_reference
    from .registry import create_model

    weights, path = _resolve(name, pretrained)
    if weights is not None:
        cfg = get_pretrained_cfg(weights)
        state_dict = _load_downloaded(weights, progress)
    else:
        state_dict = load_state_dict_file(path)
        weights, cfg = _cfg_for_file(name, state_dict)
    if cfg is None:  # our own layout (e.g. saved from a model trained here)
        model = create_model(name, num_classes=num_classes, **kwargs)
        check_fits(model.state_dict(), state_dict, f"{name} ({path})")
        floats = [v.dtype for v in state_dict.values() if v.dtype.is_floating_point]
        model = model.to(floats[0]) if floats else model
        model.load_state_dict(state_dict)
        model.pretrained_cfg = {**native_cfg(model), "file": str(path),
                                "note": f"weights of our own layout from {path}"}
        return model
    options = {**cfg["model_kwargs"], **kwargs}
    options["num_classes"] = cfg["num_classes"]
    model = from_reference(cfg["reference"], state_dict, **options)
    if num_classes is not None and num_classes != cfg["num_classes"]:
        model.reset_classifier(num_classes)
        model.to(next(model.parameters()).dtype)
    model.create_args = (name, {**options, "num_classes": model.num_classes})
    cfg.update(weights=weights, file=str(path) if path else None,
               num_classes=model.num_classes,
               transform_input=bool(getattr(model, "transform_input", False)))
    if path is not None:
        cfg["note"] += f" (read from {path})"
    model.pretrained_cfg = cfg
    return model


# -- preprocessing ------------------------------------------------------------------------------
def _cfg_of(model_or_cfg) -> dict[str, Any]:
    if isinstance(model_or_cfg, nn.Module):
        cfg = getattr(model_or_cfg, "pretrained_cfg", None)
        return cfg if cfg is not None else native_cfg(model_or_cfg)
    if isinstance(model_or_cfg, str):
        return get_pretrained_cfg(model_or_cfg)
    if isinstance(model_or_cfg, Mapping):
        missing = [k for k in ("input_size", "crop_pct", "interpolation", "mean", "std")
                   if k not in model_or_cfg]
        if missing:
            raise ValueError(f"the cfg lacks {', '.join(missing)} (see model.pretrained_cfg)")
        return dict(model_or_cfg)
    raise TypeError(f"eval_transform takes a model, its pretrained_cfg or a weights name; got "
                    f"{type(model_or_cfg).__name__}")


def resize_size(cfg: Mapping[str, Any]) -> int:
    """The shorter side before the centre crop: ``floor(size / crop_pct)``, as timm computes it
    (timm/data/transforms_factory.py); 342 for torchvision's Inception-v3 (299 / (299 / 342))."""
    return math.floor(cfg["input_size"][-1] / cfg["crop_pct"])


def _as_image_tensor(img) -> torch.Tensor:
    """A PIL image or a uint8 / float tensor (C, H, W) or (N, C, H, W) as float in [0, 1]."""
    if isinstance(img, torch.Tensor):
        if img.dim() not in (3, 4) or img.shape[-3] not in (1, 3):
            raise ValueError(f"an image tensor is (3, H, W) or (N, 3, H, W) (channels first, as "
                             f"torchvision's); got {tuple(img.shape)}. For (H, W, 3) use "
                             f"x.permute(2, 0, 1).")
        if img.dtype == torch.uint8:
            # torchvision.transforms.v2.ToDtype(float32, scale=True): to(dtype).mul_(1 / 255)
            x = img.to(torch.float32).mul_(1.0 / 255)
        elif img.dtype.is_floating_point:
            if img.numel() and (img.min() < 0 or img.max() > 1):
                raise ValueError(f"a float image tensor holds values in [0, 1]; got "
                                 f"[{img.min().item():.3g}, {img.max().item():.3g}]. Pass uint8 "
                                 f"pixels, or divide by 255.")
            x = img.to(torch.float32)
        else:
            raise ValueError(f"image tensors are uint8 (0-255) or float (0-1); got {img.dtype}")
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:]) if x.shape[-3] == 1 else x
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        Image = None
    if Image is not None and isinstance(img, Image.Image):
        import numpy as np
        pixels = torch.from_numpy(np.array(img.convert("RGB"), dtype=np.uint8))  # H x W x 3
        return _as_image_tensor(pixels.permute(2, 0, 1))
    raise TypeError(f"eval_transform takes a PIL image or an image tensor; got {type(img).__name__}")


def _steps(cfg: Mapping[str, Any]) -> dict[str, Any]:
    scale = float(cfg.get("input_range", (0, 1))[1])
    chans = len(cfg["mean"])
    if chans != 3 or cfg["input_size"][0] != 3:
        raise ValueError(f"eval_transform makes 3-channel images; this cfg has "
                         f"{cfg['input_size'][0]} channels")
    if cfg["interpolation"] not in ("bilinear", "bicubic", "nearest"):
        raise ValueError(f"interpolation {cfg['interpolation']!r}: use bilinear, bicubic or nearest")
    # (scale * x - mean) / std == (x - mean / scale) / (std / scale): one normalize for both
    # the [0, 1] and the 0-255 (Caffe, facenet) conventions.
    return {"resize": resize_size(cfg), "crop": int(cfg["input_size"][-1]),
            "interpolation": cfg["interpolation"], "bgr": cfg.get("input_space", "RGB") == "BGR",
            "mean": [m / scale for m in cfg["mean"]], "std": [s / scale for s in cfg["std"]]}


class _ToBGR(nn.Module):
    """RGB -> BGR along the channel dimension (pretrainedmodels' ToSpaceBGR, for Caffe weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-3)


def transforms_v2(backend: str = "auto"):
    """``torchvision.transforms.v2`` for ``backend`` ``'auto'`` or ``'torchvision'``, else None.

    ``'auto'`` gives None when torchvision is missing or built for another torch (the callers
    then take their plain-torch path); ``'torchvision'`` insists; ``'torch'`` never imports it.
    """
    if backend not in ("auto", "torchvision", "torch"):
        raise ValueError(f"backend is 'auto', 'torchvision' or 'torch'; got {backend!r}")
    if backend == "torch":
        return None
    try:
        from torchvision.transforms import v2
    except Exception:  # not installed, or a build that does not match this torch
        if backend == "torchvision":
            raise ImportError("backend='torchvision' needs torchvision: pip install "
                              "torchvision (or use backend='torch')") from None
        return None
    return v2


class EvalTransform:
    """Image -> the float tensor published weights expect: resize the shorter side to
    ``floor(size / crop_pct)`` (antialiased), centre crop ``size``, scale, channel order,
    normalize. Returns (3, size, size) for one image, (N, 3, size, size) for a batch tensor:
    ``transform(img).unsqueeze(0)`` makes a batch of one.

    ``backend``: ``"torchvision"`` (a ``torchvision.transforms.v2`` pipeline, ``.pipeline``),
    ``"torch"`` (the same steps in plain torch), or ``"auto"``: torchvision when installed.
    Both compute in float32 from the same [0, 1] tensor and agree to rounding.
    """

    def __init__(self, cfg: Mapping[str, Any], backend: str = "auto"):
        self.cfg = dict(cfg)
        self.steps = _steps(cfg)
        self.pipeline = None
        v2 = transforms_v2(backend)
        if v2 is not None:
            s = self.steps
            mode = getattr(v2.InterpolationMode, s["interpolation"].upper())
            self.pipeline = v2.Compose(
                [v2.Resize(s["resize"], interpolation=mode, antialias=True), v2.CenterCrop(s["crop"])]
                + ([_ToBGR()] if s["bgr"] else []) + [v2.Normalize(s["mean"], s["std"])])
        self.backend = "torchvision" if self.pipeline is not None else "torch"

    def __call__(self, img) -> torch.Tensor:
        x = _as_image_tensor(img)
        if self.pipeline is not None:
            return self.pipeline(x)
        return self._torch(x)

    def _torch(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        s = self.steps
        batch = x if x.dim() == 4 else x.unsqueeze(0)
        h, w = batch.shape[-2:]
        # torchvision's _compute_resized_output_size: the shorter side becomes `resize`, the
        # longer int(resize * long / short).
        short, long = (h, w) if h <= w else (w, h)
        new_long = int(s["resize"] * long / short)
        size = (s["resize"], new_long) if h <= w else (new_long, s["resize"])
        if size != (h, w):
            corners = None if s["interpolation"] == "nearest" else False
            batch = F.interpolate(batch, size=size, mode=s["interpolation"], align_corners=corners,
                                  antialias=s["interpolation"] != "nearest")
        # torchvision's center_crop: pad if smaller, offsets int(round((H - size) / 2)).
        c = s["crop"]
        h, w = batch.shape[-2:]
        if h < c or w < c:
            ph, pw = max(c - h, 0), max(c - w, 0)
            batch = F.pad(batch, [pw // 2, (pw + 1) // 2, ph // 2, (ph + 1) // 2])
            h, w = batch.shape[-2:]
        top, left = int(round((h - c) / 2.0)), int(round((w - c) / 2.0))
        batch = batch[..., top:top + c, left:left + c]
        if s["bgr"]:
            batch = batch.flip(-3)
        mean = torch.tensor(s["mean"], dtype=batch.dtype).view(-1, 1, 1)
        std = torch.tensor(s["std"], dtype=batch.dtype).view(-1, 1, 1)
        batch = (batch - mean) / std
        return batch if x.dim() == 4 else batch[0]

    def __repr__(self) -> str:
        s = self.steps
        order = "BGR, " if s["bgr"] else ""
        return (f"EvalTransform(backend={self.backend!r}, resize={s['resize']} ({s['interpolation']}), "
                f"crop={s['crop']}, {order}mean={[round(m, 4) for m in s['mean']]}, "
                f"std={[round(v, 4) for v in s['std']]})")


def eval_transform(model_or_cfg, backend: str = "auto") -> EvalTransform:
    """The preprocessing the model's weights expect, as a callable on a PIL image or a tensor.

    >>> model = create_model("inception_v3", pretrained=True).eval()
    >>> x = eval_transform(model)(Image.open("cat.jpg")).unsqueeze(0)    # 1 x 3 x 299 x 299

    ``model_or_cfg``: a model built by ``create_model`` (its ``pretrained_cfg``), such a cfg
    dict, or a weights name (``"timm.inception_v4"``). Uses ``torchvision.transforms.v2`` when
    installed, plain torch otherwise (``backend=`` picks one).
    """
    return EvalTransform(_cfg_of(model_or_cfg), backend)
