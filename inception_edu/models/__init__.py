"""One file per paper; importing this package registers every model."""
from . import nin, googlenet, bn_inception, inception_v3, inception_v4, inception_resnet  # noqa: F401
from .base import InceptionNet, InceptionOutputs, Stage  # noqa: F401
