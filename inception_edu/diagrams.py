"""Diagrams drawn from the networks themselves: every module as the papers draw it, and every
network as its stage table in pictures.

* :func:`draw_module` -- one module (a ``Branches``, a ``ResidualBranches``, a ``ConvBlock``,
  a pool, or an ``nn.Sequential`` of them, e.g. Inception-v4's stem ``model.features[:6]``):
  the input at the bottom, one column per branch, one box per layer labelled with its kind,
  kernel, stride and width (``1x7 conv, 192``, ``3x3 max pool /2``, ``1x1 conv, 64, linear``),
  "Filter concat" at the top. A residual block adds the 1x1 linear projection, the scale
  (``x 0.17``) and the sum with the shortcut. With ``input_shape`` every box also carries its
  output shape (H x W x C, as the papers write it) and every branch its multiply-adds.
* :func:`draw_network` -- the stage table (:func:`inception_edu.cost.stage_table`) drawn in
  order, input at the bottom as the papers' network figures: repeated modules once with
  "x 4", where each auxiliary head taps, the head; the output grid and width after each row
  and a bar of each row's share of the multiply-adds.
* :func:`plot_diagram` / :func:`explore_diagram` -- pick a network and one of its distinct
  modules, see it drawn with its costs.
* :func:`to_svg` / :func:`show_svg` -- the same figure as deterministic SVG (fixed ids, no
  date, text kept as text), what a chapter cell stores for the web page.

Nothing is described by hand: the boxes are read from the module's own layers, so a changed
width changes the drawing, and a layer the drawer cannot read is an error that names it.
Box sizes come from the rendered extent of their text, and the font shrinks until the figure
fits the book's column (7 inches), so no label overlaps another or leaves the figure.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache

from torch import nn

from .layers import Branches, ConvBlock, ResidualBranches

#: The width of the book's text column, in inches (at 100 dpi): no diagram is wider.
COLUMN_WIDTH = 7.0
#: Face colour of each kind of layer, the same in every diagram of the book.
LAYER_COLORS = {
    "input": "#e8e8e8",
    "1x1 conv": "#fbe3a6",          # the bottlenecks / reductions of NIN and GoogLeNet
    "conv": "#b9d3ee",              # square k x k convolutions
    "asymmetric conv": "#bfe3bf",   # 1 x n and n x 1 (Rethinking, Sec. 3.2)
    "linear conv": "#f4c2c2",       # no activation: Inception-ResNet's projection
    "max pool": "#dcc8ec",
    "avg pool": "#ecd5bd",
    "normalization": "#c9ecec",     # LRN, a stand-alone BatchNorm
    "dropout": "#f0f0f0",
    "fully connected": "#e3c9b0",
    "concat": "#d9d9d9",
    "scale": "#ffffff",
    "sum": "#ffffff",
    "activation": "#f6f6f6",
}
_DPI = 100
_BASE_FONT = 8.0
_MIN_FONT = 4.5


# ------------------------------------------------------------------------------------------------
# Reading a module into boxes
# ------------------------------------------------------------------------------------------------
@dataclass
class _Box:
    label: str
    kind: str
    gid: str                       # the layer's path inside the drawn block ("" = the block)
    module: nn.Module | None = None
    shape: str = ""
    text: object = None            # the matplotlib Text, once made
    w: float = 0.0
    h: float = 0.0


@dataclass
class _Fork:
    chains: list                   # one list of items per branch
    gid: str
    module: nn.Module
    concat: bool = True            # False: the branch's parent concatenates (Fig. 7's 1x3 | 3x1)
    concat_box: _Box | None = None
    notes: list = field(default_factory=list)   # per-branch multiply-adds (Text or None)


@dataclass
class _Residual:
    fork: _Fork
    proj: list                     # the projection's boxes
    scale: _Box | None
    act: _Box | None
    gid: str
    module: nn.Module


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _kxk(k) -> str:
    kh, kw = _pair(k)
    return f"{kh}x{kw}"


def _stride(s) -> str:
    sh, sw = _pair(s)
    if (sh, sw) == (1, 1):
        return ""
    return f" /{sh}" if sh == sw else f" /{sh}x{sw}"


def _conv_box(conv: nn.Conv2d, linear: bool, gid: str, module: nn.Module) -> _Box:
    kh, kw = _pair(conv.kernel_size)
    label = f"{kh}x{kw} conv{_stride(conv.stride)}, {conv.out_channels}"
    if conv.groups > 1:
        label += f", groups {conv.groups}"
    if linear:
        label += ", linear"
    kind = "linear conv" if linear else ("1x1 conv" if (kh, kw) == (1, 1) else
                                         "asymmetric conv" if kh != kw else "conv")
    return _Box(label, kind, gid, module)


def _where(gid: str) -> str:
    return f"layer '{gid}'" if gid else "the block itself"


def _read(m: nn.Module, gid: str) -> list:
    """The items (boxes, forks, residual blocks) of module ``m``, bottom to top."""
    sub = (lambda name: f"{gid}.{name}" if gid else name)
    if isinstance(m, ConvBlock):
        if not isinstance(m.conv, nn.Conv2d) or not isinstance(m.act, (nn.ReLU, nn.Identity)) \
                or not isinstance(m.bn, (nn.BatchNorm2d, nn.Identity)):
            raise TypeError(f"draw_module cannot read {_where(gid)}: a ConvBlock whose parts are "
                            f"{type(m.conv).__name__}, {type(m.bn).__name__}, {type(m.act).__name__}; "
                            f"it reads Conv2d -> BatchNorm2d or Identity -> ReLU or Identity")
        return [_conv_box(m.conv, isinstance(m.act, nn.Identity), gid, m)]
    if isinstance(m, nn.Conv2d):
        return [_conv_box(m, True, gid, m)]
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "max pool" if isinstance(m, nn.MaxPool2d) else "avg pool"
        stride = m.kernel_size if m.stride is None else m.stride
        return [_Box(f"{_kxk(m.kernel_size)} {kind}{_stride(stride)}", kind, gid, m)]
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        kind = "avg pool" if isinstance(m, nn.AdaptiveAvgPool2d) else "max pool"
        size = _pair(m.output_size if m.output_size is not None else 1)
        label = f"global {kind}" if size == (1, 1) else f"{kind} to {size[0]}x{size[1]}"
        return [_Box(label, kind, gid, m)]
    if isinstance(m, nn.LocalResponseNorm):
        return [_Box(f"LRN, size {m.size}", "normalization", gid, m)]
    if isinstance(m, nn.BatchNorm2d):
        return [_Box("batch norm", "normalization", gid, m)]
    if isinstance(m, nn.Dropout):
        return [_Box(f"dropout {m.p:g}", "dropout", gid, m)]
    if isinstance(m, nn.ReLU):
        return [_Box("ReLU", "activation", gid, m)]
    if isinstance(m, nn.Linear):
        return [_Box(f"fc, {m.out_features}", "fully connected", gid, m)]
    if isinstance(m, (nn.Identity, nn.Flatten)):
        return []                                  # changes nothing a diagram shows
    if isinstance(m, Branches):
        chains = [_read(b, sub(f"branches.{i}")) for i, b in enumerate(m.branches)]
        for chain in chains:                       # a fork that ends a branch feeds this concat
            if chain and isinstance(chain[-1], _Fork):
                chain[-1].concat = False
        return [_Fork(chains, gid, m)]
    if isinstance(m, ResidualBranches):
        fork = _Fork([_read(b, sub(f"branches.{i}")) for i, b in enumerate(m.branches)], gid, m)
        proj = _read(m.proj, sub("proj"))
        scale = _Box(f"x {m.scale:g}", "scale", sub("scale")) if m.scale != 1 else None
        act = _read(m.act, sub("act"))
        return [_Residual(fork, proj, scale, act[0] if act else None, gid, m)]
    if isinstance(m, nn.Sequential):
        return [item for name, child in m.named_children() for item in _read(child, sub(name))]
    raise TypeError(f"draw_module cannot read {_where(gid)} ({type(m).__name__}): it draws ConvBlock, "
                    f"Conv2d, max/avg pools, LRN, BatchNorm2d, ReLU, Dropout, Linear, Branches, "
                    f"ResidualBranches and nn.Sequential of them")


def _boxes(items) -> list[_Box]:
    """Every box of a list of items, in drawing order."""
    out = []
    for it in items:
        if isinstance(it, _Box):
            out.append(it)
        elif isinstance(it, _Fork):
            for chain in it.chains:
                out += _boxes(chain)
            if it.concat_box is not None:
                out.append(it.concat_box)
        elif isinstance(it, _Residual):
            out += _boxes([it.fork]) + it.proj + [b for b in (it.scale, it.act) if b is not None]
    return out


def _forks(items) -> list[_Fork]:
    out = []
    for it in items:
        if isinstance(it, _Fork):
            out.append(it)
            for chain in it.chains:
                out += _forks(chain)
        elif isinstance(it, _Residual):
            out += _forks([it.fork])
    return out


# ------------------------------------------------------------------------------------------------
# Shapes and multiply-adds
# ------------------------------------------------------------------------------------------------
def _shape_text(shape) -> str:
    """(C, H, W) -> '28x28x192' (the papers' order); (N,) -> '1000'."""
    shape = tuple(int(s) for s in shape)
    return f"{shape[1]}x{shape[2]}x{shape[0]}" if len(shape) == 3 else "x".join(map(str, shape))


def _check_shape(input_shape) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in input_shape)
        ok = len(shape) == 3 and min(shape) >= 1 and all(int(s) == s for s in input_shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"input_shape is one sample's (channels, height, width), e.g. (192, 28, 28); "
                         f"got {input_shape!r}")
    return shape


