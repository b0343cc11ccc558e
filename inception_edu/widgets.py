"""Interactive explorers: controls that recompute a figure as the reader moves them.

An explorer is three small pieces:

* ``compute(**values) -> data``: the numbers only, and fast -- an analytic formula or a table
  computed once, never a FLOP counter run on every slider move;
* ``draw(data) -> Figure``: a matplotlib figure of those numbers;
* the controls (ipywidgets sliders, dropdowns, checkboxes), one per argument of ``compute``.

It lives in two worlds, from the same two functions:

* **with a kernel** (Jupyter, Colab; ipywidgets 7.7 and 8): the live :class:`Explorer` widget,
  continuous ranges, ``draw(compute(**values))`` on every move;
* **without a kernel** (the rendered book, a stored notebook): :meth:`Explorer.web`, a plain
  HTML form (range inputs, selects, checkboxes; keyboard- and phone-usable) over a *grid* of
  control values that each explorer declares. Every frame of that grid is drawn by the same
  ``draw(compute(**values))`` when the cell runs and embedded as a small PNG with its numbers;
  a few lines of vanilla JavaScript (no network) swap them as the reader moves a control.

Displaying an :class:`Explorer` sends both: the widget view (what a live front end shows) and
the HTML form as ``text/html`` (what a page without a kernel shows: the book's configuration
ranks the widget view last for HTML). nbval compares the ``text/html`` and ``text/plain``
parts, so both are deterministic: PNGs carry no date or software stamp, and the same library
and matplotlib draw the same bytes.

The live figure is rendered to PNG into an ``ipywidgets.Image`` rather than through an
``Output`` widget: an ``Output`` capture sends display messages that Jupyter front ends route
into the widget but that nbval records as cell outputs. An ``Image`` is plain widget state,
identical under ipywidgets 7.7 (Colab) and 8 (Jupyter).
"""
from __future__ import annotations

import base64
import html
import io
import itertools
import json
import sys
from typing import Any, Callable, Mapping

import ipywidgets as W
import matplotlib.pyplot as plt

#: The most frames one web form may hold: a page carries every frame of its explorers
#: (about 10 kB each at the web resolution), and a chapter page must stay under 3 MB.
MAX_FRAMES = 250
#: Resolution and palette of the web frames: 72 dpi is the page's own width for a 10-inch
#: figure; 64 colours keep the antialiased lines and a third of the bytes of a full-colour PNG.
WEB_DPI, WEB_COLORS = 72, 64


def slider(value: float, min: float, max: float, step: float = 1, description: str = "") -> W.Widget:
    """An integer slider when every bound is an integer, else a float slider."""
    ints = all(float(v).is_integer() for v in (value, min, max, step))
    cls = W.IntSlider if ints else W.FloatSlider
    cast = int if ints else float
    return cls(value=cast(value), min=cast(min), max=cast(max), step=cast(step), description=description,
               continuous_update=False, style={"description_width": "initial"})


def dropdown(options, value=None, description: str = "") -> W.Widget:
    """A dropdown; ``options`` is a list of values or of ``(label, value)`` pairs."""
    options = list(options)
    first = options[0][1] if isinstance(options[0], tuple) else options[0]
    return W.Dropdown(options=options, value=first if value is None else value, description=description,
                      style={"description_width": "initial"})


def checkbox(value: bool = False, description: str = "") -> W.Widget:
    return W.Checkbox(value=bool(value), description=description, indent=False)


