"""Run under torchrun by tests/test_ddp.py: fit() inside an initialised gloo process group.

    torchrun --nproc_per_node 2 tests/ddp_worker.py OUT

Each rank writes OUT/rank{r}.pt (its parameters after one epoch, and its results); the test
compares them. The network has an auxiliary head left out of the loss (aux_weight 0), which
would hang DDP if its parameters were waiting for a gradient, and it accumulates two
micro-batches per step (the first under no_sync).
"""
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train import tiny  # noqa: E402

from inception_edu.train import Trainer, digits_loaders, evaluate  # noqa: E402


def main(out: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    loaders = digits_loaders(64)
    trainer = Trainer(tiny(seed=rank), "fast", seed=0, aux_weight=0.0, accum_steps=2,
                      ema_decay=0.9, checkpoint=out / "last.pt", progress=False)
    history = trainer.fit(loaders.train, loaders.val, epochs=1)
    gathered = trainer.evaluate(loaders.test)                       # summed over both ranks
    raw = evaluate(trainer.model, loaders.test, averaged=False)
    alone = evaluate(trainer.eval_model, loaders.test, distributed=False)   # this rank, all data
    torch.save({"params": [p.detach().clone() for p in trainer.model.parameters()],
                "ema": [p.detach().clone() for p in trainer.ema.parameters()],
                "gathered": gathered, "raw": raw, "alone": alone, "history": history.rows,
                "steps_per_epoch": trainer.steps_per_epoch,
                "aux_grad": [p.grad for p in trainer.model.aux.parameters()]},
               out / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
