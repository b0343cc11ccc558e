"""One module per topic: the numbers (``*_data``), the static figure (``plot_*``) and the
live explorer (``explore_*``) of each chapter's interactive part. Imported lazily by
``inception_edu``'s top level, so ``import inception_edu`` loads no matplotlib or ipywidgets."""


def check_whole(**values) -> None:
    """Raise a ``ValueError`` naming any value that is not a positive whole number (a width,
    a channel count, a grid side): the explorers' inputs that a reader may type by hand."""
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive whole number; got {value!r}")
