"""Feature maps, tracing, compiling, checkpointing and the input rules, for every registered model.

References: the modules' own outputs (forward hooks), the shapes a forward pass gives, timm's
published ``feature_info``, torch.fx / torch.compile themselves, and torchvision's input rules
(``../shared/notes/toolchain.md``: its ``inception_v3`` takes 75x75 in eval with aux heads on).
"""
import copy
import math

import pytest
import torch
from torch import nn

import inception_edu as ie
from inception_edu.features import FeatureInfo, FeatureNet, feature_take_indices

MODELS = ie.list_models()


def _stage_outputs(model, x):
    """Each stage's output, recorded by forward hooks (torch's own mechanism)."""
    out = {}
    hooks = [stage.register_forward_hook(lambda m, i, o, n=name: out.__setitem__(n, o))
             for name, stage in model.features.named_children()]
    try:
        with torch.no_grad():
            model.forward_features(x)
    finally:
        for h in hooks:
            h.remove()
    return out


def _input(model, batch=2, side=None):
    s = side or model.min_size
    return torch.randn(batch, model.in_chans, s, s)


# -- feature_info ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_feature_info_is_what_a_forward_pass_gives(name):
    # Channels and reductions against the maps themselves. Shapes only, so on the meta device
    # at four times the native side, where input side / map side rounds to the exact stride.
    model = ie.create_model(name).eval()
    info = model.feature_info
    meta = copy.deepcopy(model).to("meta")
    side = 4 * model.default_size
    shapes = {n: t.shape for n, t in _stage_outputs(meta, torch.empty(1, model.in_chans, side, side,
                                                                       device="meta")).items()}
    names = [n for n, _ in model.features.named_children()]
    assert [fi["module"] for fi in info] == [f"features.{names[fi['stage']]}" for fi in info]
    reductions = [fi["reduction"] for fi in info]
    assert reductions == sorted(set(reductions)), "one tap per reduction, shallowest first"
    assert info[-1]["stage"] == len(names) - 1, "the last stage is always a tap"
    for fi in info:
        shape = shapes[names[fi["stage"]]]
        assert shape[1] == fi["num_chs"], fi
        assert 2 ** round(math.log2(side / shape[-1])) == fi["reduction"], fi
        # The last stage at its reduction: the next stage shrinks the grid (or there is none).
        nxt = fi["stage"] + 1
        if nxt < len(names):
            assert shapes[names[nxt]][-1] < shape[-1], fi
    assert model.feature_info[-1]["num_chs"] == model.num_features
    # nn.Module addresses: what torchvision's create_feature_extractor takes as return_nodes.
    modules = dict(model.named_modules())
    assert all(fi["module"] in modules for fi in info)


def test_feature_info_matches_timms_published_taps():
    # timm's own tables (huggingface/pytorch-image-models, timm/models/inception_v3.py and
    # inception_resnet_v2.py: self.feature_info = [dict(num_chs=..., reduction=..., module=...)]).
    timm_v3 = [(64, 2, "Conv2d_2b_3x3"), (192, 4, "Conv2d_4a_3x3"), (288, 8, "Mixed_5d"),
               (768, 16, "Mixed_6e"), (2048, 32, "Mixed_7c")]
    ours = [(fi["num_chs"], fi["reduction"], fi["module"]) for fi in ie.create_model("inception_v3").feature_info]
    assert ours == [(c, r, f"features.{m}") for c, r, m in timm_v3]
    # timm's inception_resnet_v2 taps 'repeat' and 'repeat_1', the Sequentials of the 10
    # block35 and 20 block17 modules, whose outputs are those of our last block of each.
    timm_irv2 = [(64, 2), (192, 4), (320, 8), (1088, 16), (1536, 32)]
    info = ie.create_model("inception_resnet_v2").feature_info
    assert [(fi["num_chs"], fi["reduction"]) for fi in info] == timm_irv2
    assert [fi["module"] for fi in info] == ["features.conv2d_2b", "features.conv2d_4a", "features.block35_10",
                                             "features.block17_20", "features.conv2d_7b"]


