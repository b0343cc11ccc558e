"""Inception-v3's learning-rate schedule (*Rethinking*, Sec. 8): 0.045, decayed by 0.94 every
two epochs, as a figure and an explorer (chapter 8).

* :func:`schedule_data` -- the rate of every epoch, ``lr * gamma ** (epoch // every)``, beside
  the paper's;
* :func:`plot_schedule` / :func:`explore_lr_schedule` -- its figure and live explorer.
"""
from __future__ import annotations

#: The paper's schedule: "learning rate of 0.045, decayed every two epoch using an exponential
#: rate of 0.94" (Rethinking, Sec. 8).
PAPER = {"lr": 0.045, "gamma": 0.94, "every": 2}


def schedule_data(lr: float = 0.045, gamma: float = 0.94, every: int = 2, epochs: int = 100) -> dict:
    """The learning rate of each epoch, ``lr * gamma ** (epoch // every)``, and the paper's."""
    if not lr > 0 or not 0 < gamma <= 1:
        raise ValueError(f"lr must be positive and gamma in (0, 1]; got lr={lr!r}, gamma={gamma!r}")
    if int(every) != every or every < 1 or int(epochs) != epochs or epochs < 1:
        raise ValueError(f"every and epochs must be positive whole numbers; got {every!r}, {epochs!r}")
    p = PAPER
    return {"lr": lr, "gamma": gamma, "every": every,
            "ours": [lr * gamma ** (e // every) for e in range(epochs)],
            "paper": [p["lr"] * p["gamma"] ** (e // p["every"]) for e in range(epochs)],
            "label": f"{lr:g} x {gamma:g} every {every} epoch(s)"}


def draw_schedule(data: dict):
    """Both schedules as steps on a log axis (the paper's dashed)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    fig.subplots_adjust(left=0.11, right=0.98, bottom=0.16, top=0.95)
    ax.step(range(len(data["paper"])), data["paper"], where="post", color="gray",
            linestyle="--", label="paper: 0.045 x 0.94 every 2 epochs")
    ax.step(range(len(data["ours"])), data["ours"], where="post", label=data["label"])
    ax.set_yscale("log")
    ax.set_ylim(1e-7, 0.2)   # one axis for every frame, so frames compare at a glance
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate (log scale)")
    ax.legend(frameon=False, fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def plot_schedule(lr: float = 0.045, gamma: float = 0.94, every: int = 2):
    """Static figure of :func:`schedule_data` (the paper's schedule by default)."""
    return draw_schedule(schedule_data(lr, gamma, every))


def schedule_numbers(d: dict) -> dict:
    return {"rate at epoch 30": d["ours"][30], "rate at epoch 99": d["ours"][-1]}


#: The web page's values (72 frames): the paper's 0.045 x 0.94 every 2, the chapter's ladder's
#: 0.35 every epoch, and around them.
SCHEDULE_GRID = {"lr": [0.01, 0.045, 0.1], "gamma": [0.35, 0.5, 0.7, 0.9, 0.94, 1.0], "every": [1, 2, 5, 10]}


def explore_lr_schedule(lr: float = 0.045, gamma: float = 0.94, every: int = 2):
    """Live :func:`plot_schedule`: the starting rate, the decay factor and how often it applies."""
    from ..widgets import Explorer, slider

    controls = {"lr": slider(lr, 0.005, 0.1, 0.005, "start lr"),
                "gamma": slider(gamma, 0.3, 1.0, 0.01, "decay"),
                "every": slider(every, 1, 10, 1, "every (epochs)")}
    return Explorer(schedule_data, draw_schedule, controls, title="learning-rate schedule",
                    name="explore_lr_schedule", grid=SCHEDULE_GRID, numbers=schedule_numbers)
