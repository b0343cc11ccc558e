"""Published weights: configs from the references' code, files in any key order, downloads.

Offline throughout: weight files are the fingerprint state dicts of
``tests/data/reference_models.json`` (see tests/test_reference.py), written in sorted key order
as ``.safetensors`` files come back, and the downloads are served from 127.0.0.1. Their
logits must be the references' own.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import math
import socket
import sys
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import inception_edu as ie
from inception_edu import pretrained as P
from inception_edu.convert import reference_keys, reorder_like_reference
from inception_edu.fingerprint import fingerprint_input, fingerprint_state_dict

DATA = Path(__file__).parent / "data"
REFS = json.loads((DATA / "reference_models.json").read_text())
REQUIRED = {"reference", "input_size", "crop_pct", "interpolation", "mean", "std", "num_classes",
            "transform_input", "url", "note"}


def _fingerprint(key: str, dtype=torch.float64) -> dict[str, torch.Tensor]:
    sd = fingerprint_state_dict(REFS[key]["state_dict"])
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sorted(sd.items())}


def _expected(key: str, shape) -> torch.Tensor:
    return torch.tensor(REFS[key]["logits"], dtype=torch.float64).reshape(shape)


def _logits(model, key: str) -> torch.Tensor:
    x = fingerprint_input(REFS[key]["input_size"]).to(next(model.parameters()).dtype)
    with torch.no_grad():
        return model.eval()(x)


# -- the key lists shipped as package data ---------------------------------------------------------
def test_reference_keys_are_the_references_own():
    assert {k: list(v) for k, v in reference_keys().items()} == \
        {k: list(ref["state_dict"]) for k, ref in REFS.items()}


def test_reorder_restores_the_reference_order_and_fills_old_batchnorm_counters():
    key = "torchvision.inception_v3"
    sd = _fingerprint(key)
    assert list(sd) != list(REFS[key]["state_dict"])            # sorted is another order
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # pre-0.4.1 file
    back = reorder_like_reference(key, old)
    assert list(back) == list(REFS[key]["state_dict"])
    assert all(back[k].item() == 0 for k in back if k.endswith("num_batches_tracked"))


@pytest.mark.parametrize("key", sorted(REFS))
def test_from_reference_accepts_sorted_state_dicts(key):
    model = ie.from_reference(key, _fingerprint(key))
    logits = _logits(model, key)
    assert torch.allclose(logits, _expected(key, logits.shape), rtol=1e-6, atol=1e-8)


# -- the configs -------------------------------------------------------------------------------------
def test_every_full_size_reference_has_published_weights():
    assert {cfg["reference"] for cfg in P.PRETRAINED.values()} == set(REFS)
    for model, weights in P.DEFAULT_WEIGHTS.items():
        cfg = P.PRETRAINED[weights]
        assert cfg["model"] == model and REQUIRED <= set(cfg)
        assert ie.convert.get_reference(cfg["reference"]).model == model
        assert cfg["input_size"] == (3, REFS[cfg["reference"]]["input_size"],
                                     REFS[cfg["reference"]]["input_size"])


def test_configs_match_the_references_code():
    cfg = P.get_pretrained_cfg
    # torchvision: ImageClassification(crop_size=224) (resize_size 256), (crop 299, resize 342).
    assert (P.resize_size(cfg("torchvision.googlenet")), cfg("torchvision.googlenet")["input_size"]) \
        == (256, (3, 224, 224))
    assert P.resize_size(cfg("torchvision.inception_v3")) == 342
    assert all(cfg(n)["transform_input"] for n in ("torchvision.googlenet", "torchvision.inception_v3"))
    # timm: scale_size = floor(299 / crop_pct) with crop_pct 0.875 and 0.8975, bicubic.
    assert P.resize_size(cfg("timm.inception_v4")) == math.floor(299 / 0.875)
    assert P.resize_size(cfg("timm.inception_resnet_v2")) == math.floor(299 / 0.8975)
    assert cfg("timm.inception_v4")["interpolation"] == "bicubic"
    # pretrainedmodels: BGR, [0, 255], mean [104, 117, 128], std [1, 1, 1]; facenet: 8631 classes.
    bn = cfg("pretrainedmodels.bninception")
    assert (bn["input_space"], bn["input_range"], bn["mean"], bn["std"]) == \
        ("BGR", (0, 255), (104, 117, 128), (1, 1, 1))
    assert cfg("facenet_pytorch.InceptionResnetV1")["num_classes"] == 8631
    assert cfg("facenet_pytorch.InceptionResnetV1.casia-webface")["num_classes"] == 10575
    # check_hash where the file name carries one (torch.hub's rule), not elsewhere.
    assert P._hash_prefix(cfg("torchvision.inception_v3")["url"]) == "0cc3c7bd"
    assert P._hash_prefix(cfg("pretrainedmodels.bninception")["url"]) == "52deb4733"
    assert P._hash_prefix(cfg("facenet_pytorch.InceptionResnetV1")["url"]) is None
    assert P._hash_prefix(cfg("timm.inception_v4")["url"]) is None
    assert len({c["file_name"] for c in P.PRETRAINED.values()}) == len(P.PRETRAINED)


@pytest.mark.parametrize("name", ie.list_models())
def test_models_without_weights_carry_their_native_cfg(name):
    model = ie.create_model(name)
    cfg = model.pretrained_cfg
    assert REQUIRED <= set(cfg) and cfg["reference"] is None and cfg["url"] is None
    assert cfg["input_size"] == (3, model.default_size, model.default_size)
    assert cfg["num_classes"] == model.num_classes
    assert cfg["transform_input"] == bool(getattr(model, "transform_input", False))
    assert ie.eval_transform(model)(torch.rand(3, 50, 70)).shape == cfg["input_size"]


# -- pretrained="PATH" -------------------------------------------------------------------------------
def test_sorted_pth_file_gives_the_reference_logits(tmp_path):
    key = "torchvision.googlenet"
    path = tmp_path / "googlenet.pth"
    torch.save(_fingerprint(key), path)
    # The fingerprint logits were taken with transform_input=False; the weights' default is True.
    model = ie.create_model("googlenet_bn", pretrained=str(path), transform_input=False)
    logits = _logits(model, key)
    assert torch.allclose(logits, _expected(key, logits.shape), rtol=1e-6, atol=1e-8)
    cfg = model.pretrained_cfg
    assert cfg["reference"] == key and cfg["file"] == str(path) and cfg["transform_input"] is False
    assert cfg["url"] == P.PRETRAINED[key]["url"] and len(model.aux) == 0  # torchvision drops them
    assert ie.create_model("googlenet_bn", pretrained=path).transform_input is True
    assert set(cfg) == set(ie.create_model("googlenet_bn").pretrained_cfg)  # the same keys


def test_sorted_safetensors_file_gives_the_reference_logits(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    key = "pretrainedmodels.bninception"
    path = tmp_path / "bn_inception.safetensors"
    safetensors.save_file(_fingerprint(key), str(path))
    model = ie.create_model("bn_inception", pretrained=path)
    logits = _logits(model, key)
    assert torch.allclose(logits, _expected(key, logits.shape), rtol=1e-6, atol=1e-8)
    assert model.pretrained_cfg["input_space"] == "BGR"


def test_safetensors_without_the_package_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\0" * 16)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(ImportError, match="pip install safetensors"):
        ie.create_model("bn_inception", pretrained=path)
    # timm publishes .safetensors: said before downloading anything (this URL is unreachable).
    monkeypatch.setitem(P.PRETRAINED["timm.inception_v4"], "url", "http://127.0.0.1:9/model.safetensors")
    with pytest.raises(ImportError, match="pip install safetensors"):
        ie.create_model("inception_v4", pretrained=True)


def test_facenet_file_picks_its_weights_by_head_width(tmp_path):
    key = "facenet_pytorch.InceptionResnetV1"
    sd = _fingerprint(key, torch.float32)
    sd["logits.weight"], sd["logits.bias"] = torch.zeros(10575, 512), torch.zeros(10575)
    path = tmp_path / "casia.pt"
    torch.save(sd, path)
    model = ie.create_model("inception_resnet_v1", pretrained=path)
    assert model.num_classes == 10575
    assert model.pretrained_cfg["weights"] == "facenet_pytorch.InceptionResnetV1.casia-webface"


def test_other_num_classes_keeps_all_but_the_classifier(tmp_path):
    key = "pretrainedmodels.bninception"
    path = tmp_path / "bn.pth"
    sd = _fingerprint(key, torch.float32)
    torch.save(sd, path)
    model = ie.create_model("bn_inception", pretrained=path, num_classes=10)
    assert model.fc.out_features == 10 and model.pretrained_cfg["num_classes"] == 10
    full = ie.from_reference(key, sd).state_dict()
    assert all(torch.equal(v, full[k]) for k, v in model.state_dict().items() if not k.startswith("fc."))


def test_our_own_layout_loads_too(tmp_path):
    trained = ie.create_model("googlenet_cifar", num_classes=7)
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": trained.state_dict()}, path)   # a checkpoint wrapping it
    model = ie.create_model("googlenet_cifar", num_classes=7, pretrained=path)
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match=r"fc.weight: \(7, .*\) != \(10, "):
        ie.create_model("googlenet_cifar", pretrained=path)


def test_bad_pretrained_values_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="googlenet has no published weights.*googlenet_bn"):
        ie.create_model("googlenet", pretrained=True)
    with pytest.raises(ValueError, match=r"weights for inception_v4, not inception_v3"):
        ie.create_model("inception_v3", pretrained="timm.inception_v4")
    with pytest.raises(ValueError, match="no weights file at"):
        ie.create_model("inception_v3", pretrained=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="neither published weights"):
        ie.create_model("inception_v3", pretrained="torchvision.inception_v33")
    with pytest.raises(TypeError, match="pretrained must be True"):
        ie.create_model("inception_v3", pretrained=3)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read by torch.load"):
        ie.create_model("inception_v3", pretrained=garbage)
    notes = tmp_path / "weights.txt"
    notes.write_text("x")
    with pytest.raises(ValueError, match=r"end in \.pth"):
        ie.create_model("inception_v3", pretrained=notes)


# -- downloads through torch.hub, served from 127.0.0.1 -----------------------------------------------
class _Server:
    """A file server on 127.0.0.1 for one test, counting the requests it answers."""

    def __init__(self, root: Path):
        self.requests = 0
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                super().do_GET()

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch.hub's cache in a temporary folder, and a server of the files put in ``served``."""
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    served = tmp_path / "served"
    served.mkdir()
    with _Server(served) as server:
        yield served, server, tmp_path / "torch" / "hub" / "checkpoints"