def render_png(fig, dpi: int = 80, colors: int | None = None) -> bytes:
    """The figure as PNG bytes; closes it so the notebook does not also show it.

    No ``Software`` stamp (the bytes depend only on the figure, so stored outputs are
    deterministic). ``colors``: reduce to a palette of that many colours (the web frames).
    The figure is saved as laid out (no ``bbox_inches="tight"``, which draws it a second
    time), so ``draw`` functions set their own margins (``tight_layout`` or ``subplots_adjust``).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    if colors is None:
        return buf.getvalue()
    from PIL import Image

    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    small = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="png", optimize=True)
    return out.getvalue()


def _options(control) -> list[tuple[str, Any]]:
    """(label, value) of each option of a dropdown, as given to :func:`dropdown`."""
    return [o if isinstance(o, tuple) else (str(o), o) for o in control.options]


def _kind(control) -> str:
    if isinstance(control, W.Checkbox):
        return "checkbox"
    if isinstance(control, W.Dropdown):
        return "select"
    if isinstance(control, (W.IntSlider, W.FloatSlider)):
        return "range"
    raise TypeError(f"an explorer's controls are slider(), dropdown() or checkbox(); got {type(control).__name__}")


def format_number(value) -> str:
    """How the explorers print a number: 1,234,567 for whole numbers, 4 significant digits else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def _plain(value):
    """A JSON-safe copy of a number (numpy scalars included); NaN/inf as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return None
    return value


class Explorer(W.VBox):
    """Controls above a figure that ``draw(compute(**values))`` redraws on every change.

    >>> ex = Explorer(compute, draw, {"width": slider(64, 16, 256, 16)}, title="bottleneck",
    ...               name="explore_bottleneck", grid={"width": [16, 32, 64, 128, 256]},
    ...               numbers=lambda d: {"multiply-adds": d["macs"]})
    >>> ex.set(width=32)       # what a reader's slider move does; tests drive it this way
    >>> ex.data                # the numbers behind the figure now on screen
    >>> ex.web()               # the same explorer as a kernel-free HTML form

    ``grid``: the values each control takes on the web page (a dropdown's options and a
    checkbox's two states unless given; a slider has no web values unless given, and keeps its
    current value there, said in words). The control's current value always joins its grid.
    ``numbers(data) -> {label: number}``: the numbers shown beside the figure, live and on the
    web page.
    """

    def __init__(self, compute: Callable[..., Any], draw: Callable[[Any], Any], controls: dict[str, W.Widget],
                 title: str = "", dpi: int = 80, *, name: str = "", grid: Mapping[str, list] | None = None,
                 numbers: Callable[[Any], Mapping[str, Any]] | None = None):
        self.compute, self.draw, self.controls, self.title, self.dpi = compute, draw, dict(controls), title, dpi
        self.name = name or title
        self.numbers = numbers or (lambda data: {})
        self.data: Any = None
        self.image = W.Image(format="png")
        self.readout = W.HTML()
        unknown = sorted(set(grid or {}) - set(self.controls))
        if unknown:
            raise ValueError(f"the web grid names {', '.join(map(repr, unknown))}, which are not controls of "
                             f"{self.name!r}; its controls are {', '.join(self.controls)}")
        self._declared = {k: list(v) for k, v in (grid or {}).items()}
        box = W.HBox if len(self.controls) <= 2 else W.VBox
        super().__init__([box(list(self.controls.values())), self.image, self.readout])
        for control in self.controls.values():
            _kind(control)
            control.observe(self._on_change, names="value")
        self.redraw()

    # -- live --------------------------------------------------------------------------------
    @property
    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def _on_change(self, change) -> None:
        self.redraw()

    def redraw(self) -> None:
        self.data = self.compute(**self.values)
        self.image.value = render_png(self.draw(self.data), self.dpi)
        self.readout.value = _numbers_html(self.numbers(self.data))

    def set(self, **values) -> "Explorer":
        """Move several controls at once, redrawing once; unknown names are an error."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"{self.title or 'this explorer'} has no control {', '.join(map(repr, unknown))}; "
                             f"its controls are {', '.join(self.controls)}")
        for name, value in values.items():
            control = self.controls[name]
            control.unobserve(self._on_change, names="value")
            try:
                control.value = value
            finally:
                control.observe(self._on_change, names="value")
        self.redraw()
        return self

    # -- kernel-free ---------------------------------------------------------------------------
    @property
    def grid(self) -> dict[str, list]:
        """The web form's values per control (controls with one value are fixed on the page)."""
        out = {}
        for name, control in self.controls.items():
            kind = _kind(control)
            if name in self._declared:
                values = list(self._declared[name])
            elif kind == "checkbox":
                values = [False, True]
            elif kind == "select":
                values = [v for _, v in _options(control)]
            else:
                values = []
            if control.value not in values:
                values = sorted([*values, control.value], key=lambda v: (isinstance(v, str), v))
            out[name] = values
        return out

    @property
    def grid_added(self) -> dict[str, Any]:
        """Current values that the declared grid lacked (they cost extra frames on the page)."""
        added = {}
        for name, control in self.controls.items():
            declared = self._declared.get(name)
            if declared is not None and control.value not in declared:
                added[name] = control.value
        return added

    def frame_count(self) -> int:
        n = 1
        for values in self.grid.values():
            n *= len(values)
        return n

    def web(self, dpi: int = WEB_DPI, colors: int = WEB_COLORS) -> "WebExplorer":
        """The kernel-free HTML form: every frame of :attr:`grid`, drawn now (see module doc)."""
        return WebExplorer(self, dpi, colors)

    # -- display -------------------------------------------------------------------------------
    def _widget_view(self) -> dict:
        return {"version_major": 2, "version_minor": 0, "model_id": self.model_id}

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = {"text/plain": repr(self), "application/vnd.jupyter.widget-view+json": self._widget_view()}
        # Colab always runs a kernel and shows the widget: drawing the web frames there would
        # only make the reader wait. Everywhere else the stored output carries the web form.
        if "google.colab" not in sys.modules:
            bundle["text/html"] = self.web().html
        return bundle

    def _ipython_display_(self, **kwargs) -> None:
        # ipywidgets 7.7 displays a widget through this hook (8 through _repr_mimebundle_);
        # one definition serves both.
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)

    def __repr__(self) -> str:
        # Fixed text (what nbval compares and what a plain console shows): the controls, not
        # widget ids or image bytes.
        return f"Explorer({self.title!r}; controls: {', '.join(self.controls)})"


