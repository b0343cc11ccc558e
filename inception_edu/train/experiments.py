"""Experiments that measure: several seeds per variant, a table, curves, and a claim checked
against the seeds' spread.

    from inception_edu.train.experiments import run_seeds

    res = run_seeds("googlenet_cifar", {"aux heads": dict(aux_logits=True, aux_weight=0.3),
                                        "no aux heads": dict(aux_logits=False)},
                    seeds=(0, 1, 2), data="cluttered", epochs=4)
    res.table()                     # one row per variant and seed, then mean and std (in %)
    res.curves()                    # learning curves: each seed thin, the mean thick
    res.assert_better("aux heads", "no aux heads")   # the rule below, or AssertionError

A variant is one dict of options. Keys that are :class:`~inception_edu.train.Recipe` fields
(``lr``, ``label_smoothing``, ``aux_weight``, ``optimizer``, ...) go to :func:`fit`; every
other key goes to the model builder (``create_model(name, **options)`` for a registered
name, or your own ``build_model(**options)``).

Each run seeds Python, numpy and torch with its seed before the model is built (so the seed
changes the initialization and the shuffle order); the *data* stay fixed (``data_seed``), so
the spread over seeds is the spread of training, not of the test set.

The rule of :meth:`Results.compare`
-----------------------------------
With per-seed values ``a_1..a_n`` and ``b_1..b_m`` of a metric, ``d = mean(a) - mean(b)`` and
the standard error of that difference is Welch's ``se = sqrt(s_a^2 / n + s_b^2 / m)``
(``s`` the sample standard deviations, ``ddof=1``). "a is better than b" is claimed when
``d > k * se`` with ``k = 2`` by default -- about a one-sided 95 % test for 3 + 3 seeds
(Student's t at 4 degrees of freedom is 2.13) -- and "within noise" when ``|d| <= k * se``.
``se`` is floored at one test image's worth of accuracy (``100 / N_test`` points, scaled
like a standard error), so identical runs do not make any difference "significant".
``rule="range"`` asks for more: every seed of ``a`` beats every seed of ``b``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Callable, Mapping, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import seed_everything
from .data import Loaders, make_loaders
from .recipes import Recipe, get_recipe
from .trainer import NonFiniteLossError, Trainer, _progress_enabled, evaluate

#: Options a variant may carry that go to the recipe (the rest go to the model builder).
RECIPE_FIELDS = frozenset(f.name for f in fields(Recipe)) - {"name", "source"}
#: Metrics where smaller is better (the rest: larger is better).
LOWER_IS_BETTER = ("loss", "ece")


# -- a plain CNN with googlenet_cifar's cost ----------------------------------------------------
def plain_cnn(num_classes: int = 10, width_mult: float = 1.0, in_chans: int = 3) -> nn.Sequential:
    """A plain VGG-style CNN for 32x32 inputs with about ``googlenet_cifar``'s multiply-adds.

    conv 3x3 (16) -> pool -> conv 3x3 (32) x 2 -> pool -> conv 3x3 (64) x 2 -> global average
    pool -> linear: 7.5 M multiply-adds at 32x32 and ``width_mult=1`` (googlenet_cifar: 7.8 M),
    every conv Conv + BN + ReLU as in the library's networks. No branches, one kernel size: the
    baseline the cluttered task is tuned against.
    """
    from ..layers import conv_bn

    if width_mult <= 0:
        raise ValueError(f"width_mult must be positive; got {width_mult}")
    c1, c2, c3 = (max(1, round(c * width_mult)) for c in (16, 32, 64))
    return nn.Sequential(
        conv_bn(in_chans, c1, 3, padding=1),                      # N x 16 x 32 x 32
        nn.MaxPool2d(2),                                          # N x 16 x 16 x 16
        conv_bn(c1, c2, 3, padding=1), conv_bn(c2, c2, 3, padding=1),
        nn.MaxPool2d(2),                                          # N x 32 x 8 x 8
        conv_bn(c2, c3, 3, padding=1), conv_bn(c3, c3, 3, padding=1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),                    # N x 64
        nn.Linear(c3, num_classes))


# -- calibration --------------------------------------------------------------------------------
@torch.no_grad()
def logits_of(model: nn.Module, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode logits (N x K, main head) and labels of a whole loader, on the CPU."""
    from .losses import split_outputs

    was = model.training
    model.eval()
    device = next(model.parameters()).device
    zs, ys = [], []
    try:
        for x, y in loader:
            z, _ = split_outputs(model(x.to(device)))
            zs.append(z.float().cpu())
            ys.append(y)
    finally:
        model.train(was)
    return torch.cat(zs), torch.cat(ys)


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Temperature scaling (Guo et al. 2017, *On Calibration of Modern Neural Networks*,
    Sec. 4.2): the ``T > 0`` that minimizes the NLL of ``softmax(logits / T)``, by L-BFGS on
    ``log T`` -- fit it on validation logits, apply it to the test logits."""
    log_t = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100, line_search_fn="strong_wolfe")
    logits, targets = logits.detach().float(), targets.long()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def calibration(model: nn.Module, loaders: Loaders, n_bins: int = 10) -> dict:
    """A ``measure`` for :func:`run_seeds`: test ECE (in %) before and after temperature
    scaling fitted on the validation split, the temperature, and the test NLL after it."""
    from ..figures.label_smoothing import expected_calibration_error

    val_z, val_y = logits_of(model, loaders.val)
    test_z, test_y = logits_of(model, loaders.test)
    t = fit_temperature(val_z, val_y)
    return {"test_ece": 100 * expected_calibration_error(test_z.softmax(1).numpy(), test_y.numpy(), n_bins),
            "test_ece_ts": 100 * expected_calibration_error((test_z / t).softmax(1).numpy(),
                                                            test_y.numpy(), n_bins),
            "temperature": t,
            "test_loss_ts": float(F.cross_entropy(test_z / t, test_y))}


# -- results ------------------------------------------------------------------------------------
@dataclass
class Run:
    """One (variant, seed): its history rows, final metrics (accuracies as fractions), time."""

    variant: str
    seed: int
    history: list[dict]
    metrics: dict
    seconds: float
    diverged: bool = False


class Comparison(NamedTuple):
    """What :meth:`Results.compare` measured (in the metric's units, % for accuracies)."""

    a: str
    b: str
    metric: str
    mean_a: float
    mean_b: float
    diff: float          # mean_a - mean_b, signed so that positive = a is better
    se: float            # Welch's standard error of the difference (floored)
    k: float
    better: bool         # diff > k * se (or, rule='range', every a beats every b)
    within_noise: bool   # |diff| <= k * se

    def __str__(self) -> str:
        verdict = ("better" if self.better else "within noise" if self.within_noise else "worse")
        return (f"{self.metric}: {self.a} {self.mean_a:.2f} vs {self.b} {self.mean_b:.2f}; "
                f"difference {self.diff:+.2f} (a better if > 0), {self.k:g} x standard error = "
                f"{self.k * self.se:.2f}: {verdict}")


_PERCENT = ("top1", "top5")


def _as_reported(metric: str, value: float) -> float:
    return 100 * value if any(metric.endswith(p) for p in _PERCENT) else value


@dataclass
class Results:
    """The runs of :func:`run_seeds`; accuracies are reported in percent."""

    runs: list[Run] = field(default_factory=list)
    #: How the experiment was run (model, data, epochs, recipe, seeds), for the record.
    config: dict = field(default_factory=dict)
    #: Test images, for the standard error's floor (one image = 100 / n points).
    num_test: int = 0

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(r.variant for r in self.runs))

    @property
    def seconds(self) -> float:
        """Training + evaluation time of all runs together."""
        return sum(r.seconds for r in self.runs)

    def values(self, variant: str, metric: str = "test_top1") -> np.ndarray:
        """The metric of each seed of ``variant``, as reported (accuracies in %)."""
        if variant not in self.variants:
            raise ValueError(f"no variant {variant!r}; the variants are: {self.variants}")
        runs = [r for r in self.runs if r.variant == variant]
        if metric not in runs[0].metrics:
            raise ValueError(f"no metric {metric!r}; the metrics are: {sorted(runs[0].metrics)}")
        return np.array([_as_reported(metric, r.metrics[metric]) for r in runs], dtype=float)

    def table(self, metrics=None, decimals: int = 2):
        """A DataFrame: one row per (variant, seed), then ``mean`` and ``std`` per variant.

        Columns: the final metrics (``test_top1``, ``val_top1`` in %, ``test_loss``, plus
        whatever a ``measure`` added) and the seconds each run took.
        """
        import pandas as pd

        if not self.runs:
            raise ValueError("no runs to tabulate")
        metrics = list(metrics or self.runs[0].metrics)
        rows, index = [], []
        for v in self.variants:
            runs = [r for r in self.runs if r.variant == v]
            for r in runs:
                rows.append({m: _as_reported(m, r.metrics[m]) for m in metrics}
                            | {"seconds": r.seconds} | ({"diverged": True} if r.diverged else {}))
                index.append((v, str(r.seed)))
            block = pd.DataFrame(rows[-len(runs):])
            rows.append(block.mean(numeric_only=True).to_dict())
            index.append((v, "mean"))
            rows.append(block.std(ddof=1, numeric_only=True).to_dict() if len(runs) > 1
                        else {c: float("nan") for c in block.columns})
            index.append((v, "std"))
        df = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["variant", "seed"]))
        if "diverged" in df:
            df["diverged"] = df["diverged"].fillna(False).astype(bool)
            df.loc[(slice(None), ["mean", "std"]), "diverged"] = False
        return df.round(decimals)

    def summary(self, metric: str = "test_top1"):
        """Mean, std, min and max of ``metric`` per variant (a DataFrame, % for accuracies)."""
        import pandas as pd

        return pd.DataFrame({v: {"mean": x.mean(), "std": x.std(ddof=1) if len(x) > 1 else float("nan"),
                                 "min": x.min(), "max": x.max(), "seeds": len(x)}
                             for v in self.variants for x in [self.values(v, metric)]}).T

    def curves(self, metrics=("train_loss", "val_top1"), title: str = ""):
        """Learning curves: each seed a thin line, the variant's mean a thick one."""
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        from ..plots import LABELS

        if not self.runs:
            raise ValueError("no runs to draw")
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.4 * len(metrics), 3.3), squeeze=False)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for ax, metric in zip(axes[0], metrics):
            for i, v in enumerate(self.variants):
                color = colors[i % len(colors)]
                curves = [[_as_reported(metric, row.get(metric, float("nan"))) for row in r.history]
                          for r in self.runs if r.variant == v]
                for c in curves:
                    ax.plot(range(1, len(c) + 1), c, color=color, lw=0.8, alpha=0.45)
                n = min(len(c) for c in curves)
                if n:
                    mean = np.nanmean([c[:n] for c in curves], axis=0)
                    ax.plot(range(1, n + 1), mean, color=color, lw=2, marker="o", ms=3,
                            label=f"{v} ({len(curves)} seeds)")
            ax.set_xlabel("epoch")
            label = LABELS.get(metric, metric)
            ax.set_ylabel(label + (" (%)" if metric.endswith(_PERCENT) else ""))
            longest = max(len(r.history) for r in self.runs)
            if longest <= 12:                       # one tick per epoch
                ax.set_xticks(range(1, longest + 1))
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        axes[0][0].legend(frameon=False, fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig

    # -- claims ---------------------------------------------------------------------------------
    def compare(self, a: str, b: str, metric: str = "test_top1", *, k: float = 2.0,
                rule: str = "se", lower_is_better: bool | None = None) -> Comparison:
        """Is ``a`` better than ``b`` on ``metric``, beyond the seeds' spread? (module docstring)"""
        if rule not in ("se", "range"):
            raise ValueError(f"rule must be 'se' (mean difference > k standard errors) or "
                             f"'range' (every seed of a beats every seed of b); got {rule!r}")
        xa, xb = self.values(a, metric), self.values(b, metric)
        if lower_is_better is None:
            lower_is_better = any(w in metric for w in LOWER_IS_BETTER)
        sign = -1.0 if lower_is_better else 1.0
        diff = sign * (xa.mean() - xb.mean())
        var = lambda x: x.var(ddof=1) if len(x) > 1 else 0.0          # noqa: E731
        se = math.sqrt(var(xa) / len(xa) + var(xb) / len(xb))
        if metric.endswith(_PERCENT) and self.num_test:
            floor = 100 / self.num_test * math.sqrt(1 / len(xa) + 1 / len(xb))
            se = max(se, floor)
        if rule == "range":
            better = bool((sign * xa).min() > (sign * xb).max())
        else:
            better = diff > k * se
        return Comparison(a, b, metric, float(xa.mean()), float(xb.mean()), float(diff), se, k,
                          bool(better), bool(abs(diff) <= k * se))

    def assert_better(self, a: str, b: str, metric: str = "test_top1", **kw) -> Comparison:
        """``compare(a, b, ...)``; raise AssertionError with the numbers unless a is better."""
        c = self.compare(a, b, metric, **kw)
        if not c.better:
            raise AssertionError(f"{a!r} is not better than {b!r} beyond the seeds' spread: {c}\n"
                                 f"{self.summary(metric)}")
        return c

    def assert_within_noise(self, a: str, b: str, metric: str = "test_top1", **kw) -> Comparison:
        """``compare(a, b, ...)``; raise AssertionError unless ``|diff| <= k * se``."""
        c = self.compare(a, b, metric, **kw)
        if not c.within_noise:
            raise AssertionError(f"{a!r} and {b!r} differ beyond the seeds' spread: {c}\n"
                                 f"{self.summary(metric)}")
        return c

    def assert_above(self, variant: str, bound: float, metric: str = "test_top1", *,
                     k: float = 2.0) -> float:
        """Assert ``mean - k * std / sqrt(n) > bound`` (e.g. above chance); returns that value."""
        x = self.values(variant, metric)
        low = x.mean() - k * (x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else 0.0)
        if not low > bound:
            raise AssertionError(f"{variant!r}: mean {metric} {x.mean():.2f} - {k:g} standard "
                                 f"errors = {low:.2f} is not above {bound}; per seed: {x.round(2)}")
        return float(low)

    # -- records --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"config": self.config, "num_test": self.num_test,
                "runs": [dict(variant=r.variant, seed=r.seed, metrics=r.metrics, seconds=r.seconds,
                              diverged=r.diverged, history=r.history) for r in self.runs]}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Results":
        return cls([Run(**r) for r in d["runs"]], dict(d.get("config", {})), int(d.get("num_test", 0)))


