"""What a network costs: parameters and multiply-adds, counted and derived.

Units. The papers count **multiply-adds**: one multiplication plus one addition is 1
("1.5 billion multiply-adds", Szegedy et al. 2015, Sec. 1). fvcore counts the same unit and
calls it "flops"; ``torch.utils.flop_counter`` counts 2 per multiply-add (one for each
operation). Everything here returns multiply-adds (1 MAC = 1), except :func:`count_flops`,
which returns FLOPs = 2 x multiply-adds.

Two kinds of function live here:

* **Counters** run a model. :func:`count_macs` is fvcore's ``FlopCountAnalysis`` (what timm
  and torchvision publish: torchvision's "5.713 GFLOPS" for Inception-v3 is conv + linear in
  this unit), :func:`count_flops` is PyTorch's ``FlopCounterMode`` (a cross-check),
  :func:`stage_table` splits the count over the rows of a model's stage table.
* **Formulas** say *why* a design is cheap, from the papers: a convolution's cost
  (:func:`conv_macs`), the 1x1 bottleneck (:func:`bottleneck_cost`), factorized convolutions
  (:func:`factorization_cost`), grid reduction (:func:`grid_reduction_cost`). Each is tested
  against the counter on the layers it describes (``tests/test_cost.py``).
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from contextlib import contextmanager
from typing import NamedTuple, Sequence

import torch
from torch import nn

#: How every table and figure names the unit.
MAC_UNIT = "multiply-adds (1 MAC = 1; FLOPs = 2 x)"
COUNTERS = ("fvcore", "fast")


# ------------------------------------------------------------------------------------------
# Counting parameters
# ------------------------------------------------------------------------------------------
def _aux_params(model: nn.Module) -> set[int]:
    aux = getattr(model, "aux", None)
    return {id(p) for p in aux.parameters()} if isinstance(aux, nn.Module) else set()


def count_params(model: nn.Module, trainable_only: bool = False, with_aux: bool = True) -> int:
    """Number of parameters (nanoGPT's ``get_num_params``; tied tensors counted once).

    ``with_aux=False`` leaves out the auxiliary heads, which only training uses: the papers'
    parameter counts are of the inference network (GoogLeNet "6.8 M" without its two heads;
    torchvision's GoogLeNet has 13.0 M with them, 6.6 M without).
    ``trainable_only``: count only tensors with ``requires_grad`` (e.g. after freezing a trunk).
    """
    skip = set() if with_aux else _aux_params(model)
    seen, total = set(), 0
    for p in model.parameters():  # parameters() already yields a shared tensor once
        if id(p) in seen or id(p) in skip or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


# ------------------------------------------------------------------------------------------
# Counting multiply-adds
# ------------------------------------------------------------------------------------------
def _input_shape(model: nn.Module, input_size) -> tuple[int, ...]:
    """One sample's shape: a side ``299`` or ``(H, W)`` -> ``(in_chans, H, W)``; any other
    tuple is taken as it is (``(3, 299, 299)``, or ``(1000,)`` for a linear layer)."""
    chans = getattr(model, "in_chans", 3)
    try:
        if isinstance(input_size, int):
            return (chans, input_size, input_size)
        size = tuple(int(s) for s in input_size)
    except (TypeError, ValueError):
        size = ()
    if not size or min(size) < 1:
        raise ValueError(f"input_size must be a side (299), (H, W) or one sample's shape (3, 299, 299); "
                         f"got {input_size!r}")
    return (chans, *size) if len(size) == 2 else size


class _WithAux(nn.Module):
    """Runs an Inception model's trunk *with* its auxiliary heads, in eval mode.

    What training pays for the heads, counted with inference rules (BatchNorm folded as in
    eval), so that with and without aux differ by exactly the heads."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return tuple(self.model.forward_with_aux(x))  # (logits, aux logits): a plain tuple for jit.trace


def _runner(model: nn.Module, with_aux: bool) -> tuple[nn.Module, str]:
    """The module to run, and the prefix it adds to the model's module names."""
    if with_aux and len(getattr(model, "aux", ())) and hasattr(model, "forward_with_aux"):
        return _WithAux(model), "model."
    return model, ""


@contextmanager
def _eval_mode(model: nn.Module):
    """Eval mode for the count (BatchNorm uses running statistics, aux heads stay off, no
    running-statistics update), then every submodule's own mode back."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


@contextmanager
def _one_thread():
    """Count on one CPU thread. The count is a single small forward pass; measured on a shared
    2-core machine, two threads took 4-10 s for Inception-v3 (the threads wait on each other
    while other processes hold the cores), one thread 0.7 s."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _check_input(model: nn.Module, shape: tuple[int, int, int]) -> None:
    # Bad sizes fail here with the model's own message, not deep inside a trace.
    if hasattr(model, "check_input"):
        model.check_input(torch.empty(1, *shape, device="meta"))


class _Count(NamedTuple):
    total: int
    by_operator: Counter
    by_module: dict          # module name -> multiply-adds, ancestors included ("" = all)
    shapes: dict             # module name -> output shape (without the batch dimension)


def _watch_shapes(runner: nn.Module, names: Sequence[str]):
    shapes, handles = {}, []
    modules = dict(runner.named_modules())
    for name in names:
        def hook(module, args, out, name=name):
            out = out[0] if isinstance(out, tuple) else out
            shapes[name] = tuple(int(s) for s in out.shape[1:])  # ints, also under jit tracing
        handles.append(modules[name].register_forward_hook(hook))
    return shapes, handles


def _count_fvcore(runner: nn.Module, shape, watch: Sequence[str]) -> _Count:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # importing fvcore scripts functions: torch.jit's deprecation
        from fvcore.nn import FlopCountAnalysis

    param = next(runner.parameters(), None)
    x = torch.zeros(1, *shape, dtype=param.dtype if param is not None else torch.float32,
                    device=param.device if param is not None else "cpu")
    shapes, handles = _watch_shapes(runner, watch)
    try:
        with warnings.catch_warnings(), torch.no_grad(), _one_thread():
            warnings.simplefilter("ignore")  # jit tracer warnings: notebooks print nothing
            analysis = (FlopCountAnalysis(runner, x).unsupported_ops_warnings(False)
                        .uncalled_modules_warnings(False).tracer_warnings("none"))
            total = analysis.total()
            by_operator, by_module = analysis.by_operator(), analysis.by_module()
    finally:
        for h in handles:
            h.remove()
    return _Count(int(total), Counter({k: int(v) for k, v in by_operator.items()}),
                  {k: int(v) for k, v in by_module.items()}, shapes)


# -- the fast counter: fvcore's rules, applied to shapes only ---------------------------------
def _mm_macs(a, b, *rest):
    return math.prod(a.shape) * b.shape[-1]


def _norm_macs(x, affine: bool, training: bool) -> int:
    # fvcore's batchnorm_flop_jit / norm_flop_counter: eval BN is a per-element scale (and
    # shift when affine); training BN (and group/layer norm) "5 is just a rough estimate".
    if not training:
        return x.numel() * (2 if affine else 1)
    return x.numel() * (5 if affine else 4)


def _arg(args, kwargs, index, name, default=None):
    return args[index] if len(args) > index else kwargs.get(name, default)


_F = torch.nn.functional
_MATMULS = {torch.matmul: "matmul", torch.Tensor.matmul: "matmul", torch.Tensor.__matmul__: "matmul",
            torch.mm: "mm", torch.Tensor.mm: "mm", torch.bmm: "bmm", torch.Tensor.bmm: "bmm"}
_NORMS = {_F.group_norm: (2, "weight"), _F.layer_norm: (2, "weight"), _F.instance_norm: (3, "weight")}


class _ShapeCounter(torch.overrides.TorchFunctionMode):
    """Counts what fvcore counts, op by op, from tensor shapes alone.

    Runs on PyTorch's ``meta`` device (no arithmetic), and skips BatchNorm's computation
    (a per-channel affine map keeps the shape; on ``meta`` it is a slow Python decomposition).
    ``tests/test_cost.py`` holds it equal to fvcore on every registered model.
    """

    def __init__(self):
        super().__init__()
        self.stack = [""]
        self.by_leaf: Counter = Counter()   # (module name, op) -> multiply-adds

    def _add(self, op: str, n: int) -> None:
        self.by_leaf[(self.stack[-1], op)] += int(n)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        F = _F
        if func is F.batch_norm:  # fvcore: aten::batch_norm
            x = args[0]
            self._add("batch_norm", _norm_macs(x, _arg(args, kwargs, 3, "weight") is not None,
                                               bool(_arg(args, kwargs, 5, "training", False))))
            return torch.empty_like(x)
        if func in _NORMS:  # fvcore: "affine" when the weight is given
            index, name = _NORMS[func]
            self._add(func.__name__, _norm_macs(args[0], _arg(args, kwargs, index, name) is not None, True))
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        if func in (torch.conv1d, torch.conv2d, torch.conv3d):
            w = _arg(args, kwargs, 1, "weight")
            self._add("conv", out.numel() // w.shape[0] * w.numel())
        elif func is F.linear:
            x, w = args[0], _arg(args, kwargs, 1, "weight")
            self._add("linear", math.prod(x.shape) * w.shape[0])
        elif func is F.adaptive_avg_pool2d:
            self._add("adaptive_avg_pool2d", args[0].numel())
        elif func in _MATMULS:  # named as fvcore names them (the aten op)
            self._add(_MATMULS[func], _mm_macs(*args))
        elif func in (torch.addmm, torch.Tensor.addmm):
            self._add("addmm", _mm_macs(*args[1:]))
        return out


def _run_on_meta(runner: nn.Module, shape) -> None:
    """One forward pass of a batch of one on the ``meta`` device: shapes, no arithmetic.

    A model on another device runs with meta stand-ins for its parameters and buffers
    (``torch.func.functional_call``), so it is neither copied nor changed."""
    from torch.func import functional_call

    tensors = [*runner.named_parameters(remove_duplicate=False), *runner.named_buffers(remove_duplicate=False)]
    with torch.device("meta"):  # tensors a forward creates (torch.zeros(...)) are shapes too
        x = torch.empty(1, *shape)
        if all(t.is_meta for _, t in tensors):
            runner(x)
        else:
            functional_call(runner, {n: torch.empty_like(t, device="meta") for n, t in tensors}, (x,))


def _count_fast(runner: nn.Module, shape, watch: Sequence[str]) -> _Count:
    names = {m: n for n, m in runner.named_modules()}
    counter = _ShapeCounter()

    def enter(module, args):
        counter.stack.append(names.get(module, counter.stack[-1]))

    def leave(module, args, out):
        counter.stack.pop()

    handles = []
    for module in names:
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    shapes, shape_handles = _watch_shapes(runner, watch)
    try:
        with warnings.catch_warnings(), torch.no_grad(), counter:
            warnings.simplefilter("ignore")
            _run_on_meta(runner, shape)
    finally:
        for h in handles + shape_handles:
            h.remove()
    by_operator, by_module = Counter(), Counter({"": 0})
    for (name, op), n in counter.by_leaf.items():
        by_operator[op] += n
        parts = name.split(".") if name else []
        for i in range(len(parts) + 1):
            by_module[".".join(parts[:i])] += n
    return _Count(by_module[""], by_operator, dict(by_module), shapes)


def _count(model: nn.Module, input_size, with_aux: bool, counter: str, watch=()) -> tuple[_Count, str]:
    if counter not in COUNTERS:
        raise ValueError(f"counter must be one of {', '.join(map(repr, COUNTERS))}; got {counter!r}")
    shape = _input_shape(model, input_size)
    with _eval_mode(model):
        _check_input(model, shape)
        runner, prefix = _runner(model, with_aux)
        watch = [prefix + w for w in watch]
        count = (_count_fvcore if counter == "fvcore" else _count_fast)(runner, shape, watch)
    return count, prefix


#: What the papers count as a network's "multiply-adds": convolutions and fully connected
#: layers (GoogLeNet Sec. 1's "1.5 billion multiply-adds", Rethinking's "Cost Bn Ops"),
#: the figure torchvision publishes as "GFLOPS". Pass as ``count_macs(..., ops=PAPER_OPS)``.
PAPER_OPS = ("conv", "linear")
#: The operator names the counters report (fvcore's names; the fast counter uses the same).
OPERATORS = ("conv", "linear", "batch_norm", "group_norm", "layer_norm", "instance_norm",
             "adaptive_avg_pool2d", "matmul", "mm", "bmm", "addmm", "einsum",
             "upsample_nearest2d", "upsample_bilinear2d", "grid_sampler")


def _check_ops(ops) -> tuple[str, ...]:
    if isinstance(ops, str):
        ops = (ops,)
    ops = tuple(ops)
    unknown = [o for o in ops if o not in OPERATORS]
    if not ops or unknown:
        raise ValueError(f"ops names the operators to add up, e.g. ops=('conv', 'linear') (what the "
                         f"papers count); unknown: {unknown or 'none given'}. Known: {', '.join(OPERATORS)}")
    return ops


def count_macs(model: nn.Module, input_size=(3, 299, 299), with_aux: bool = False,
               by_operator: bool = False, counter: str = "fvcore", ops: Sequence[str] | None = None):
    """Multiply-adds of one forward pass of one image (1 multiply-add = 1).

    Counted by fvcore's ``FlopCountAnalysis`` (``counter="fvcore"``), the figure timm and the
    reference tables publish: convolutions and fully connected layers (bias additions not
    counted), plus BatchNorm (2 per element in eval: scale and shift) and adaptive average
    pooling (1 per input element); max/avg pooling, ReLU and concatenation count 0. The
    papers count convolutions and fully connected layers only: ``ops=("conv", "linear")``
    (:data:`PAPER_OPS`) adds up only those operators; ``by_operator=True`` returns the
    per-operator ``Counter`` (``'conv'``, ``'linear'``, ``'batch_norm'``, ...).

    The model is counted in eval mode, as the papers report inference cost; its own mode is
    restored afterwards. ``with_aux=True`` also runs the auxiliary heads (training cost; the
    heads counted with the same inference rules).

    ``input_size``: ``(C, H, W)``, ``(H, W)`` or one side. ``counter="fast"`` applies
    fvcore's rules to tensor shapes on PyTorch's ``meta`` device instead of tracing a real
    forward pass: the same number (tested on every model), without the arithmetic.
    """
    if ops is not None:
        if by_operator:
            raise ValueError("pass either ops=(...) (one total over those operators) or by_operator=True "
                             "(every operator's count), not both")
        ops = _check_ops(ops)
    count, _ = _count(model, input_size, with_aux, counter)
    if ops is not None:
        return sum(count.by_operator.get(o, 0) for o in ops)
    return count.by_operator if by_operator else count.total


def count_flops(model: nn.Module, input_size=(3, 299, 299), with_aux: bool = False) -> int:
    """FLOPs as PyTorch's ``torch.utils.flop_counter.FlopCounterMode`` counts them.

    2 FLOPs per multiply-add, and only matrix-multiply-like operators (convolution, linear,
    matmul): so ``count_flops == 2 * (conv + linear)`` of :func:`count_macs`'s
    ``by_operator`` (BatchNorm and pooling are not in it). A second, independent counter to
    check the first against; run on the ``meta`` device (shapes only).
    """
    from torch.utils.flop_counter import FlopCounterMode

    shape = _input_shape(model, input_size)
    with _eval_mode(model):
        _check_input(model, shape)
        runner, _ = _runner(model, with_aux)
        with warnings.catch_warnings(), torch.no_grad(), FlopCounterMode(display=False) as flops:
            warnings.simplefilter("ignore")
            _run_on_meta(runner, shape)
    return int(flops.get_total_flops())


# ------------------------------------------------------------------------------------------
# The per-stage table
# ------------------------------------------------------------------------------------------
def _shape_text(shape: tuple) -> str:
    return " x ".join(str(s) for s in shape)


def stage_table(model: nn.Module, size: int | None = None, with_aux: bool = False, counter: str = "fvcore"):
    """One row per row of the model's stage table: output shape, parameters, multiply-adds.

    Columns: ``stage`` (the name in ``model.features``), ``label`` (the paper's name for the
    row), ``kind``, ``output`` (C x H x W for one image), ``params``, ``multiply-adds``
    (1 MAC = 1, counted by :func:`count_macs`). Then a ``head`` row (global pool, pre-logits,
    classifier), with ``with_aux=True`` one row per auxiliary head, and a ``total`` row equal
    to ``count_params(model, with_aux=with_aux)`` and ``count_macs(model, with_aux=with_aux)``.
    ``size``: input side in pixels (default: the model's native ``default_size``).
    """
    import pandas as pd

    stages = getattr(model, "stages", None)
    if not stages:
        raise ValueError("stage_table needs an inception_edu model with a stage table (model.stages); "
                         "for any other module use count_params and count_macs")
    size = size or model.default_size
    aux_names = list(model.aux) if with_aux else []
    watch = [f"features.{s.name}" for s in stages] + [f"aux.{a}" for a in aux_names] + ["fc"]
    count, prefix = _count(model, size, with_aux, counter, watch)

    def macs(name: str) -> int:
        return count.by_module.get(prefix + name, 0)

    def params(module: nn.Module) -> int:
        return count_params(module)

    rows = []
    for s in stages:
        out = count.shapes.get(prefix + f"features.{s.name}", ())
        rows.append((s.name, s.label, s.kind, _shape_text(out), params(s.module), macs(f"features.{s.name}")))
    head_params = params(model.pre_logits) + params(model.fc)
    head_macs = sum(macs(n) for n in ("global_pool", "head_drop", "pre_logits", "fc"))
    # Name the head's parts that are really there (NIN's head is the average pool alone).
    parts = ["global avg pool"] + [what for what, m in (("dropout", model.head_drop), ("projection", model.pre_logits),
                                                         ("linear", model.fc))
                                   if not isinstance(m, nn.Identity) and not (what == "dropout" and m.p == 0)]
    rows.append(("head", ", ".join(parts), "classifier",
                 _shape_text(count.shapes.get(prefix + "fc", (model.num_classes,))), head_params, head_macs))
    for a in aux_names:
        rows.append((f"aux.{a}", f"auxiliary classifier on {a}", "auxiliary",
                     _shape_text(count.shapes.get(prefix + f"aux.{a}", ())), params(model.aux[a]), macs(f"aux.{a}")))
    total_params = count_params(model, with_aux=with_aux)
    other_params = total_params - sum(r[4] for r in rows)
    other_macs = count.total - sum(r[5] for r in rows)
    if other_params or other_macs:  # anything outside the stages and heads (none in our models)
        rows.append(("other", "outside the stage table", "", "", other_params, other_macs))
    rows.append(("total", "", "", "", total_params, count.total))
    return pd.DataFrame(rows, columns=["stage", "label", "kind", "output", "params", "multiply-adds"])


# ------------------------------------------------------------------------------------------
# The formulas
# ------------------------------------------------------------------------------------------
def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


def conv_macs(c_in: int, c_out: int, k, out_hw, groups: int = 1) -> int:
    """Multiply-adds of one convolution: ``k_h * k_w * C_in * C_out * H_out * W_out``.

    Every output value (``C_out * H_out * W_out`` of them) is a dot product of a
    ``k_h x k_w x C_in`` window with one filter (Szegedy et al. 2016, Sec. 3.1, counts a
    5x5 and a 3x3 filter this way: "25/9 = 2.78 times more expensive"). ``k`` and ``out_hw``
    are an int or an ``(h, w)`` pair; ``groups`` divides ``C_in``. The bias adds are not
    counted (nor by fvcore).
    """
    (kh, kw), (h, w) = _pair(k), _pair(out_hw)
    return kh * kw * (c_in // groups) * c_out * h * w


def conv_params(c_in: int, c_out: int, k, bias: bool = False, groups: int = 1) -> int:
    """Weights of one convolution: ``k_h * k_w * C_in * C_out`` (+ ``C_out`` biases).

    Independent of the grid: the same filters slide over every position."""
    kh, kw = _pair(k)
    return kh * kw * (c_in // groups) * c_out + (c_out if bias else 0)


def conv_out_side(side: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """Output side of a convolution or pooling window: ``floor((side + 2p - k) / s) + 1``."""
    return (side + 2 * padding - k) // stride + 1


class Comparison(NamedTuple):
    """Cost of a design (``before``) and of its cheaper replacement (``after``)."""

    before_macs: int
    after_macs: int
    before_params: int
    after_params: int

    @property
    def ratio(self) -> float:
        """``after / before`` in multiply-adds (e.g. 18/25 = 0.72 for 5x5 -> two 3x3)."""
        return self.after_macs / self.before_macs

    @property
    def savings(self) -> float:
        """Fraction of the multiply-adds saved, ``1 - ratio`` (0.28 = "28 % cheaper")."""
        return 1 - self.ratio

    @property
    def speedup(self) -> float:
        """``before / after``: how many times cheaper the replacement is."""
        return self.before_macs / self.after_macs


def bottleneck_cost(c_in: int, c_mid: int, c_out: int, k: int, hw) -> Comparison:
    """A ``k x k`` convolution ``C_in -> C_out`` alone vs after a 1x1 reduction to ``C_mid``.

    GoogLeNet, Sec. 4: "1x1 convolutions are used to compute reductions before the expensive
    3x3 and 5x5 convolutions" (the 1x1 convolutions of Network in Network, Lin et al. 2013).
    Per output position, ``k^2 C_in C_out`` becomes ``C_in C_mid + k^2 C_mid C_out``, so the
    cost falls by the factor ``k^2 C_in C_out / (C_in C_mid + k^2 C_mid C_out)``, roughly
    ``C_in / C_mid`` when ``C_mid`` is small. Both versions are padded to keep the ``hw`` grid.
    Example: GoogLeNet's inception (3a) 5x5 branch (:data:`INCEPTION_3A_5X5`).
    """
    before = conv_macs(c_in, c_out, k, hw)
    after = conv_macs(c_in, c_mid, 1, hw) + conv_macs(c_mid, c_out, k, hw)
    return Comparison(before, after, conv_params(c_in, c_out, k),
                      conv_params(c_in, c_mid, 1) + conv_params(c_mid, c_out, k))


#: GoogLeNet, Table 1, inception (3a): a 28x28x192 input, "#5x5 reduce" 16, "#5x5" 32.
#: ``bottleneck_cost(**INCEPTION_3A_5X5)``: 120,422,400 multiply-adds without the reduction,
#: 12,443,648 with it (9.7x fewer).
INCEPTION_3A_5X5 = dict(c_in=192, c_mid=16, c_out=32, k=5, hw=28)


def fc_bottleneck_params(n_in: int = 10**4, n_out: int = 10**4, width: int = 100) -> Comparison:
    """A fully connected ``n_in -> n_out`` layer vs the same through a ``width``-unit bottleneck.

    The GoogLeNet lecture notes' example (from "Lec. 9, Generalization"): 10^4 -> 10^4 is
    10^8 weights; through 100 units, 10^4 x 100 + 100 x 10^4 = 2 x 10^6. A 1x1 convolution
    is exactly this layer applied at every position (Lin et al. 2013), so the saving carries
    over to the channels of a feature map. For one input vector multiply-adds equal weights.
    """
    before, after = n_in * n_out, n_in * width + width * n_out
    return Comparison(before, after, before, after)


def factorization_cost(n: int, c_in: int, c_out: int, hw, kind: str = "stacked",
                       c_mid: int | None = None) -> Comparison:
    """An ``n x n`` convolution vs its factorization (Szegedy et al. 2016, Sec. 3).

    * ``kind="stacked"`` (Sec. 3.1, Fig. 1): ``(n - 1) / 2`` stacked 3x3 convolutions see
      the same ``n x n`` window. For 5x5 -> two 3x3 the cost is ``(9 + 9) / 25`` = 0.72:
      "a relative gain of 28 %" (with equal widths, ``c_mid = c_in = c_out``).
    * ``kind="asymmetric"`` (Sec. 3.2, Fig. 3): a ``1 x n`` then an ``n x 1`` convolution,
      ``2n`` instead of ``n^2`` weights per channel pair: ``2 / n`` of the cost, "33 % cheaper"
      for 3x3, 71 % for 7x7.

    ``c_mid`` is the width between the factors (default ``c_out``). All layers keep the
    ``hw`` grid (padded).
    """
    if n < 2:
        raise ValueError(f"factorizing needs a kernel of at least 2x2; got n={n}")
    c_mid = c_out if c_mid is None else c_mid
    if kind == "stacked":
        if n % 2 == 0:
            raise ValueError(f"stacked 3x3 convolutions cover odd windows (3, 5, 7, ...); got n={n}")
        layers = [(3, 3)] * ((n - 1) // 2)
    elif kind == "asymmetric":
        layers = [(1, n), (n, 1)]
    else:
        raise ValueError(f"kind must be 'stacked' or 'asymmetric'; got {kind!r}")
    widths = [c_in] + [c_mid] * (len(layers) - 1) + [c_out]
    after_macs = sum(conv_macs(widths[i], widths[i + 1], k, hw) for i, k in enumerate(layers))
    after_params = sum(conv_params(widths[i], widths[i + 1], k) for i, k in enumerate(layers))
    return Comparison(conv_macs(c_in, c_out, n, hw), after_macs, conv_params(c_in, c_out, n), after_params)


def kernel_cost_ratio(big: int = 5, small: int = 3) -> float:
    """How many times a ``big x big`` filter costs a ``small x small`` one at equal widths:
    ``big^2 / small^2``; 25/9 = 2.78 for 5x5 vs 3x3 (Szegedy et al. 2016, Sec. 3.1)."""
    return big * big / (small * small)


class GridOption(NamedTuple):
    """One way to go from ``d x d x k`` to ``d/2 x d/2 x 2k`` (Szegedy et al. 2016, Sec. 5)."""

    name: str
    macs: int
    params: int
    #: Shape (H, W, C) of the output.
    output: tuple[int, int, int]
    #: Elements of the narrowest tensor on the way (the "representational bottleneck").
    narrowest: int


GRID_OPTIONS = ("pool then expand", "expand then pool", "parallel stride-2")


def grid_reduction_cost(d: int, k: int, kernel: int = 1) -> list[GridOption]:
    """The three grid reductions of *Rethinking* Fig. 9 and 10, from ``d x d x k`` to
    ``d/2 x d/2 x 2k`` (``d/2`` rounded up; pooling windows padded as the convolutions).

    * **pool then expand** (Fig. 9 left): pool to ``d/2``, then a convolution ``k -> 2k``:
      ``2 (d/2)^2 k^2`` multiply-adds, but the representation shrinks to ``(d/2)^2 k``, a
      "representational bottleneck";
    * **expand then pool** (Fig. 9 right): a convolution ``k -> 2k`` on the large grid, then
      pool: ``2 d^2 k^2``, four times the cost;
    * **parallel stride-2** (Fig. 10): a stride-2 convolution ``k -> k`` beside a stride-2
      pool, concatenated: ``(d/2)^2 k^2``, cheaper still and no bottleneck.

    The paper states the costs for 1x1 convolutions (``kernel=1``); any ``kernel`` multiplies
    every option by ``kernel^2``. Pooling costs no multiply-adds.
    """
    half = (d + 1) // 2
    small = half * half
    return [
        GridOption("pool then expand", conv_macs(k, 2 * k, kernel, half), conv_params(k, 2 * k, kernel),
                   (half, half, 2 * k), small * k),        # pooled to (d/2)^2 k before expanding
        GridOption("expand then pool", conv_macs(k, 2 * k, kernel, d), conv_params(k, 2 * k, kernel),
                   (half, half, 2 * k), small * 2 * k),    # d^2 2k, then the output
        GridOption("parallel stride-2", conv_macs(k, k, kernel, half), conv_params(k, k, kernel),
                   (half, half, 2 * k), small * 2 * k),    # two (d/2)^2 k halves side by side
    ]
