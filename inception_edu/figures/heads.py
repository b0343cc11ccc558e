"""Classifier heads: a fully connected head versus global average pooling (GAP).

Network in Network (Lin, Chen & Yan 2013, Sec. 3.2) replaced the fully connected layers at the
top of a CNN with *global average pooling*: the last mlpconv layer produces one feature map per
class and each map is averaged to one number, the class score. GAP has no parameters, works on
any input size, and keeps the class maps spatial, which is what class activation maps (Zhou et
al. 2016) later read off. GoogLeNet kept GAP and added one linear layer after it
("GAP + linear", Szegedy et al. 2014, Sec. 5).

* :func:`head_params_data` -- the parameters of the three heads on a ``C x H x W`` feature map
  (the numbers; pure arithmetic);
* :func:`plot_head_params` / :func:`explore_head_params` -- their figure and live explorer;
* :func:`class_activation_maps` / :func:`plot_class_activation_maps` -- where in the image a
  GAP network sees each class.

The default arguments are VGG-16's head (Simonyan & Zisserman 2015, Table 1, configuration D):
512 x 7 x 7 features -> FC 4096 -> FC 4096 -> FC 1000, which is 123,642,856 of the network's
138,357,544 parameters.
"""
from __future__ import annotations

from functools import partial

from . import check_whole

#: VGG-16's convolutional trunk (13 3x3 convs, biases included): its parameters without the head.
VGG16_TRUNK_PARAMS = 14_714_688
#: The three heads compared, in drawing order: key -> label.
HEADS = {"fc": "flatten + FC layers (VGG)", "gap_linear": "GAP + one linear (GoogLeNet)",
         "gap": "GAP only (NIN)"}


def fc_head_layers(channels: int, grid: int, hidden: int, fc_layers: int, num_classes: int) -> list[tuple[int, int]]:
    """(inputs, outputs) of each linear layer of a flatten -> FC ... -> FC head.

    ``fc_layers`` counts every linear layer, the classifier included: VGG has 3
    (``C*H*W -> hidden -> hidden -> classes``); 1 is a single linear classifier on the
    flattened map.
    """
    widths = [channels * grid * grid] + [hidden] * (fc_layers - 1) + [num_classes]
    return list(zip(widths[:-1], widths[1:]))


def head_params_data(channels: int = 512, grid: int = 7, hidden: int = 4096, fc_layers: int = 3,
                     num_classes: int = 1000, trunk_params: int | None = VGG16_TRUNK_PARAMS,
                     max_grid: int = 14) -> dict:
    """Parameters (weights + biases) of three heads on a ``channels x grid x grid`` feature map.

    * ``fc``: flatten, then ``fc_layers`` linear layers (``hidden`` wide, the last one
      ``num_classes`` wide): ``sum(n_in * n_out + n_out)``;
    * ``gap_linear``: GAP to ``channels`` numbers, then one linear layer:
      ``channels * num_classes + num_classes``, whatever the grid;
    * ``gap``: GAP alone: 0. (NIN's last 1x1 convolution already makes ``num_classes`` maps;
      it is part of the trunk, so its weights count there.)

    ``trunk_params``: parameters of the network below the head, to report the head's share of
    the whole network (VGG-16's by default; None to skip). Also returns ``fc_by_grid``, the FC
    head's parameters for every grid side from 1 to ``max(max_grid, grid)`` (for the curve).
    """
    check_whole(channels=channels, grid=grid, hidden=hidden, fc_layers=fc_layers,
                    num_classes=num_classes, max_grid=max_grid)
    layers = fc_head_layers(channels, grid, hidden, fc_layers, num_classes)
    params = {"fc": sum(i * o + o for i, o in layers),
              "gap_linear": channels * num_classes + num_classes,
              "gap": 0}
    grids = list(range(1, max(max_grid, grid) + 1))
    fc_by_grid = [sum(i * o + o for i, o in fc_head_layers(channels, g, hidden, fc_layers, num_classes))
                  for g in grids]
    share = None
    if trunk_params is not None:
        if trunk_params < 0:
            raise ValueError(f"trunk_params must be 0 or more; got {trunk_params}")
        share = {k: v / (v + trunk_params) if v + trunk_params else 0.0 for k, v in params.items()}
    return {"channels": channels, "grid": grid, "hidden": hidden, "fc_layers": fc_layers,
            "num_classes": num_classes, "trunk_params": trunk_params, "fc_layers_shape": layers,
            "params": params, "share": share, "grids": grids, "fc_by_grid": fc_by_grid}


def _millions(n: int) -> str:
    return f"{n / 1e6:,.1f} M" if n >= 50_000 else f"{n:,}"