def _run_shapes(block: nn.Module, shape) -> dict[int, tuple]:
    """Output shape (without the batch) of every submodule, from one pass on the meta device
    (:func:`inception_edu.cost.count_macs` with ``counter="fast"``: shapes, no arithmetic)."""
    from .cost import count_macs

    first = next((m for m in block.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and first.in_channels != shape[0]:
        raise ValueError(f"this module's first convolution takes {first.in_channels} channels; "
                         f"input_shape has {shape[0]}. Pass input_shape=({first.in_channels}, H, W).")
    shapes, handles = {}, []

    def hook(module, args, out):
        if hasattr(out, "shape"):
            shapes[id(module)] = tuple(int(s) for s in out.shape[1:])

    for m in block.modules():
        handles.append(m.register_forward_hook(hook))
    try:
        count_macs(block, shape, counter="fast")
    except RuntimeError as err:
        raise ValueError(f"this module cannot run on input_shape {shape} (channels, height, width): "
                         f"{str(err).splitlines()[0]}. Give the shape its input has in the network "
                         f"(e.g. from ie.stage_table).") from None
    finally:
        for h in handles:
            h.remove()
    return shapes


def _macs(module: nn.Module, shapes: dict) -> int:
    """Multiply-adds of the convolutions and fully connected layers in ``module`` (what the
    papers count), by :func:`inception_edu.cost.conv_macs` on the shapes of the pass."""
    from .cost import conv_macs

    total = 0
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and id(m) in shapes:
            c, h, w = shapes[id(m)]
            total += conv_macs(m.in_channels, m.out_channels, m.kernel_size, (h, w), m.groups)
        elif isinstance(m, nn.Linear) and id(m) in shapes:
            total += m.in_features * m.out_features
    return total


def _si(n: float) -> str:
    from .figures.cost import _si as si
    return si(n)


# ------------------------------------------------------------------------------------------------
# Layout: sizes from the rendered text, then positions (inches, origin bottom left)
# ------------------------------------------------------------------------------------------------
class _Canvas:
    """A figure with one axes covering it, in inches, and what is drawn on it."""

    def __init__(self, fontsize: float):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(COLUMN_WIDTH, 4), dpi=_DPI)
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_axis_off()
        self.renderer = self.fig.canvas.get_renderer()
        self.fs = fontsize
        self.em = fontsize / 72.0                 # one em in inches
        self.lines: list = []                     # polylines [(x, y), ...]
        self.heads: list = []                     # (x, y, marker)
        self.patches: list = []

    def text(self, s: str, gid: str, size: float | None = None, **kw):
        t = self.ax.text(0, 0, s, fontsize=size or self.fs, ha="center", va="center",
                         gid=gid, linespacing=1.15, **kw)
        bb = t.get_window_extent(self.renderer)
        return t, bb.width / _DPI, bb.height / _DPI

    def arrow(self, x1, y1, x2, y2, gap):
        """From (x1, y1) up to (x2, y2): vertical, then across just below the target, then up."""
        if abs(x1 - x2) < 1e-6:
            self.lines.append([(x1, y1), (x2, y2)])
        else:
            ym = y2 - gap / 2
            self.lines.append([(x1, y1), (x1, ym), (x2, ym), (x2, y2)])
        self.heads.append((x2, y2, "^"))

    def box(self, b: _Box, x: float, y: float, w: float):
        from matplotlib.patches import FancyBboxPatch

        p = FancyBboxPatch((x, y), w, b.h, boxstyle=f"round,pad=0,rounding_size={0.35 * self.em:.4f}",
                           facecolor=LAYER_COLORS[b.kind], edgecolor="#555555", linewidth=0.6, zorder=2)
        self.ax.add_patch(p)
        b.text.set_position((x + w / 2, y + b.h / 2))
        b.text.set_zorder(3)

    def finish(self, width: float, height: float):
        from matplotlib.collections import LineCollection

        self.fig.set_size_inches(width, height)
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.add_collection(LineCollection(self.lines, colors="#444444", linewidths=0.7, zorder=1))
        ms = 0.42 * self.fs
        off = ms / 2 / 72
        for marker in sorted({m for _, _, m in self.heads}):   # sorted: the same SVG in every process
            pts = [(x, y) for x, y, m in self.heads if m == marker]
            dx, dy = {"^": (0, -off), ">": (-off, 0)}[marker]
            self.ax.plot([p[0] + dx for p in pts], [p[1] + dy for p in pts], linestyle="none", marker=marker,
                         markersize=ms, color="#444444", zorder=1.5)
        return self.fig


class _Layout:
    """Measures and places the items of a module diagram."""

    def __init__(self, canvas: _Canvas, with_notes: bool):
        self.c = canvas
        em = canvas.em
        self.pad_x, self.pad_y = 0.7 * em, 0.45 * em
        self.gap_v, self.gap_h = 1.5 * em, 0.8 * em
        self.gutter = 1.8 * em
        self.with_notes = with_notes
        self.box_h = 0.0

    # -- measuring -------------------------------------------------------------------------------
    def make_texts(self, items):
        for b in _boxes(items):
            text = b.label + (f"\n{b.shape}" if b.shape else "")
            b.text, tw, th = self.c.text(text, gid=f"box:{b.gid}" if b.kind not in ("concat", "input")
                                         else f"{b.kind}:{b.gid}")
            b.w, self.box_h = tw + 2 * self.pad_x, max(self.box_h, th + 2 * self.pad_y)
        for b in _boxes(items):
            b.h = self.box_h

    def width(self, it) -> float:
        if isinstance(it, _Box):
            return it.w
        if isinstance(it, _Fork):
            return sum(self.chain_width(ch, note) for ch, note in zip(it.chains, self._notes(it))) \
                + self.gap_h * (len(it.chains) - 1)
        extra = self._residual_boxes(it) + ([it.act] if it.act is not None else [])
        return self.gutter + max(self.width(it.fork), *(b.w for b in extra))

    def _notes(self, fork: _Fork):
        return fork.notes if fork.notes else [None] * len(fork.chains)

    def chain_width(self, chain, note=None) -> float:
        widths = [self.width(it) for it in chain] + [0.0]
        if note is not None:
            widths.append(note[1] + 2 * self.pad_x)
        return max(widths)

    def height(self, it) -> float:
        if isinstance(it, _Box):
            return it.h
        if isinstance(it, _Fork):
            h = max(self.chain_height(ch) for ch in it.chains)
            if it.notes:
                h += max(n[2] for n in it.notes if n is not None) + self.gap_v
            if it.concat:
                h += self.gap_v + self.box_h
            return h
        boxes = self._residual_boxes(it)
        act = (self.gap_v + self.box_h) if it.act is not None else 0.0
        return self.height(it.fork) + len(boxes) * (self.gap_v + self.box_h) + self.gap_v + self.sum_d + act

    @property
    def sum_d(self) -> float:
        return 0.8 * self.box_h

    def _residual_boxes(self, it: _Residual) -> list[_Box]:
        """Between the concat and the sum: the projection and the scale."""
        return it.proj + ([it.scale] if it.scale is not None else [])

    def chain_height(self, chain) -> float:
        return sum(self.height(it) for it in chain) + self.gap_v * max(len(chain) - 1, 0)

    # -- placing: returns (bottom anchors, top anchors) ---------------------------------------------
    def place_chain(self, chain, x: float, y: float, w: float):
        bottoms, tops = [], []
        for i, it in enumerate(chain):
            b, t = self.place(it, x, y, w)
            if i == 0:
                bottoms = b
            else:
                self.connect(tops, b)
            tops = t
            y += self.height(it) + self.gap_v
        return bottoms, tops

    def connect(self, tops, bottoms):
        for (x1, y1) in tops:
            for (x2, y2) in bottoms:
                self.c.arrow(x1, y1, x2, y2, self.gap_v)

    def place(self, it, x: float, y: float, w: float):
        if isinstance(it, _Box):
            bw = it.w if it.kind not in ("concat",) else w
            bx = x + (w - bw) / 2
            self.c.box(it, bx, y, bw)
            cx = x + w / 2
            return [(cx, y)], [(cx, y + it.h)]
        if isinstance(it, _Fork):
            return self.place_fork(it, x, y, w)
        return self.place_residual(it, x, y, w)

    def place_fork(self, f: _Fork, x: float, y: float, w: float):
        natural = self.width(f)
        x0 = x + (w - natural) / 2
        bottoms, tops, centres = [], [], []
        for chain, note in zip(f.chains, self._notes(f)):
            cw = self.chain_width(chain, note)
            b, t = self.place_chain(chain, x0, y, cw)
            bottoms += b
            tops.append(t)
            centres.append(x0 + cw / 2)
            x0 += cw + self.gap_h
        y_top = y + max(self.chain_height(ch) for ch in f.chains)
        if f.notes:
            note_h = max(n[2] for n in f.notes if n is not None)
            for note, cx in zip(f.notes, centres):
                if note is not None:
                    note[0].set_position((cx, y_top + self.gap_v / 2 + note_h / 2))
            y_top += note_h + self.gap_v
        if not f.concat:
            return bottoms, [p for t in tops for p in t]
        cy = y_top + self.gap_v
        self.c.box(f.concat_box, x + (w - natural) / 2, cy, natural)
        for t in tops:                             # straight up into the concat, column by column
            for (px, py) in t:
                self.c.arrow(px, py, px, cy, self.gap_v)
        cx = x + w / 2
        return bottoms, [(cx, cy + self.box_h)]

    def place_residual(self, r: _Residual, x: float, y: float, w: float):
        natural = self.width(r)
        x0 = x + (w - natural) / 2
        fx, fw = x0 + self.gutter, natural - self.gutter
        bottoms, tops = self.place_fork(r.fork, fx, y, fw)
        cx = fx + fw / 2
        yy = y + self.height(r.fork) + self.gap_v
        for b in self._residual_boxes(r):
            self.c.box(b, cx - b.w / 2, yy, b.w)
            self.connect(tops, [(cx, yy)])
            tops = [(cx, yy + b.h)]
            yy += b.h + self.gap_v
        # the sum: a circle with "+", the shortcut coming up the left gutter
        from matplotlib.patches import Circle

        d = self.sum_d
        sy = yy + d / 2
        self.c.ax.add_patch(Circle((cx, sy), d / 2, facecolor=LAYER_COLORS["sum"], edgecolor="#555555",
                                   linewidth=0.6, zorder=2))
        r.sum_text.set_position((cx, sy))
        r.sum_text.set_zorder(3)
        self.connect(tops, [(cx, yy)])
        left = min(p[0] for p in bottoms)
        ys = y - self.gap_v / 2                     # the level where the input fans out
        xg = x0 + self.gutter / 2
        self.c.lines.append([(left, ys), (xg, ys), (xg, sy), (cx - d / 2, sy)])
        self.c.heads.append((cx - d / 2, sy, ">"))
        top = [(cx, yy + d)]
        if r.act is not None:
            ay = yy + d + self.gap_v
            self.c.box(r.act, cx - r.act.w / 2, ay, r.act.w)
            self.connect(top, [(cx, ay)])
            top = [(cx, ay + r.act.h)]
        return bottoms, top


def _prepare(items, shapes: dict | None, layout: _Layout):
    """Concat boxes, sum texts, shapes and per-branch notes, before measuring."""
    for f in _forks(items):
        if f.concat:
            f.concat_box = _Box("Filter concat", "concat", f.gid, f.module)
    for it in _all_residuals(items):
        it.sum_text, _, _ = layout.c.text("+", gid=f"sum:{it.gid}", size=layout.c.fs * 1.3)
    if shapes is not None:
        for b in _boxes(items):
            if b.module is not None and id(b.module) in shapes:
                b.shape = _shape_text(shapes[id(b.module)])
        for f in _forks(items):                    # the concat: the branches' widths side by side
            outs = [shapes.get(id(branch)) for branch in f.module.branches]
            if f.concat_box is not None and all(outs):
                f.concat_box.shape = _shape_text((sum(o[0] for o in outs), *outs[0][1:]))
        for f in _forks(items):
            if f.concat:
                f.notes = []
                for i, branch in enumerate(f.module.branches):
                    t, tw, th = layout.c.text(f"{_si(_macs(branch, shapes))} MACs",
                                              gid=f"macs:{f.gid + '.' if f.gid else ''}branches.{i}",
                                              size=layout.c.fs * 0.9, style="italic", color="#333333",
                                              bbox=dict(facecolor="white", edgecolor="none", pad=0.5))
                    f.notes.append((t, tw, th))
    layout.make_texts(items)


def _all_residuals(items) -> list[_Residual]:
    out = []
    for it in items:
        if isinstance(it, _Residual):
            out.append(it)
        elif isinstance(it, _Fork):
            for chain in it.chains:
                out += _all_residuals(chain)
    return out


def _legend(c: _Canvas, kinds, max_w: float, colors: dict):
    """Legend entries (patch + label) in rows, left to right, wrapping at ``max_w``.

    Returns its height and ``place(x0, y_bottom)``, which puts it there."""
    from matplotlib.patches import Rectangle

    size = c.fs * 0.9
    sq, sep, skip = 0.9 * c.em, 0.4 * c.em, 1.5 * c.em
    rows, x = [[]], 0.0
    row_h = sq
    for kind in kinds:
        t, tw, th = c.text(kind, gid=f"legend:{kind}", size=size)
        t.set_ha("left")
        row_h = max(row_h, th)
        need = sq + sep + tw
        if rows[-1] and x + need > max_w:
            rows.append([])
            x = 0.0
        rows[-1].append((kind, t, x))
        x += need + skip
    row_h += 0.3 * c.em

    def place(x0: float, y_bottom: float):
        for i, row in enumerate(rows):
            y = y_bottom + (len(rows) - i - 0.5) * row_h
            for kind, t, dx in row:
                c.ax.add_patch(Rectangle((x0 + dx, y - sq / 2), sq, sq, facecolor=colors[kind],
                                         edgecolor="#555555", linewidth=0.5))
                t.set_position((x0 + dx + sq + sep, y))

    return (len(rows) * row_h if kinds else 0.0), place


def _legend_width(c: _Canvas, kinds) -> float:
    """Width of the widest legend entry (the legend wraps, but one entry cannot)."""
    widths = []
    for kind in kinds:
        t, tw, _ = c.text(kind, gid="", size=c.fs * 0.9)
        t.remove()
        widths.append(1.3 * c.em + tw)
    return max(widths + [0.0])


def _fit_font(build, max_width: float):
    """Build at the base font size; if wider than the column, shrink the font and build again."""
    fs = _BASE_FONT
    for _ in range(4):
        fig, width = build(fs)
        if width <= max_width + 1e-9 or fs <= _MIN_FONT:
            return fig
        fs = max(_MIN_FONT, fs * max_width / width * 0.97)
    return fig


def draw_module(block: nn.Module, input_shape=None, title: str | None = None, max_width: float = COLUMN_WIDTH):
    """One module drawn as the papers draw it; returns a matplotlib ``Figure``.

    ``block``: a ``Branches`` (an Inception module), a ``ResidualBranches`` (an
    Inception-ResNet block), a ``ConvBlock``, a pool, or an ``nn.Sequential`` of them (a stem:
    ``model.features[:6]``). Input at the bottom, one column per branch, "Filter concat" on
    top; a residual block shows its 1x1 linear projection, the scale and the sum with the
    shortcut. Every label is read from the layers: ``1x7 conv, 192`` (kernel, stride as
    ``/2``, output width; ``linear`` when no activation follows), ``3x3 max pool /2``.

    ``input_shape``: one sample's ``(C, H, W)``, e.g. ``(192, 28, 28)`` for GoogLeNet's
    inception (3a). With it every box carries its output shape (H x W x C) and every branch
    its multiply-adds (convolutions and fully connected layers, 1 MAC = 1, as the papers
    count; :func:`inception_edu.cost.conv_macs` on the shapes of one pass on the meta device).
    ``title``: a line on top (the total multiply-adds follow it when shapes are known).
    ``max_width``: the widest the figure may be, in inches (the book's column: 7).
    """
    if not isinstance(block, nn.Module):
        raise TypeError(f"draw_module draws a torch module (e.g. ie.create_model('googlenet')"
                        f".features.inception3a); got {type(block).__name__}")
    shape = _check_shape(input_shape) if input_shape is not None else None
    shapes = _run_shapes(block, shape) if shape is not None else None
    _read(block, "")                               # fail early, before any figure is made

    def build(fs):
        c = _Canvas(fs)
        layout = _Layout(c, shapes is not None)
        inp = _Box("input", "input", "", None, _shape_text(shape) if shape else "")
        items = [inp] + _read(block, "")
        _prepare(items, shapes, layout)
        w_content, h_content = layout.chain_width(items), layout.chain_height(items)
        lines = [title] if title else []
        if shapes is not None:
            lines.append(f"{_si(_macs(block, shapes))} multiply-adds (convolutions)")
        head, head_w, head_h = (c.text("\n".join(lines), gid="title") if lines else (None, 0.0, 0.0))
        kinds = sorted({b.kind for b in _boxes(items)}, key=list(LAYER_COLORS).index)
        margin = 0.8 * c.em
        inner = max(w_content, head_w, _legend_width(c, kinds))
        width = inner + 2 * margin
        if width > max_width:
            return c.fig, width
        legend_h, place_legend = _legend(c, kinds, inner, LAYER_COLORS)
        place_legend(margin, margin)
        y = margin + legend_h + layout.gap_v
        layout.place_chain(items, margin, y, inner)
        top = y + h_content
        if head is not None:
            head.set_position((margin + inner / 2, top + layout.gap_v / 2 + head_h / 2))
            top += layout.gap_v / 2 + head_h
        return c.finish(width, top + margin), width

    return _fit_font(build, max_width)


# ------------------------------------------------------------------------------------------------
# The network: its stage table drawn in order
# ------------------------------------------------------------------------------------------------
def _signature(module: nn.Module) -> tuple:
    """The layer kinds, kernels and strides of a module, widths left out: modules that differ
    only in width (Inception-v3's three Fig. 5 modules) are "the same module" of a table."""
    return tuple((b.kind, b.label.split(",")[0]) for b in _boxes(_read(module, "")))


def _groups(model, table=None):
    """Consecutive stages with the same label, kind and layer signature, split after an aux tap;
    with ``table`` (the model's stage table) also each group's multiply-adds and output."""
    taps = set(getattr(model, "aux", {}) or {})
    groups = []
    for s in model.stages:
        key = (s.label, s.kind, _signature(s.module))
        if groups and s.label and groups[-1]["key"] == key and groups[-1]["stages"][-1] not in taps:
            groups[-1]["stages"].append(s.name)
        else:
            groups.append({"key": key, "label": s.label or s.name, "kind": s.kind, "stages": [s.name]})
    if table is None:
        return groups
    rows = {r["stage"]: r for _, r in table.iterrows()}
    for g in groups:
        g["macs"] = sum(int(rows[n]["multiply-adds"]) for n in g["stages"])
        g["output"] = rows[g["stages"][-1]]["output"]
        g["tap"] = g["stages"][-1] if g["stages"][-1] in taps else None
    return groups


def _hwc(output: str) -> str:
    """stage_table's 'C x H x W' -> '28x28x192'; a 1-D output stays as it is."""
    parts = [p.strip() for p in str(output).split("x") if p.strip()]
    if len(parts) == 3:
        return f"{parts[1]}x{parts[2]}x{parts[0]}"
    return "x".join(parts)


def _stage_kind_colors() -> dict:
    from .figures.uniform import KIND_COLORS

    return KIND_COLORS


def _pale(color: str, amount: float = 0.55) -> tuple:
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def draw_network(model: nn.Module, input_size=None, max_width: float = COLUMN_WIDTH):
    """A network as its stage table drawn in order; returns a matplotlib ``Figure``.

    Bottom to top, as the papers' network figures (Inception-v4 Fig. 9): the input, each row
    of ``model.stages`` (consecutive modules of the same kind shown once with "x 4"), a row
    for each auxiliary head after the stage it taps, and the head. Beside each row: the
    stage names, the output grid and width (H x W x C), and a bar of its share of the
    network's multiply-adds (:func:`inception_edu.cost.stage_table`, eval mode: the aux heads
    run in training only and are not in the total). ``input_size``: the input side (default:
    the model's native ``default_size``).
    """
    from .cost import stage_table

    if not getattr(model, "stages", None):
        raise ValueError("draw_network needs an inception_edu model with a stage table (model.stages), "
                         "e.g. ie.create_model('inception_v4'); draw one module with draw_module")
    size = int(input_size or model.default_size)
    table = stage_table(model, size, counter="fast")
    groups = _groups(model, table)
    total = table[table["stage"] == "total"].iloc[0]
    head = table[table["stage"] == "head"].iloc[0]
    total_macs, total_params = int(total["multiply-adds"]), int(total["params"])
    colors = {k: _pale(v) for k, v in _stage_kind_colors().items()}
    rows = [{"name": "", "label": "input", "kind": None, "times": "", "output": f"{size}x{size}x{model.in_chans}",
             "share": None}]
    for g in groups:
        names = g["stages"]
        rows.append({"name": names[0] if len(names) == 1 else f"{names[0]} ... {names[-1]}", "label": g["label"],
                     "kind": g["kind"], "times": f"x {len(names)}" if len(names) > 1 else "",
                     "output": _hwc(g["output"]), "share": g["macs"] / total_macs, "gid": ",".join(names)})
        if g["tap"]:
            rows.append({"name": f"aux.{g['tap']}", "label": "auxiliary classifier", "kind": "auxiliary",
                         "times": "", "output": str(model.num_classes), "share": None, "note": "training only",
                         "gid": f"aux.{g['tap']}"})
    rows.append({"name": "head", "label": head["label"], "kind": "classifier", "times": "",
                 "output": _hwc(head["output"]), "share": int(head["multiply-adds"]) / total_macs, "gid": "head"})

    def build(fs):
        from matplotlib.patches import FancyBboxPatch, Rectangle

        c = _Canvas(fs)
        em = c.em
        pad_x, pad_y, gap = 0.6 * em, 0.35 * em, 0.9 * em
        small = fs * 0.9
        cells = []
        for i, r in enumerate(rows):
            gid = r.get("gid", "input")
            name = c.text(r["name"], gid=f"name:{gid}", size=small, color="#555555") if r["name"] else None
            label = c.text(r["label"], gid=f"row:{gid}")
            times = c.text(r["times"], gid=f"times:{gid}") if r["times"] else None
            out = c.text(r["output"], gid=f"output:{gid}", size=small)
            share = (f"{100 * r['share']:.1f} %" if r["share"] is not None else r.get("note", ""))
            pct = c.text(share, gid=f"share:{gid}", size=small) if share else None
            cells.append((name, label, times, out, pct))
        col = lambda j: max([cell[j][1] for cell in cells if cell[j] is not None] + [0.0])  # noqa: E731
        hdr = {j: c.text(s, gid=f"header:{s}", size=small, weight="bold")
               for j, s in ((0, "stage"), (3, "output"), (4, "share of multiply-adds"))}
        w_name, w_label = max(col(0), hdr[0][1]), col(1) + 2 * pad_x
        w_times, w_out, w_pct = col(2), max(col(3), hdr[3][1]), col(4)
        row_h = max(max(cell[j][2] for cell in cells for j in range(5) if cell[j] is not None) + 2 * pad_y,
                    1.6 * em)
        title_text = (f"{model.name} at {size}x{size}: {_si(total_params)} parameters, "
                      f"{_si(total_macs)} multiply-adds")
        title, tw, th = c.text(title_text, gid="title")
        kinds = [k for k in _stage_kind_colors() if any(r["kind"] == k for r in rows)]
        margin = 0.8 * em
        w_bar_min = max(hdr[4][1] - w_pct - gap, 6 * em)
        fixed = w_name + w_label + w_times + w_out + w_pct + 5 * gap
        inner = max(fixed + w_bar_min, tw, _legend_width(c, kinds))
        width = inner + 2 * margin
        if width > max_width:
            return c.fig, width
        # legend at the bottom, then the rows bottom-up, then the header and the title
        legend_h, place_legend = _legend(c, kinds, inner, colors)
        place_legend(margin, margin)
        y = margin + legend_h + gap
        xs = [margin]
        for wcol in (w_name, w_label, w_times, w_out):
            xs.append(xs[-1] + wcol + gap)
        w_bar = inner - (xs[4] - margin) - w_pct - gap
        big = max([r["share"] for r in rows if r["share"] is not None] + [1e-12])
        for r, cell in zip(rows, cells):
            name, label, times, out, pct = cell
            cy = y + row_h / 2
            if name is not None:
                name[0].set_ha("right")
                name[0].set_position((xs[0] + w_name, cy))
            face = colors.get(r["kind"], LAYER_COLORS["input"]) if r["kind"] else LAYER_COLORS["input"]
            c.ax.add_patch(FancyBboxPatch((xs[1], y + 0.1 * em), w_label, row_h - 0.2 * em,
                                          boxstyle=f"round,pad=0,rounding_size={0.3 * em:.4f}",
                                          facecolor=face, edgecolor="#555555", linewidth=0.6))
            label[0].set_position((xs[1] + w_label / 2, cy))
            if times is not None:
                times[0].set_ha("left")
                times[0].set_position((xs[2], cy))
            out[0].set_ha("left")
            out[0].set_position((xs[3], cy))
            bar = 0.0
            if r["share"] is not None:
                bar = w_bar * r["share"] / big
                c.ax.add_patch(Rectangle((xs[4], y + 0.25 * row_h), bar, 0.5 * row_h,
                                         facecolor=_stage_kind_colors().get(r["kind"], "tab:gray"),
                                         edgecolor="none"))
            if pct is not None:
                pct[0].set_ha("left")
                pct[0].set_position((xs[4] + bar + 0.4 * em, cy))
            y += row_h
        y += 0.3 * em
        hy = y + hdr[0][2] / 2
        for j, (t, _, _) in hdr.items():
            t.set_ha("right" if j == 0 else "left")
            t.set_position(((xs[0] + w_name) if j == 0 else xs[j], hy))
        y += hdr[0][2] + gap / 2
        title.set_position((margin + inner / 2, y + th / 2))
        height = y + th + margin
        return c.finish(width, height), width

    return _fit_font(build, max_width)


# ------------------------------------------------------------------------------------------------
# SVG for the web page
# ------------------------------------------------------------------------------------------------
def to_svg(fig) -> str:
    """The figure as SVG text that is the same on every run (what nbval compares): fixed
    element ids (``svg.hashsalt``), no creation date, and text kept as text
    (``svg.fonttype='none'``: searchable on the page, crisp at any zoom)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "inception_edu", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


class InlineSVG:
    """A diagram's SVG text for a notebook output: inline HTML (so the web page's text is
    searchable and crisp at any zoom) and ``image/svg+xml`` for front ends that want it."""

    def __init__(self, svg: str):
        self.data = svg

    def _repr_html_(self) -> str:
        # Inline in the page: the XML prolog and DOCTYPE belong to a file, not to HTML.
        svg = self.data[self.data.index("<svg"):]
        return f'<div class="ie-diagram" style="max-width:100%;overflow-x:auto">{svg}</div>'

    def _repr_svg_(self) -> str:
        return self.data

    def __repr__(self) -> str:
        # The notebook's text/plain: stable (no memory address), so nbval can hold it.
        return "InlineSVG(diagram)"


def show_svg(fig) -> InlineSVG:
    """Display a diagram as SVG in a notebook; the figure is closed.

    A chapter cell ends with ``ie.show_svg(ie.draw_module(...))``: the stored output is
    deterministic SVG, which the web page shows inline (its labels are page text)."""
    import matplotlib.pyplot as plt

    out = InlineSVG(to_svg(fig))
    plt.close(fig)
    return out


def distinct_stages(model) -> list:
    """The first stage of each distinct module of a model: a stage whose layers have the same
    types, kernels and strides as an earlier one (its widths may differ) is left out.
    Inception-v4's four Inception-A modules are one; what the tests and the benchmark draw."""
    seen, out = set(), []
    for s in model.stages:
        key = tuple((type(m).__name__, getattr(m, "kernel_size", None), getattr(m, "stride", None))
                    for m in s.module.modules())
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def stage_inputs(model, input_size=None) -> dict[str, tuple]:
    """The input shape (C, H, W) of every stage at ``input_size`` (default: the model's native
    side), from forward pre-hooks on one pass of the trunk on the meta device."""
    import torch
    from torch.func import functional_call

    size = int(input_size or model.default_size)
    shapes, handles = {}, []
    for name in model.stage_names():
        def hook(mod, args, name=name):
            shapes[name] = tuple(int(s) for s in args[0].shape[1:])
        handles.append(getattr(model.features, name).register_forward_pre_hook(hook))
    tensors = dict(model.features.named_parameters(remove_duplicate=False))
    tensors.update(model.features.named_buffers(remove_duplicate=False))
    try:
        with torch.no_grad(), torch.device("meta"):
            functional_call(model.features, {n: torch.empty_like(t, device="meta") for n, t in tensors.items()},
                            (torch.empty(1, model.in_chans, size, size),))
    finally:
        for h in handles:
            h.remove()
    return shapes