# -- the runner ---------------------------------------------------------------------------------
def _loaders(data, batch_size: int, data_seed: int, data_kw: dict) -> Loaders:
    if isinstance(data, Loaders):
        return data
    if str(data) == "cluttered":
        from .cluttered import cluttered_loaders

        return cluttered_loaders(batch_size, seed=data_seed, **data_kw)
    return make_loaders(data, batch_size, seed=data_seed, **data_kw)


def _builder(build_model) -> Callable[..., nn.Module]:
    if isinstance(build_model, str):
        from ..registry import create_model

        return lambda **kw: create_model(build_model, **kw)
    if not callable(build_model):
        raise TypeError(f"build_model must be a registered model name or a function returning "
                        f"an nn.Module; got {type(build_model).__name__}")
    return build_model


def run_seeds(build_model: str | Callable[..., nn.Module], variants: Mapping[str, Mapping],
              seeds=(0, 1, 2), *, data="cluttered", epochs: int | None = None,
              recipe: str | Recipe = "fast", batch_size: int | None = None,
              data_kw: Mapping | None = None, data_seed: int = 0,
              measure: Callable[[nn.Module, Loaders], dict] | None = None,
              progress: bool | None = None, **fit_kw) -> Results:
    """Train every variant once per seed; evaluate on val and test; return :class:`Results`.

    build_model: a registered name (``create_model(name, num_classes=..., **options)``) or a
        function ``build_model(num_classes=..., **options) -> nn.Module``.
    variants: ``{name: options}``; recipe fields go to fit, the rest to the builder.
    data: ``'cluttered'`` (default), ``'digits'``, ``'cifar10'`` (``data_kw=dict(download=True)``
        to fetch it), a folder, or a :class:`Loaders`. ``data_kw`` goes to the loaders
        (``num_train=...`` for cluttered, ``size=...``); ``data_seed`` fixes the data.
    epochs, recipe, batch_size, **fit_kw: as :func:`fit` (``fit_kw`` applies to every variant;
        a variant's own options win).
    measure: ``measure(model, loaders) -> dict`` of extra metrics per run (e.g. :func:`calibration`).
    A run whose loss turns NaN/inf is kept (``diverged`` in the table) and evaluated as it is.
    """
    if not variants:
        raise ValueError("variants is empty: pass {'name': {options}, ...}")
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, (int, np.integer)) for s in seeds):
        raise ValueError(f"seeds must be a non-empty sequence of integers; got {seeds!r}")
    build = _builder(build_model)
    base = get_recipe(recipe, **{k: v for k, v in fit_kw.items() if k in RECIPE_FIELDS})
    trainer_kw = {k: v for k, v in fit_kw.items() if k not in RECIPE_FIELDS}
    bs = batch_size or base.batch_size
    loaders = _loaders(data, bs, data_seed, dict(data_kw or {}))
    from tqdm.auto import tqdm

    results = Results(config={"model": build_model if isinstance(build_model, str) else
                              getattr(build_model, "__name__", repr(build_model)),
                              "variants": {k: dict(v) for k, v in variants.items()},
                              "seeds": list(seeds), "data": str(data) if not isinstance(data, Loaders)
                              else "Loaders", "data_kw": dict(data_kw or {}), "epochs": epochs or base.epochs,
                              "recipe": base.name, "batch_size": bs, "fit_kw": dict(fit_kw)},
                      num_test=len(loaders.test.dataset))
    jobs = [(v, s) for v in variants for s in seeds]
    bar = tqdm(jobs, desc="runs", unit="run", disable=not _progress_enabled(progress))
    for name, seed in bar:
        options = dict(variants[name])
        model_kw = {k: v for k, v in options.items() if k not in RECIPE_FIELDS}
        recipe_kw = {k: v for k, v in options.items() if k in RECIPE_FIELDS}
        bar.set_postfix_str(f"{name}, seed {seed}")
        start = time.perf_counter()
        seed_everything(int(seed))
        model = build(num_classes=loaders.num_classes, **model_kw)
        trainer = Trainer(model, base, seed=int(seed), progress=False,
                          **{**trainer_kw, **recipe_kw})
        diverged = False
        try:
            trainer.fit(loaders.train, loaders.val, epochs=epochs or base.epochs)
        except NonFiniteLossError:
            diverged = True
        # The raw weights, as the history's val_top1 (a recipe with ema_decay, such as
        # 'rethinking' and 'googlenet', also gets the averaged weights' test_top1_ema: after
        # a few hundred steps a 0.9999 average is still close to the initialization).
        test = evaluate(trainer.model, loaders.test, averaged=False)
        metrics = {"test_top1": test["top1"], "test_loss": test["loss"],
                   "val_top1": trainer.history.last.get("val_top1", float("nan"))}
        if getattr(trainer, "ema", None) is not None:
            metrics["test_top1_ema"] = evaluate(trainer.ema, loaders.test, averaged=False)["top1"]
        if measure is not None:
            metrics.update(measure(trainer.model, loaders))
        results.runs.append(Run(name, int(seed), [dict(r) for r in trainer.history], metrics,
                                time.perf_counter() - start, diverged))
    return results