def _serve_as(monkeypatch, weights: str, url: str) -> None:
    monkeypatch.setitem(P.PRETRAINED[weights], "url", url)
    monkeypatch.setitem(P.PRETRAINED[weights], "file_name", url.rsplit("/", 1)[1])


def test_download_loads_and_caches(hub, monkeypatch):
    served, server, cache = hub
    key = "torchvision.googlenet"
    sd = _fingerprint(key, torch.float32)
    tmp = served / "tmp.pth"
    torch.save(sd, tmp)
    name = f"googlenet-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"  # torch.hub's naming
    tmp.rename(served / name)
    _serve_as(monkeypatch, key, server.url + name)

    model = ie.create_model("googlenet_bn", pretrained=True, progress=False, transform_input=False)
    logits = _logits(model, key)
    assert torch.allclose(logits.double(), _expected(key, logits.shape), rtol=1e-4, atol=1e-4)
    assert sorted(p.name for p in cache.iterdir()) == [name]
    assert model.pretrained_cfg["url"] == server.url + name
    # The published weights' own options: transform_input=True, as torchvision's builder sets.
    again = ie.create_model("googlenet_bn", pretrained="torchvision.googlenet", progress=False)
    assert server.requests == 1 and again.transform_input is True      # read from the cache
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in again.state_dict().items())