# ------------------------------------------------------------------------------------------------
# The diagram explorer: a network and one of its modules
# ------------------------------------------------------------------------------------------------
#: The networks the explorer offers by default: one of each design the book teaches.
#: (inception_v2's modules are inception_v3's; only its stem differs.)
EXPLORER_NETWORKS = ("nin_cifar", "googlenet", "bn_inception", "inception_v3", "inception_v4",
                     "inception_resnet_v1", "inception_resnet_v2")


@lru_cache(maxsize=None)
def _meta_model(name: str):
    """The model on the meta device: no weights, built in milliseconds."""
    import torch

    from .registry import create_model

    with torch.device("meta"):
        return create_model(name)


@lru_cache(maxsize=None)
def _network(name: str):
    """The model on the meta device, its stage table at its native size (counted once), and
    the input shape of every stage."""
    from .cost import stage_table

    model = _meta_model(name)
    return model, stage_table(model, counter="fast"), stage_inputs(model)


def _drawable(module: nn.Module) -> bool:
    """Worth a diagram: a module of several layers (not a lone conv or pool)."""
    return len(_boxes(_read(module, ""))) > 1


def diagram_choices(network: str, modules_only: bool = False) -> list[tuple[str, str]]:
    """The distinct modules of a network, as ``(label, stage name)`` dropdown options: one per
    row of :func:`draw_network` (Inception-v4's four Inception-A modules are one choice).
    ``modules_only``: leave out the rows of a single layer (a lone conv or pool)."""
    model = _meta_model(network)
    out = []
    for g in _groups(model):
        first = g["stages"][0]
        if modules_only and not _drawable(getattr(model.features, first)):
            continue
        n = len(g["stages"])
        out.append((f"{first}: {g['label']}" + (f" (x {n})" if n > 1 else ""), first))
    return out