def draw_head_params(data: dict):
    """The figure of :func:`head_params_data`'s numbers: bars now, and the FC head vs grid size."""
    import matplotlib.pyplot as plt

    # Fixed margins instead of tight_layout: laying the text out twice is most of a redraw's time.
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.6), gridspec_kw={"width_ratios": [1.1, 1]})
    fig.subplots_adjust(left=0.235, right=0.98, bottom=0.14, top=0.9, wspace=0.3)   # room for the heads' names
    keys = list(HEADS)
    values = [data["params"][k] for k in keys]
    colors = ["tab:red", "tab:blue", "tab:green"]
    y = range(len(keys))[::-1]
    left.barh(list(y), [v / 1e6 for v in values], color=colors)
    top = max(max(values) / 1e6, 1e-6)
    for yi, k, v in zip(y, keys, values):
        note = _millions(v)
        if data["share"] is not None:
            note += f"  ({100 * data['share'][k]:.0f} % of the network)"
        left.text(v / 1e6 + 0.02 * top, yi, note, va="center", fontsize=9)
    left.set_yticks(list(y), [HEADS[k] for k in keys], fontsize=9)
    left.set_xlim(0, top * 1.9)
    left.set_xlabel("parameters of the head (millions)")
    c, g = data["channels"], data["grid"]
    left.set_title(f"head on a {c} x {g} x {g} feature map, {data['num_classes']} classes", fontsize=10)

    right.semilogy(data["grids"], data["fc_by_grid"], color=colors[0], marker="o", ms=3,
                   label=HEADS["fc"])
    right.axhline(data["params"]["gap_linear"], color=colors[1], ls="--", label=HEADS["gap_linear"])
    right.plot([g], [data["params"]["fc"]], "o", color="k", ms=7, mfc="none")
    right.set_xlabel("grid side H = W of the last feature map")
    right.set_ylabel("parameters (log scale)")
    right.set_title("FC grows with H x W; GAP does not (GAP only: 0)", fontsize=10)
    right.grid(alpha=0.3)
    lo = min(min(data["fc_by_grid"]), max(data["params"]["gap_linear"], 1))
    right.set_ylim(lo / 4, max(data["fc_by_grid"]) * 3)
    right.legend(frameon=False, fontsize=8, loc="upper left")
    return fig


def plot_head_params(channels: int = 512, grid: int = 7, hidden: int = 4096, fc_layers: int = 3,
                     num_classes: int = 1000, trunk_params: int | None = VGG16_TRUNK_PARAMS):
    """Static figure: FC head vs GAP + linear vs GAP only (VGG-16's head by default)."""
    return draw_head_params(head_params_data(channels, grid, hidden, fc_layers, num_classes, trunk_params))


def explore_head_params(channels: int = 512, grid: int = 7, hidden: int = 4096, fc_layers: int = 3,
                        num_classes: int = 1000, trunk_params: int | None = VGG16_TRUNK_PARAMS):
    """Live explorer of :func:`plot_head_params`: move the feature-map size, widths, layers.

    ``trunk_params`` is fixed (it is the rest of the network, not the head); the share of the
    network is computed against it.
    """
    from ..widgets import Explorer, dropdown, slider

    controls = {
        "channels": slider(channels, 16, 2048, 16, "channels C"),
        "grid": slider(grid, 1, 14, 1, "grid H = W"),
        "hidden": dropdown([256, 512, 1024, 2048, 4096], hidden, "hidden width"),
        "fc_layers": slider(fc_layers, 1, 3, 1, "FC layers"),
        "num_classes": dropdown([10, 100, 1000], num_classes, "classes"),
    }
    compute = partial(head_params_data, trunk_params=trunk_params)
    return Explorer(compute, draw_head_params, controls, title="FC head vs GAP head", name="explore_head_params",
                    grid=HEAD_GRID, numbers=head_numbers)


#: The web page's values (90 frames): trunk widths, grid sides up to 14, every FC depth, 10
#: and 1000 classes; the hidden width stays at VGG's 4096 there.
HEAD_GRID = {"channels": [256, 512, 2048], "grid": [1, 2, 4, 7, 14], "hidden": [4096],
             "num_classes": [10, 1000]}


def head_numbers(d: dict) -> dict:
    out = {f"{HEADS[k]} (params)": d["params"][k] for k in ("fc", "gap_linear")}
    if d["share"] is not None:
        out["FC head's share of the network"] = d["share"]["fc"]
    return out