def test_download_with_the_wrong_hash_leaves_nothing(hub, monkeypatch):
    served, server, cache = hub
    key = "torchvision.googlenet"
    torch.save(_fingerprint("pretrainedmodels.bninception", torch.float32), served / "googlenet-1378be20.pth")
    _serve_as(monkeypatch, key, server.url + "googlenet-1378be20.pth")
    with pytest.raises(P.DownloadError, match="SHA-256 does not start with 1378be20.*Nothing was saved"):
        ie.create_model("googlenet_bn", pretrained=True, progress=False)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("weights, body", [
    ("facenet_pytorch.InceptionResnetV1", "truncated"),   # a .pt without a hash in its name
    ("timm.inception_v4", "html"),                         # an error page saved as .safetensors
])
def test_corrupt_download_is_removed(hub, monkeypatch, tmp_path, weights, body):
    pytest.importorskip("safetensors") if weights.startswith("timm") else None
    served, server, cache = hub
    name = P.PRETRAINED[weights]["url"].rsplit("/", 1)[1]
    if body == "truncated":
        whole = tmp_path / "whole.pt"
        torch.save({"w": torch.arange(50_000.0)}, whole)
        (served / name).write_bytes(whole.read_bytes()[:100_000])
    else:
        (served / name).write_text("<html><body>Too many requests</body></html>")
    _serve_as(monkeypatch, weights, server.url + name)
    with pytest.raises(P.DownloadError, match=r"could not be read and was removed from the cache.*PATH"):
        ie.create_model(P.PRETRAINED[weights]["model"], pretrained=weights, progress=False)
    assert list(cache.iterdir()) == []


