"""Weight averaging, gradient accumulation and step checkpoints (one process, CPU)."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from inception_edu.train import Trainer, evaluate, fit, load_checkpoint, synthetic_loaders

from test_train import _one_thread, tiny  # noqa: F401  (the module's one-thread fixture)

KEYS = ("train_loss", "train_top1", "val_loss", "val_top1", "ema_val_loss", "ema_val_top1", "lr")


def _loaders():
    return synthetic_loaders(8, 32, num_samples=48)[:2]


def test_ema_is_the_running_average_of_parameters_and_buffers():
    # Rethinking Sec. 8's running average, written out as TensorFlow's ExponentialMovingAverage
    # with num_updates (what the Inception training code passed): after the n-th update
    # ema <- d_n ema + (1 - d_n) w, d_n = min(d, (1 + n) / (10 + n)), the first step copying w;
    # BatchNorm's running statistics alike. d = 0.2 lets both branches of the min act.
    d = 0.2
    model = tiny()
    trainer = Trainer(model, "fast", ema_decay=d, seed=0, progress=False)
    expected = None
    params = lambda m: [t.detach().clone() for t in list(m.parameters()) + [  # noqa: E731
        b for b in m.buffers() if b.is_floating_point()]]
    steps = []
    orig = trainer._optimizer_step

    def step():
        orig()
        steps.append(params(trainer.model))
    trainer._optimizer_step = step
    trainer.fit(*_loaders(), epochs=1)
    for n, w in enumerate(steps):
        d_n = min(d, (1 + n) / (10 + n))
        expected = [x.clone() for x in w] if expected is None else \
            [d_n * e + (1 - d_n) * x for e, x in zip(expected, w)]
    got = params(trainer.ema.module)
    assert len(steps) == 6 and int(trainer.ema.n_averaged) == 6
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    # evaluate() and predict use the averaged weights; averaged=False the raw ones.
    val = _loaders()[1]
    assert evaluate(model, val) == evaluate(trainer.ema, val) != evaluate(model, val, averaged=False)
    assert evaluate(trainer, val) == evaluate(trainer.ema, val)


def test_recipes_of_the_papers_average_their_weights():
    from inception_edu.train import get_recipe

    assert get_recipe("rethinking").ema_decay == 0.9999 and get_recipe("googlenet").ema_decay == 0.9999
    assert get_recipe("fast").ema_decay is None
    with pytest.raises(ValueError, match="ema_decay is a decay in"):
        get_recipe("fast", ema_decay=1.5)
    with pytest.raises(ValueError, match="accum_steps must be at least 1"):
        get_recipe("fast", accum_steps=0)


def test_resume_with_ema_equals_uninterrupted_run(tmp_path):
    straight = Trainer(tiny(), "fast", seed=3, ema_decay=0.9).fit(*_loaders(), epochs=2)
    ckpt = tmp_path / "last.pt"
    Trainer(tiny(), "fast", seed=3, ema_decay=0.9, checkpoint=ckpt).fit(*_loaders(), epochs=2, stop_after=1)
    assert load_checkpoint(ckpt)["ema"] is not None
    resumed = Trainer(tiny(seed=99), "fast", seed=3, ema_decay=0.9, checkpoint=ckpt
                      ).fit(*_loaders(), epochs=2, resume=ckpt)
    for k in KEYS:
        assert straight.column(k) == resumed.column(k), k


def test_step_checkpoint_resumes_mid_epoch_exactly(tmp_path):
    # 6 batches per epoch, a checkpoint every 4 steps: the second one falls in epoch 2 after
    # batch 2. Interrupt there (the file is what a crash would leave), resume, compare.
    straight = Trainer(tiny(), "fast", seed=5, ema_decay=0.9).fit(*_loaders(), epochs=2)
    ckpt = tmp_path / "last.pt"

    class Crash(Exception):
        pass

    trainer = Trainer(tiny(), "fast", seed=5, ema_decay=0.9, checkpoint=ckpt, save_every_steps=4)
    saves = []
    orig = trainer.save

    def save(*a, **k):
        out = orig(*a, **k)
        saves.append(trainer.step_in_epoch)
        if trainer.epoch == 1 and trainer.step_in_epoch == 2:
            raise Crash
        return out
    trainer.save = save
    with pytest.raises(Crash):
        trainer.fit(*_loaders(), epochs=2)
    held = load_checkpoint(ckpt)
    assert (held["epoch"], held["step_in_epoch"]) == (1, 2) and saves == [4, 0, 2]
    resumed = Trainer(tiny(seed=99), "fast", seed=5, ema_decay=0.9, checkpoint=ckpt
                      ).fit(*_loaders(), epochs=2, resume=ckpt)
    for k in KEYS:
        assert straight.column(k) == resumed.column(k), k


class Linear(nn.Module):
    """No BatchNorm: a batch's gradient is then the mean of its samples' gradients."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 5))

    def forward(self, x):
        return self.net(x)


def test_k_accumulated_steps_equal_one_step_of_k_times_the_batch():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 3, 8, 8, generator=g), torch.randint(0, 5, (24,), generator=g)
    ds = TensorDataset(x, y)
    kw = dict(recipe="googlenet", epochs=1, lr=0.1, weight_decay=0.0, progress=False,
              ema_decay=0.0, seed=None)
    big, small = Linear(), Linear()
    # One epoch = one optimizer step in both: 1 batch of 24, or 4 micro-batches of 6.
    fit(big, DataLoader(ds, batch_size=24), **kw)
    fit(small, DataLoader(ds, batch_size=6), accum_steps=4, **kw)
    moved = sum((p - q).abs().sum() for p, q in zip(big.parameters(), Linear().parameters()))
    assert moved > 1e-3                                   # the step did something
    for p, q in zip(big.parameters(), small.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