def test_feature_take_indices_follows_timm():
    assert feature_take_indices(5) == ([0, 1, 2, 3, 4], 4)
    assert feature_take_indices(5, 2) == ([3, 4], 4)
    assert feature_take_indices(5, [0, -1]) == ([0, 4], 4)
    assert feature_take_indices(5, (1, 2)) == ([1, 2], 2)
    for bad in (0, 6, [5], [-6], []):
        with pytest.raises(ValueError, match="taps|tap"):
            feature_take_indices(5, bad)
    for bad in ("1", 1.5, [1.0], True):
        with pytest.raises(TypeError):
            feature_take_indices(5, bad)


# -- forward_intermediates -------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_forward_intermediates_returns_the_tapped_stages_outputs(name):
    model = ie.create_model(name).eval()
    x = _input(model)
    ref = _stage_outputs(model, x)
    names = [n for n, _ in model.features.named_children()]
    taps = [names[fi["stage"]] for fi in model.feature_info]
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x), rtol=0, atol=0)
        assert len(maps) == len(taps)
        for m, t in zip(maps, taps):
            torch.testing.assert_close(m, ref[t], rtol=0, atol=0)
        # An int takes the last n taps; a list those, negative from the end.
        last2 = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [m.shape for m in last2] == [ref[t].shape for t in taps[-2:]]
        picked = model.forward_intermediates(x, indices=[0, -1], intermediates_only=True)
        torch.testing.assert_close(picked[0], ref[taps[0]], rtol=0, atol=0)
        torch.testing.assert_close(picked[1], ref[taps[-1]], rtol=0, atol=0)


def test_forward_intermediates_stop_early_runs_no_later_stage():
    model = ie.create_model("inception_v3").eval()
    x = _input(model)
    ran = []
    for n, stage in model.features.named_children():
        stage.register_forward_hook(lambda m, i, o, n=n: ran.append(n))
    with torch.no_grad():
        final, maps = model.forward_intermediates(x, indices=[1], stop_early=True)
    assert ran[-1] == "Conv2d_4a_3x3" == model.feature_info[1]["module"].split(".")[1]
    torch.testing.assert_close(final, maps[0], rtol=0, atol=0)
    assert "Mixed_7c" not in ran


def test_forward_intermediates_checks_its_input_and_arguments():
    model = ie.create_model("inception_v4").eval()
    with pytest.raises(ValueError, match="at least 75x75"):
        model.forward_intermediates(torch.randn(1, 3, 60, 60))
    with pytest.raises(ValueError, match="out of range"):
        model.forward_intermediates(_input(model), indices=[7])
    with pytest.raises(ValueError, match="NCHW"):
        model.forward_intermediates(_input(model), output_fmt="NHWC")


# -- features_only ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["inception_v3", "inception_resnet_v2", "googlenet", "nin_cifar"])
def test_features_only_gives_the_maps_of_the_full_network(name):
    full = ie.create_model(name).eval()
    n_taps = len(full.feature_info)
    feats = FeatureNet(copy.deepcopy(full), out_indices=(0, n_taps - 2)).eval()
    x = _input(full)
    with torch.no_grad():
        want = full.forward_intermediates(x, indices=[0, n_taps - 2], intermediates_only=True)
        got = feats(x)
    assert isinstance(got, list) and len(got) == 2
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
    assert isinstance(feats.feature_info, FeatureInfo)
    assert feats.feature_info.channels() == [g.shape[1] for g in got]
    assert feats.feature_info.reduction() == [full.feature_info[i]["reduction"] for i in (0, n_taps - 2)]
    # Cut after the last requested tap, and no head: fewer parameters, no classifier.
    assert len(feats.model.features) == full.feature_info[n_taps - 2]["stage"] + 1
    assert sum(p.numel() for p in feats.parameters()) < sum(p.numel() for p in full.parameters())
    assert not any(isinstance(m, nn.Linear) for m in feats.modules())