def test_offline_error_says_where_to_put_the_file(hub, monkeypatch):
    served, server, cache = hub
    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/inception_v3_google-0cc3c7bd.pth"
    monkeypatch.setitem(P.PRETRAINED["torchvision.inception_v3"], "url", url)
    with pytest.raises(P.DownloadError) as err:
        ie.create_model("inception_v3", pretrained=True, progress=False)
    text = str(err.value)
    assert url in text and str(cache / "inception_v3_google-0cc3c7bd.pth") in text
    assert 'pretrained="PATH"' in text
    assert list(cache.iterdir()) == []
    # A 404 from a server reads the same.
    _serve_as(monkeypatch, "torchvision.inception_v3", server.url + "inception_v3_google-0cc3c7bd.pth")
    with pytest.raises(P.DownloadError, match="404.*pretrained=\"PATH\""):
        ie.create_model("inception_v3", pretrained=True, progress=False)


# -- eval_transform (the torch path here; tests/book runs the torchvision path beside it) ------------
def _photo(h=300, w=400, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_eval_transform_follows_pretrainedmodels_for_bn_inception():
    # pretrainedmodels.utils.TransformImage: Resize(256) -> CenterCrop(224) -> ToTensor ->
    # ToSpaceBGR -> ToRange255 -> Normalize([104, 117, 128], [1, 1, 1]). At 256x256 the resize
    # is the identity, so the steps can be written out by hand.
    img = _photo(256, 256)
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).double() / 255
    x = x[[2, 1, 0], 16:240, 16:240] * 255
    expected = (x - torch.tensor([104.0, 117, 128]).view(3, 1, 1)) / 1.0
    out = ie.eval_transform("pretrainedmodels.bninception", backend="torch")(img)
    assert out.shape == (3, 224, 224) and torch.allclose(out.double(), expected, atol=1e-4)


def test_eval_transform_follows_facenet_standardization():
    img = _photo(160, 160)
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).double()
    out = ie.eval_transform("facenet_pytorch.InceptionResnetV1", backend="torch")(img)
    assert torch.allclose(out.double(), (x - 127.5) / 128.0, atol=1e-5)  # fixed_image_standardization


def test_eval_transform_sizes_and_inputs():
    t = ie.eval_transform("torchvision.inception_v3", backend="torch")
    img = _photo(300, 400)
    out = t(img)
    assert out.shape == (3, 299, 299) and out.dtype == torch.float32
    pixels = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
    assert torch.equal(t(pixels), out) and torch.allclose(t(pixels / 255.0), out, atol=1e-5)
    assert t(torch.stack([pixels, pixels])).shape == (2, 3, 299, 299)
    # A flat colour stays that colour: the output is the normalized colour everywhere.
    flat = Image.new("RGB", (500, 333), (255, 0, 51))
    want = (torch.tensor([1.0, 0.0, 0.2]) - torch.tensor(P.IMAGENET_MEAN)) / torch.tensor(P.IMAGENET_STD)
    assert torch.allclose(t(flat), want.view(3, 1, 1).expand(3, 299, 299), atol=1e-5)
    assert t(Image.new("L", (299, 299), 128)).shape == (3, 299, 299)   # greyscale -> RGB


def test_eval_transform_bad_inputs():
    t = ie.eval_transform("timm.inception_v4", backend="torch")
    with pytest.raises(ValueError, match="channels first"):
        t(torch.zeros(299, 299, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="divide by 255"):
        t(torch.full((3, 10, 10), 200.0))
    with pytest.raises(TypeError, match="PIL image or an image tensor"):
        t(np.zeros((10, 10, 3)))
    with pytest.raises(ValueError, match="backend"):
        ie.eval_transform("timm.inception_v4", backend="cv2")
    with pytest.raises(ValueError, match="no published weights called"):
        ie.eval_transform("timm.inception_v5")


def test_a_broken_torchvision_falls_back_to_torch(tmp_path, monkeypatch):
    # A torchvision built for another torch fails at import with a RuntimeError
    # ("operator torchvision::nms does not exist"), not an ImportError.
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ie.eval_transform("torchvision.googlenet").backend == "torch"
    with pytest.raises(ImportError, match="needs torchvision"):
        ie.eval_transform("torchvision.googlenet", backend="torchvision")