def _number_rows(numbers: Mapping[str, Any]) -> str:
    return "".join(f'<div><dt>{html.escape(k)}</dt><dd data-key="{html.escape(k)}" '
                   f"data-value='{html.escape(json.dumps(_plain(v)))}'>{html.escape(format_number(v))}</dd></div>"
                   for k, v in numbers.items())


def _numbers_html(numbers: Mapping[str, Any]) -> str:
    return f'<dl class="ie-numbers">{_number_rows(numbers)}</dl>' if numbers else ""


_CSS = """
.ie-explorer{border:1px solid #d0d7de;border-radius:6px;padding:.6em .8em;margin:1em 0;font-size:.92em}
.ie-explorer form{display:flex;flex-wrap:wrap;gap:.4em 1.4em;margin:0 0 .5em}
.ie-explorer label{display:flex;align-items:center;gap:.45em;min-height:2em}
.ie-explorer input[type=range]{width:11em;max-width:60vw}
.ie-explorer output{font-variant-numeric:tabular-nums;min-width:3.5em;font-weight:600}
.ie-explorer select,.ie-explorer input{font-size:1em}
.ie-explorer input[type=checkbox]{width:1.2em;height:1.2em}
.ie-explorer img.ie-frame{width:100%;height:auto;display:block}
.ie-explorer dl.ie-numbers{display:flex;flex-wrap:wrap;gap:.2em 1.6em;margin:.4em 0 0}
.ie-explorer dl.ie-numbers div{display:flex;gap:.4em}
.ie-explorer dl.ie-numbers dt{font-weight:normal;color:#555}
.ie-explorer dl.ie-numbers dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums}
.ie-explorer p.ie-fixed{margin:.3em 0 0;color:#555;font-size:.9em}
"""

# Runs once per explorer, where it stands in the page; needs nothing but the DOM.
_JS = """
(function(root){
  if(!root||root.dataset.ready)return;root.dataset.ready="1";
  var d=JSON.parse(root.querySelector("script.ie-data").textContent);
  var form=root.querySelector("form"),img=root.querySelector("img.ie-frame"),dl=root.querySelector("dl.ie-numbers");
  function index(c){var el=form.elements[c.name];return c.kind==="checkbox"?(el.checked?1:0):+el.value;}
  function show(){
    var key=d.controls.map(index).join(","),f=d.frames[key];if(!f)return;
    d.controls.forEach(function(c){if(c.kind==="range"){var i=index(c),o=root.querySelector('output[data-for="'+c.name+'"]');
      o.textContent=c.labels[i];form.elements[c.name].setAttribute("aria-valuetext",c.labels[i]);}});
    img.src="data:image/png;base64,"+d.images[f[0]];img.alt=d.alt+" ("+f[1]+")";
    if(dl)dl.innerHTML=f[2];
    root.dataset.values=JSON.stringify(f[3]);
  }
  form.addEventListener("input",show);form.addEventListener("change",show);
  form.addEventListener("submit",function(e){e.preventDefault();});
})(document.currentScript&&document.currentScript.closest(".ie-explorer"));
"""