# -- class activation maps ---------------------------------------------------------------------
def class_activation_maps(model, x, classes=None):
    """Class activation maps (Zhou et al. 2016) of a network whose head is GAP (+ one linear).

    For feature maps ``f_k(i, j)`` (the trunk's output) and a class ``c``:

    * GAP only (NIN, the classifier is ``nn.Identity`` and there is one map per class):
      ``M_c = f_c``;
    * GAP + linear with weights ``w_ck``: ``M_c(i, j) = sum_k w_ck f_k(i, j)``.

    Either way the class score is the mean of ``M_c`` over the grid (plus the bias), which is
    why a GAP network can point at *where* it saw the class. Returns ``(maps, classes)``: an
    ``N x h x w`` tensor on the trunk's grid and the class of each map (``classes`` if given,
    else the predicted one). Runs in eval mode without gradients.
    """
    import torch
    from torch import nn

    fc = getattr(model, "fc", None)
    if not hasattr(model, "forward_features") or fc is None:
        raise ValueError("class_activation_maps needs an inception_edu model (forward_features and fc)")
    if not isinstance(getattr(model, "pre_logits", nn.Identity()), nn.Identity):
        raise ValueError(f"{getattr(model, 'name', 'this model')} has a projection between GAP and its "
                         f"classifier; class activation maps need GAP followed by at most one linear layer")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            feats = model.forward_features(x)                               # N x C x h x w
            if isinstance(fc, nn.Identity):
                maps = feats                                                 # N x K x h x w (NIN)
            elif isinstance(fc, nn.Linear):
                maps = torch.einsum("kc,nchw->nkhw", fc.weight, feats)       # N x K x h x w
            else:
                raise ValueError("class activation maps need a linear (or no) classifier after GAP")
            logits = maps.mean(dim=(2, 3))
            if isinstance(fc, nn.Linear) and fc.bias is not None:
                logits = logits + fc.bias
            if classes is None:
                classes = logits.argmax(1)
            classes = torch.as_tensor(classes).reshape(-1)
            if classes.numel() != x.shape[0]:
                raise ValueError(f"give one class per image: {x.shape[0]} images, {classes.numel()} classes")
            picked = maps[torch.arange(x.shape[0]), classes]                 # N x h x w
    finally:
        model.train(was_training)
    return picked, classes


def _upsampled(maps, size):
    import torch.nn.functional as F

    up = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = up.amin(dim=(1, 2), keepdim=True)
    hi = up.amax(dim=(1, 2), keepdim=True)
    return (up - lo) / (hi - lo).clamp_min(1e-12)                            # each map scaled to [0, 1]


def plot_class_activation_maps(model, images, labels=None, *, all_classes: bool = False, class_names=None):
    """Images with the class activation map of their predicted class laid over them.

    ``images``: an ``N x C x H x W`` batch (N up to 12 reads well). Titles say the predicted class
    and, when ``labels`` are given, the true one. With ``all_classes=True`` the first image is
    drawn once with the map of *every* class beside it: the NIN picture of "one feature map per
    class", each map averaged to that class's score.
    """
    import matplotlib.pyplot as plt
    import torch

    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError("images must be a batch shaped (N, C, H, W); take e.g. x[:8] of a loader batch")
    size = tuple(images.shape[-2:])
    gray = images[:, 0].detach().cpu().numpy()                               # matplotlib wants numpy
    names = class_names or [str(k) for k in range(10_000)]
    if all_classes:
        one = images[:1]
        with torch.no_grad():
            was = model.training
            model.eval()
            logits = model(one)[0]
            model.train(was)
        k = logits.numel()
        maps = torch.cat([class_activation_maps(model, one, [c])[0] for c in range(k)]).cpu().numpy()
        lo, hi = maps.min(), maps.max()                                      # one scale for all maps
        fig, axes = plt.subplots(1, k + 1, figsize=(1.25 * (k + 1), 1.9))
        axes[0].imshow(gray[0], cmap="gray")
        axes[0].set_title("input", fontsize=9)
        best = int(logits.argmax())
        for c, ax in enumerate(axes[1:]):
            ax.imshow(maps[c], cmap="viridis", vmin=float(lo), vmax=float(hi))
            ax.set_title(f"map '{names[c]}'", fontsize=8, fontweight="bold" if c == best else "normal")
        for ax in axes:
            ax.axis("off")
        fig.suptitle("one feature map per class; its average is the class score (bold: the largest)",
                     fontsize=9)
        fig.tight_layout()
        return fig
    maps, classes = class_activation_maps(model, images)
    heat = _upsampled(maps, size).cpu().numpy()
    n = images.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.35 * n, 3.0), squeeze=False)
    for i in range(n):
        axes[0][i].imshow(gray[i], cmap="gray")
        title = f"pred {names[int(classes[i])]}"
        if labels is not None:
            title += f" / true {names[int(labels[i])]}"
        axes[0][i].set_title(title, fontsize=7)
        axes[1][i].imshow(gray[i], cmap="gray")
        axes[1][i].imshow(heat[i], cmap="jet", alpha=0.45)
        for ax in (axes[0][i], axes[1][i]):
            ax.axis("off")
    axes[1][0].set_title("CAM of the prediction", fontsize=7, loc="left")
    fig.tight_layout()
    return fig