def test_create_model_features_only():
    feats = ie.create_model("inception_v3", features_only=True, out_indices=(2, 3, 4)).eval()
    assert isinstance(feats, FeatureNet)
    assert feats.feature_info.channels() == [288, 768, 2048]
    assert feats.feature_info.reduction() == [8, 16, 32]
    assert feats.feature_info.module_name() == ["features.Mixed_5d", "features.Mixed_6e", "features.Mixed_7c"]
    with torch.no_grad():
        maps = feats(torch.randn(1, 3, 299, 299))
    assert [tuple(m.shape[1:]) for m in maps] == [(288, 35, 35), (768, 17, 17), (2048, 8, 8)]
    every = ie.create_model("googlenet", features_only=True)
    assert every.out_indices == tuple(range(len(every.feature_info)))
    with pytest.raises(ValueError, match="features_only"):
        ie.create_model("inception_v3", out_indices=(1, 2))
    with pytest.raises(ValueError, match="out of range"):
        ie.create_model("inception_v3", features_only=True, out_indices=(9,))


# -- torch.fx and torch.compile --------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_symbolic_trace_works_and_eager_checks_still_raise(name):
    model = ie.create_model(name)
    traced_train = torch.fx.symbolic_trace(model)  # as built: training mode, aux heads included
    assert traced_train is not None
    model.eval()
    traced = torch.fx.symbolic_trace(model)
    x = _input(model)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)
    # torchvision's create_feature_extractor picks graph nodes by module name: the taps are nodes.
    targets = {n.target for n in traced.graph.nodes if n.op == "call_module"}
    names = [n for n, _ in model.features.named_children()]
    stage_modules = {f"features.{names[fi['stage']]}" for fi in model.feature_info}
    assert all(any(t == s or t.startswith(s + ".") for t in targets) for s in stage_modules)
    with pytest.raises(ValueError, match="input channels"):
        model(torch.randn(1, model.in_chans + 1, model.min_size, model.min_size))


@pytest.mark.parametrize("name", MODELS)
def test_compile_fullgraph_has_no_graph_break(name):
    # backend="eager": dynamo traces the whole forward into one graph (fullgraph=True fails
    # on any graph break) without spending time on code generation.
    torch._dynamo.reset()
    model = ie.create_model(name).eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = _input(model, batch=1)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=0)


def test_compile_in_training_mode_and_its_input_errors():
    torch._dynamo.reset()
    model = ie.create_model("inception_v3_cifar", aux_logits=True).train()
    out = torch.compile(model, fullgraph=True, backend="eager")(_input(model, side=model.aux_min_size))
    assert isinstance(out, ie.InceptionOutputs) and len(out.aux_logits) == 1
    # The checks run inside the compiled graph: the default compile raises our ValueError,
    # fullgraph's error carries its text.
    torch._dynamo.reset()
    model.eval()
    with pytest.raises(ValueError, match="at least 13x13"):
        torch.compile(model, backend="eager")(torch.randn(1, 3, 8, 8))
    with pytest.raises(Exception, match="at least 13x13"):
        torch.compile(model, fullgraph=True, backend="eager")(torch.randn(1, 3, 8, 8))


# -- gradient checkpointing ------------------------------------------------------------------------
def _loss(out):
    if isinstance(out, ie.InceptionOutputs):
        return out.logits.square().sum() + sum(a.square().sum() for a in out.aux_logits)
    return out.square().sum()


@pytest.mark.parametrize("name,kwargs", [("inception_v3_cifar", dict(aux_logits=True)),
                                         ("inception_resnet_cifar", {}),
                                         ("googlenet_cifar", dict(aux_logits=True))])