class WebExplorer:
    """An :class:`Explorer` as a self-contained HTML form (``_repr_html_``; ``.html``).

    Root element: ``<div class="ie-explorer" data-explorer="NAME">``; its ``data-values``
    attribute holds the control values of the frame on screen (JSON), and each number beside
    the figure sits in a ``<dd data-key=... data-value=...>``, so a test can read both.
    """

    def __init__(self, explorer: Explorer, dpi: int = WEB_DPI, colors: int = WEB_COLORS):
        ex = explorer
        grid = ex.grid
        moving = [n for n, v in grid.items() if len(v) > 1]
        if not moving:
            raise ValueError(f"{ex.name!r} has no control with more than one value on the web page: "
                             f"give Explorer(grid={{...}}) values for a slider")
        frames = ex.frame_count()
        if frames > MAX_FRAMES:
            sizes = ", ".join(f"{n}: {len(v)}" for n, v in grid.items() if len(v) > 1)
            raise ValueError(f"{ex.name!r} would need {frames} frames on the web page (at most {MAX_FRAMES}); "
                             f"give fewer grid values ({sizes})")
        self.explorer, self.grid, self.moving = ex, grid, moving
        fixed = {n: grid[n][0] for n in grid if n not in moving}
        images, seen, table = [], {}, {}
        for combo in itertools.product(*(range(len(grid[n])) for n in moving)):
            values = {**fixed, **{n: grid[n][i] for n, i in zip(moving, combo)}}
            data = ex.compute(**values)
            png = render_png(ex.draw(data), dpi, colors)
            if png not in seen:
                seen[png] = len(images)
                images.append(base64.b64encode(png).decode("ascii"))
            words = ", ".join(f"{self._label(n)} {self._value_label(n, values[n])}" for n in moving)
            table[",".join(map(str, combo))] = [seen[png], words, _number_rows(ex.numbers(data)),
                                                {n: _plain(values[n]) for n in ex.controls}]
        self.frames, self.images = table, images
        self.fixed = fixed
        self.html = self._html(ex.values)

    def _label(self, name: str) -> str:
        return self.explorer.controls[name].description or name

    def _value_label(self, name: str, value) -> str:
        control = self.explorer.controls[name]
        if _kind(control) == "select":
            return next(label for label, v in _options(control) if v == value)
        if _kind(control) == "checkbox":
            return "on" if value else "off"
        return format_number(value)

    def _html(self, current: Mapping[str, Any]) -> str:
        ex, grid = self.explorer, self.grid
        parts, controls = [], []
        start = [grid[n].index(current[n]) for n in self.moving]
        for name, i in zip(self.moving, start):
            control, values = ex.controls[name], grid[name]
            kind, label = _kind(control), html.escape(self._label(name))
            labels = [self._value_label(name, v) for v in values]
            controls.append({"name": name, "kind": kind, "labels": labels, "values": [_plain(v) for v in values]})
            if kind == "range":
                parts.append(f'<label>{label} <input type="range" name="{name}" min="0" max="{len(values) - 1}" '
                             f'step="1" value="{i}" aria-valuetext="{html.escape(labels[i])}">'
                             f'<output data-for="{name}">{html.escape(labels[i])}</output></label>')
            elif kind == "select":
                options = "".join(f'<option value="{j}"{" selected" if j == i else ""}>{html.escape(t)}</option>'
                                  for j, t in enumerate(labels))
                parts.append(f'<label>{label} <select name="{name}">{options}</select></label>')
            else:
                parts.append(f'<label><input type="checkbox" name="{name}"{" checked" if values[i] else ""}> '
                             f"{label}</label>")
        first = self.frames[",".join(map(str, start))]
        fixed = ""
        if self.fixed:
            fixed = ('<p class="ie-fixed">Fixed on this page: '
                     + ", ".join(f"{html.escape(self._label(n))} = {html.escape(self._value_label(n, v))}"
                                 for n, v in self.fixed.items()) + ".</p>")
        alt = html.escape(f"{ex.title or ex.name}: figure", quote=True)
        data = json.dumps({"controls": controls, "frames": self.frames, "images": self.images,
                           "alt": f"{ex.title or ex.name}: figure"}, separators=(",", ":"), sort_keys=True)
        data = data.replace("</", "<\\/")
        return (f'<div class="ie-explorer" data-explorer="{html.escape(ex.name)}" '
                f"data-values='{html.escape(json.dumps(first[3]))}'>"
                f"<style>{_CSS.strip()}</style>"
                f'<form class="ie-controls" aria-label="{html.escape(ex.title or ex.name)} controls">{"".join(parts)}</form>'
                f'<img class="ie-frame" src="data:image/png;base64,{self.images[first[0]]}" '
                f'alt="{alt} ({html.escape(first[1])})">'
                f'<dl class="ie-numbers">{first[2]}</dl>{fixed}'
                f'<script type="application/json" class="ie-data">{data}</script>'
                f"<script>{_JS.strip()}</script></div>")

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"WebExplorer({self.explorer.name!r}; {len(self.frames)} frames)"
