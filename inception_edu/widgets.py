"""Interactive explorers: controls that recompute a figure as the reader moves them.

An explorer is three small pieces:

* ``compute(**values) -> data``: the numbers only, and fast -- an analytic formula or a table
  computed once, never a FLOP counter run on every slider move;
* ``draw(data) -> Figure``: a matplotlib figure of those numbers;
* the controls (ipywidgets sliders, dropdowns, checkboxes), one per argument of ``compute``.

The same ``compute`` and ``draw`` make the static ``plot_*`` function of each topic, which is
what the rendered book shows (no kernel behind a web page) and what nbval compares.

The figure is rendered to PNG into an ``ipywidgets.Image`` rather than through an ``Output``
widget: an ``Output`` capture sends display messages that Jupyter front ends route into the
widget but that nbval records as cell outputs, so a notebook stored by one would not match a
run under the other. An ``Image`` is plain widget state, identical under ipywidgets 7.7
(Colab) and 8 (Jupyter).
"""
from __future__ import annotations

import io
from typing import Any, Callable

import ipywidgets as W
import matplotlib.pyplot as plt


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


def render_png(fig, dpi: int = 80) -> bytes:
    """The figure as PNG bytes; closes it so the notebook does not also show it.

    The figure is saved as laid out (no ``bbox_inches="tight"``, which draws it a second
    time to measure every label: a third of a redraw), so ``draw`` functions set their own
    margins (``tight_layout`` or ``subplots_adjust``).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


class Explorer(W.VBox):
    """Controls above a figure that ``draw(compute(**values))`` redraws on every change.

    >>> ex = Explorer(compute, draw, {"width": slider(64, 16, 256, 16)}, title="bottleneck")
    >>> ex.set(width=32)       # what a reader's slider move does; tests drive it this way
    >>> ex.data                # the numbers behind the figure now on screen
    """

    def __init__(self, compute: Callable[..., Any], draw: Callable[[Any], Any], controls: dict[str, W.Widget],
                 title: str = "", dpi: int = 80):
        self.compute, self.draw, self.controls, self.title, self.dpi = compute, draw, dict(controls), title, dpi
        self.data: Any = None
        self.image = W.Image(format="png")
        box = W.HBox if len(self.controls) <= 2 else W.VBox
        super().__init__([box(list(self.controls.values())), self.image])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.redraw()

    @property
    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def _on_change(self, change) -> None:
        self.redraw()

    def redraw(self) -> None:
        self.data = self.compute(**self.values)
        self.image.value = render_png(self.draw(self.data), self.dpi)

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

    def __repr__(self) -> str:
        # Fixed text (what nbval compares and what a plain console shows): the controls, not
        # widget ids or image bytes.
        controls = ", ".join(self.controls)
        return f"Explorer({self.title!r}; controls: {controls}) -- move the controls in a running notebook"
