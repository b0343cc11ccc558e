"""One module per topic: the numbers (``*_data``), the static figure (``plot_*``) and the
live explorer (``explore_*``) of each chapter's interactive part. Imported lazily by
``inception_edu``'s top level, so ``import inception_edu`` loads no matplotlib or ipywidgets."""
