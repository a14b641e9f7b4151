"""Convolutions the necks and the head share: a plain 3x3, or its depthwise-separable form.

The separable form is the one of the mobile detectors (NAS-FPNLite, FPNLite, SSDLite; paper
Table 1): a depthwise k x k convolution then a pointwise 1x1, with nothing between them, as
``tf.layers.separable_conv2d`` and the TF Object Detection API build it. It keeps the dense
convolution's input and output shapes, so a model setting swaps one for the other.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


class SeparableConv2d(nn.Sequential):
    """Depthwise ``kernel`` x ``kernel`` (one filter per input channel, no bias), then a
    pointwise 1x1 to ``out_ch`` (with ``bias``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1,
                 bias: bool = True) -> None:  # fmt: skip
        super().__init__(
            OrderedDict(
                depthwise=nn.Conv2d(
                    in_ch,
                    in_ch,
                    kernel,
                    stride=stride,
                    padding=kernel // 2,
                    groups=in_ch,
                    bias=False,
                ),
                pointwise=nn.Conv2d(in_ch, out_ch, 1, bias=bias),
            )
        )

    @property
    def bias(self):
        return self.pointwise.bias


def conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, bias: bool = True,
         separable: bool = False) -> nn.Module:  # fmt: skip
    """A ``kernel`` x ``kernel`` convolution with "same" padding, separable when asked (a 1x1
    is never separable: it is pointwise already)."""
    if separable and kernel > 1:
        return SeparableConv2d(in_ch, out_ch, kernel, stride, bias)
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=bias)
