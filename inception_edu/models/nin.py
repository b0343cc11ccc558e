"""Network in Network: Lin, Chen & Yan, *Network In Network* (ICLR 2014, arXiv 1312.4400).

The two ideas GoogLeNet took from it, and where they live below:

* Sec. 3.1 -- the *mlpconv* layer: a small multilayer perceptron slid over the image, which is
  a k x k convolution followed by 1x1 convolutions, each with a ReLU ("cascaded cross channel
  parametric pooling"): :func:`mlpconv`. GoogLeNet's 1x1 "reduce" layers are these 1x1 convs.
* Sec. 3.2 -- *global average pooling* instead of fully connected layers: the last mlpconv
  outputs one feature map per class, the network averages each map, and the averages go
  straight into the softmax. No fully connected layer, nothing to overfit there, and each
  map reads as "how much this place looks like class c" (a class activation map).

The CIFAR-10 network of Sec. 4.2 (the authors' Caffe model): three mlpconv layers, max pool
and dropout after the first, average pool and dropout after the second, and global average
pooling after the third::

    32x32x3 -> mlpconv(5x5 192, 1x1 160, 1x1 96) -> max pool 3x3/2, dropout -> 16x16x96
            -> mlpconv(5x5 192, 1x1 192, 1x1 192) -> avg pool 3x3/2, dropout -> 8x8x192
            -> mlpconv(3x3 192, 1x1 192, 1x1 classes) -> 8x8xclasses -> global avg pool

Convolutions carry a bias and no normalization (2013, before BatchNorm), every one followed
by a ReLU -- the class maps too, as in the Caffe model (``relu_cccp6``). Pooling rounds up
(Caffe's rule: 32 -> 16 -> 8).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from ..layers import ConvFactory, conv_bn, conv_plain, width_multiplier
from ..registry import register_model
from .base import InceptionNet, Stage


def mlpconv(conv: ConvFactory, in_channels: int, widths: Sequence[int], kernel_size: int,
            last: ConvFactory | None = None) -> nn.Sequential:
    """Sec. 3.1's mlpconv layer: a k x k conv to ``widths[0]``, then a 1x1 conv per later width.

    The 1x1 convs are the "micro network" applied at every position (the paper's eq. 2: a
    ReLU after each). Caffe names them ``cccp`` (cascaded cross channel parametric pooling).
    ``last``: a different factory for the last 1x1 conv (the class maps).
    """
    layers = [("conv", conv(in_channels, widths[0], kernel_size, padding=kernel_size // 2))]
    for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
        make = last if (last is not None and i == len(widths) - 2) else conv
        layers.append((f"cccp{i + 1}", make(cin, cout, 1)))
    return nn.Sequential(OrderedDict(layers))


class NINNet(InceptionNet):
    """Network in Network on the shared surface: the classifier *is* the last 1x1 conv.

    Design choice: there is no fully connected layer to put in ``fc``, so ``fc`` is an
    ``nn.Identity`` and the last stage (``mlpconv3``) ends in the class-map conv
    (``num_classes`` output channels). Then

    * ``forward_features(x)`` returns the class maps, N x num_classes x 8 x 8 at 32x32 --
      the maps a chapter draws as class activation maps (also :meth:`class_activation_maps`);
    * ``forward_head(maps)`` is global average pooling (no dropout after it), so
      ``forward_head(maps, pre_logits=True)`` equals the logits;
    * ``num_features == head_features == num_classes``;
    * ``reset_classifier(n)`` replaces the class-map conv by a fresh 1x1 conv to ``n`` maps
      (``n = 0`` removes it: the features are then the 192 maps before it).
    """

    def __init__(self, *args, classifier_in: int, class_conv: ConvFactory, num_classes: int, **kwargs):
        # The base class would append a Linear; NIN has none (num_classes=0 -> fc = Identity).
        super().__init__(*args, num_classes=0, **kwargs)
        self.num_classes = num_classes
        self._classifier_in = classifier_in
        self._class_conv = class_conv

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last 1x1 conv (the classifier) by a fresh one with ``num_classes`` maps."""
        block = self.features[-1]
        block[-1] = self._class_conv(self._classifier_in, num_classes, 1) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes
        self.num_features = self.head_features = num_classes if num_classes > 0 else self._classifier_in

    def class_activation_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The per-class maps before global average pooling: N x num_classes x H/4 x W/4.

        ``maps.mean((2, 3))`` are the logits (in eval mode, where dropout is off).
        """
        self.check_input(x)
        return self.forward_features(x)


@register_model
def nin_cifar(num_classes: int = 10, drop_rate: float = 0.5, in_chans: int = 3,
              width_mult: float = 1.0, batch_norm: bool = False) -> NINNet:
    """Network in Network for 32x32 images (Sec. 4.2, the Caffe CIFAR-10 model; 0.97 M params).

    ``drop_rate``: dropout after the first and second mlpconv layers (the paper's 0.5).
    ``width_mult``: scales the hidden widths (192 / 160 / 96 ...; the class maps stay
    ``num_classes``).
    ``batch_norm``: BatchNorm after every conv but the class-map conv. Not in the paper (2013
    predates BN), which trained its nine plain conv layers with hand-tuned initialization
    and learning rates for many epochs. With BN, ``width_mult=0.25`` reaches 75-90 % on the
    digits in four epochs (the ``fast`` recipe, half a CPU minute), where the plain network
    is still near chance.
    ``forward_features`` returns the class maps (see :class:`NINNet`).
    """
    w = width_multiplier(width_mult)
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0 (0: no class-map conv, features only); got {num_classes}")

    conv = conv_bn if batch_norm else conv_plain  # 2013: conv with bias -> ReLU, no normalization
    class_conv = conv_plain  # the class maps: conv with bias -> ReLU, never normalized
    w1, w2, w3 = (w(192), w(160), w(96)), (w(192), w(192), w(192)), (w(192), w(192))
    stages = [
        Stage("mlpconv1", mlpconv(conv, in_chans, w1, 5), "mlpconv 5x5, 1x1, 1x1", "stem"),   # N x 96 x 32 x 32
        Stage("pool1", nn.Sequential(nn.MaxPool2d(3, stride=2, ceil_mode=True), nn.Dropout(drop_rate)),
              "max pool 3x3/2 + dropout", "pool"),                                            # N x 96 x 16 x 16
        Stage("mlpconv2", mlpconv(conv, w1[-1], w2, 5), "mlpconv 5x5, 1x1, 1x1", "stem"),     # N x 192 x 16 x 16
        Stage("pool2", nn.Sequential(nn.AvgPool2d(3, stride=2, ceil_mode=True), nn.Dropout(drop_rate)),
              "avg pool 3x3/2 + dropout", "pool"),                                            # N x 192 x 8 x 8
        Stage("mlpconv3", mlpconv(conv, w2[-1], w3 + (max(num_classes, 1),), 3, last=class_conv),
              "mlpconv 3x3, 1x1, 1x1 (one map per class)", "classifier"),               # N x classes x 8 x 8
    ]
    # Minimum side 4: both ceil-mode 3x3/2 pools need at least a 2x2 input (4 -> 2 -> 1).
    model = NINNet("nin_cifar", stages, num_features=num_classes, num_classes=num_classes, min_size=4,
                   in_chans=in_chans, drop_rate=0.0, default_size=32, classifier_in=w3[-1],
                   class_conv=class_conv)
    if num_classes == 0:  # timm's convention: no classifier, the network ends at its features
        model.reset_classifier(0)
    return model