def test_grad_checkpointing_same_gradients_less_memory(name, kwargs):
    plain = ie.create_model(name, **kwargs).train()
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    x = torch.randn(4, 3, 32, 32)
    saved = {}
    for key, model in (("plain", plain), ("ckpt", ckpt)):
        sizes = []

        def pack(t, sizes=sizes):
            sizes.append(t.numel() * t.element_size())
            return t
        torch.manual_seed(1)  # the same dropout masks (checkpoint replays the RNG state)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(x)
        _loss(out).backward()
        saved[key] = sum(sizes)
    for (pn, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-6, atol=1e-7, msg=pn)
    # The recomputation in backward does not update BatchNorm's running statistics twice.
    for (bn, b), c in zip(plain.named_buffers(), ckpt.buffers()):
        torch.testing.assert_close(c, b, rtol=0, atol=0, msg=bn)
    assert saved["ckpt"] < saved["plain"] / 2, saved


def test_grad_checkpointing_switches_off_and_features_follow():
    model = ie.create_model("inception_resnet_cifar").train()
    model.set_grad_checkpointing(True)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    maps = model.forward_intermediates(x, intermediates_only=True)
    assert all(m.requires_grad for m in maps)
    model.set_grad_checkpointing(False)
    assert model.grad_checkpointing is False


# -- input rules (issue 13, section 4) -------------------------------------------------------------
def test_inception_v3_with_aux_takes_75_in_eval_like_torchvision():
    model = ie.create_model("inception_v3").eval()  # aux_logits=True, as torchvision builds it
    assert len(model.aux) == 1 and model.min_size == 75 and model.aux_min_size == 299
    with torch.no_grad():
        assert model(torch.randn(1, 3, 75, 75)).shape == (1, 1000)
    model.train()
    with pytest.raises(ValueError, match="training mode.*auxiliary heads.*299x299.*aux_logits=False"):
        model(torch.randn(2, 3, 298, 298))
    with pytest.raises(ValueError, match="auxiliary heads"):
        model.eval().forward_with_aux(torch.randn(2, 3, 298, 298))


WITH_AUX = ["googlenet", "googlenet_bn", "inception_v2", "inception_v3"]  # as built by default


def test_with_aux_lists_every_model_built_with_heads():
    assert WITH_AUX == [n for n in MODELS if len(ie.create_model(n).aux)]


@pytest.mark.parametrize("name", WITH_AUX)
def test_aux_min_size_is_tight_in_training(name):
    model = ie.create_model(name).train()
    s = model.aux_min_size
    assert s >= model.min_size
    out = model(torch.randn(2, model.in_chans, s, s))
    assert isinstance(out, ie.InceptionOutputs)
    with pytest.raises(ValueError, match="training mode" if s > model.min_size else f"at least {s}x{s}"):
        model(torch.randn(2, model.in_chans, s - 1, s - 1))
    model.check_input = lambda x: None  # one pixel less breaks a head (or the trunk) in torch
    if s > model.min_size:
        with pytest.raises((RuntimeError, ValueError)):
            model(torch.randn(2, model.in_chans, s - 1, s - 1))


def test_batch_of_one_in_training_says_what_to_do():
    model = ie.create_model("inception_v3").train()
    # The aux head's BatchNorm after its 5x5 "fully connected" conv sees one value per channel.
    with pytest.raises(ValueError, match=r"aux\.Mixed_6e.*\(1, 768, 1, 1\).*at least 2 images.*eval\(\)"):
        model(torch.randn(1, 3, 299, 299))
    # That is the case torch itself refuses, without our guard:
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        model.aux["Mixed_6e"](torch.randn(1, 768, 17, 17))
    # A batch of two trains; eval takes one; a network without such a layer trains on one.
    assert isinstance(model(torch.randn(2, 3, 299, 299)), ie.InceptionOutputs)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 299, 299)).shape == (1, 1000)
    small = ie.create_model("googlenet_cifar", aux_logits=True).train()
    assert isinstance(small(torch.randn(1, 3, 32, 32)), ie.InceptionOutputs)
    # facenet's Inception-ResNet-v1 has a BatchNorm1d after the pooled features.
    with pytest.raises(ValueError, match="pre_logits"):
        ie.create_model("inception_resnet_v1").train()(torch.randn(1, 3, 160, 160))