def diagram_data(network: str = "inception_v4", stage: str | None = None) -> dict:
    """What the explorer draws: the stage's module, its input shape at the network's native
    size, and its share of the network's multiply-adds. ``stage``: a name from
    ``diagram_choices(network)`` (or any stage of the network); one the network does not
    have falls back to its first Inception-type module, so every (network, stage) pair of
    the controls gives a frame."""
    from .registry import list_models

    if network not in list_models():
        raise ValueError(f"unknown network {network!r}; choose one of {', '.join(list_models())}")
    model, table, inputs = _network(network)
    names = [s.name for s in model.stages]
    if stage not in names:
        stage = next((s.name for s in model.stages if s.kind in ("inception", "residual")), names[0])
    row = table[table["stage"] == stage].iloc[0]
    total = int(table[table["stage"] == "total"].iloc[0]["multiply-adds"])
    module = model.features[names.index(stage)]
    return {"network": network, "stage": stage, "label": row["label"], "module": module,
            "input_shape": inputs[stage], "macs": int(row["multiply-adds"]), "share": int(row["multiply-adds"]) / total,
            "size": model.default_size}


def draw_diagram(data: dict):
    """:func:`draw_module` of the chosen stage, titled with where it sits and what it costs."""
    d = data
    title = (f"{d['network']}.features.{d['stage']} ({d['label']}) at {d['size']}x{d['size']}: "
             f"{100 * d['share']:.1f} % of the network's multiply-adds")
    return draw_module(d["module"], d["input_shape"], title=title)