# -- small builders for the chapters' comparisons ---------------------------------------------------
def nin_with_head(num_classes: int = 10, head: str = "gap", width_mult: float = 0.25,
                  batch_norm: bool = True, drop_rate: float = 0.0) -> nn.Module:
    """``nin_cifar`` with its Sec. 3.2 head (``'gap'``: class maps, global average pooling) or
    the head NIN replaced (``'fc'``: the last 1x1 class-map conv removed, the 8x8 feature maps
    flattened into a linear layer, as a 2012-style classifier reads them)."""
    from ..registry import create_model

    if head not in ("gap", "fc"):
        raise ValueError(f"head must be 'gap' or 'fc'; got {head!r}")
    kw = dict(width_mult=width_mult, batch_norm=batch_norm, drop_rate=drop_rate)
    if head == "gap":
        return create_model("nin_cifar", num_classes=num_classes, **kw)
    trunk = create_model("nin_cifar", num_classes=0, **kw)          # N x C x 8 x 8 at 32x32
    with torch.no_grad():
        c, h, w = trunk.forward_features(torch.zeros(1, 3, 32, 32)).shape[1:]
    return nn.Sequential(_Features(trunk), nn.Flatten(), nn.Linear(c * h * w, num_classes))


class _Features(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.forward_features(x)


def reduction_net(num_classes: int = 10, reduction: str = "parallel", width: int = 16,
                  in_chans: int = 3) -> nn.Sequential:
    """A small CNN whose two grid reductions (32 -> 16 -> 8) are one of chapter 6's options.

    ``'pool_expand'``: max pool, then a 3x3 conv doubling the channels (the bottleneck the
    paper warns about); ``'expand_pool'``: the 3x3 conv first, then pool (no bottleneck, about
    4x the cost); ``'parallel'``: a stride-2 3x3 conv to k channels beside a stride-2 max pool,
    concatenated (Sec. 5, Fig. 10). Each reduction takes k channels to 2k; before and after,
    a 3x3 conv at constant width. Conv + BN + ReLU throughout.
    """
    from ..layers import Branches, conv_bn, seq

    if reduction not in ("pool_expand", "expand_pool", "parallel"):
        raise ValueError(f"reduction must be 'pool_expand', 'expand_pool' or 'parallel'; "
                         f"got {reduction!r}")

    def reduce(k: int) -> nn.Module:
        pool = nn.MaxPool2d(3, stride=2, padding=1)
        if reduction == "pool_expand":
            return seq(pool, conv_bn(k, 2 * k, 3, padding=1))
        if reduction == "expand_pool":
            return seq(conv_bn(k, 2 * k, 3, padding=1), pool)
        return Branches([seq(conv_bn(k, k, 3, stride=2, padding=1)), seq(pool)])

    k = width
    return nn.Sequential(
        conv_bn(in_chans, k, 3, padding=1), conv_bn(k, k, 3, padding=1),       # N x k x 32 x 32
        reduce(k), conv_bn(2 * k, 2 * k, 3, padding=1),                       # N x 2k x 16 x 16
        reduce(2 * k), conv_bn(4 * k, 4 * k, 3, padding=1),                   # N x 4k x 8 x 8
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * k, num_classes))


def without_batchnorm(model: nn.Module, init: str = "kaiming") -> nn.Module:
    """The same network with every conv block's BatchNorm replaced by identity, re-initialized
    (``'kaiming'``: He et al. 2015, variance 2 / fan-in, for ReLU nets; ``'xavier'``: Glorot &
    Bengio 2010, the 2014 networks' initialization). Conv biases, where the blocks have none,
    stay absent: the network is exactly the BN one minus normalization. In place; returns it.
    (:func:`inception_edu.layers.remove_batchnorm` with ``conv_bias=False``: one definition.)"""
    from ..layers import remove_batchnorm

    if init not in ("kaiming", "xavier"):
        raise ValueError(f"init must be 'kaiming' or 'xavier'; got {init!r}")
    return remove_batchnorm(model, init, conv_bias=False)