def plot_diagram(network: str = "inception_v4", stage: str | None = None):
    """Static figure of :func:`diagram_data`: one module of a network, drawn with its costs."""
    return draw_diagram(diagram_data(network, stage))


def _diagram_numbers(d: dict) -> dict:
    return {"multiply-adds (this module)": d["macs"], "share of the network (%)": round(100 * d["share"], 1)}


def explore_diagram(network: str = "inception_v4", stage: str | None = None, networks=EXPLORER_NETWORKS):
    """Live explorer: pick a network's module from one dropdown ("inception_v4 / Mixed_5b:
    Inception-A (Fig. 4) (x 4)"); it is drawn with its output shapes and per-branch
    multiply-adds. One dropdown of (network, module) pairs rather than two dependent ones, so
    the option list is finite and every combination of the controls is a real module: the
    web page precomputes one frame per option. ``networks``: the networks offered (every
    module of several layers of each; the default is one network per paper, about 60 options).
    """
    import inspect

    from .widgets import Explorer, dropdown

    networks = list(dict.fromkeys([*networks, network]))
    first = diagram_data(network, stage)["stage"]
    options = [(f"{n} / {label}", f"{n}/{s}") for n in networks for label, s in diagram_choices(n, True)]
    values = [v for _, v in options]
    value = f"{network}/{first}"
    if value not in values:                       # a single-layer stage asked for by name
        label = next(lab for lab, s in diagram_choices(network) if s == first) if first in \
            [s for _, s in diagram_choices(network)] else first
        options.insert(0, (f"{network} / {label}", value))

    def compute(module: str) -> dict:
        net, _, name = module.partition("/")
        return diagram_data(net, name)

    # The web form's name and the numbers beside the figure, where the Explorer takes them.
    accepted = inspect.signature(Explorer).parameters
    extra = {k: v for k, v in (("name", "explore_diagram"), ("numbers", _diagram_numbers)) if k in accepted}
    return Explorer(compute, draw_diagram, {"module": dropdown(options, value, "module")},
                    title="module diagrams", **extra)
