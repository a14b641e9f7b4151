"""RetinaNet head with shared convs and per-level BN (mmdetection ``RetinaSepBNHead``)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from nasfpn.model import layers


class SepBNHead(nn.Module):
    """Classification and box branches of ``stacked_convs`` 3x3 convs each.

    The conv weights are shared across pyramid levels while every level has its own BN, as in
    mmdetection ``RetinaSepBNHead`` (used by both crop640 recipes, docs section 5). The convs
    have no bias (a BN follows). Initialisation follows that head: normal(0, 0.01) weights, and a
    classification bias giving every anchor a prior foreground probability of ``prior_prob``
    (RetinaNet paper, section 4.1).

    ``separable=True`` (the mobile detectors: NAS-FPNLite, SSDLite) makes every 3x3 conv, the
    predictions included, depthwise-separable (:class:`~nasfpn.model.layers.SeparableConv2d`);
    its depthwise filters start from a variance-scaling normal (std ``1/3``, fan-in 9), its
    pointwise ones from the same normal(0, 0.01) as the dense head's.
    """

    def __init__(
        self,
        num_classes: int,
        num_anchors: int = 9,
        num_levels: int = 5,
        in_channels: int = 256,
        feat_channels: int = 256,
        stacked_convs: int = 4,
        prior_prob: float = 0.01,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        separable: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes={num_classes!r}: a detector needs at least one class")
        self.num_classes = num_classes
        self.num_anchors = num_anchors
        self.num_levels = num_levels

        def convs() -> nn.ModuleList:
            return nn.ModuleList(
                layers.conv(
                    in_channels if i == 0 else feat_channels,
                    feat_channels,
                    3,
                    bias=False,
                    separable=separable,
                )
                for i in range(stacked_convs)
            )

        def norms() -> nn.ModuleList:
            return nn.ModuleList(
                nn.ModuleList(
                    nn.BatchNorm2d(feat_channels, eps=bn_eps, momentum=bn_momentum)
                    for _ in range(stacked_convs)
                )
                for _ in range(num_levels)
            )

        self.cls_convs, self.cls_norms = convs(), norms()
        self.reg_convs, self.reg_norms = convs(), norms()
        self.cls_logits = layers.conv(
            feat_channels, num_anchors * num_classes, 3, separable=separable
        )
        self.bbox_pred = layers.conv(feat_channels, num_anchors * 4, 3, separable=separable)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                depthwise = m.groups > 1 and m.groups == m.in_channels
                nn.init.normal_(m.weight, std=1 / 3 if depthwise else 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    @staticmethod
    def _branch(x: Tensor, convs: nn.ModuleList, norms: nn.ModuleList) -> Tensor:
        for conv, norm in zip(convs, norms):
            x = F.relu(norm(conv(x)))
        return x

    def forward(self, feats: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: class logits ``(N, A*K, H, W)`` and box deltas ``(N, A*4, H, W)``."""
        if len(feats) != self.num_levels:
            raise ValueError(f"the head was built for {self.num_levels} levels, got {len(feats)}")
        cls_out, reg_out = [], []
        for lvl, x in enumerate(feats):
            cls_out.append(self.cls_logits(self._branch(x, self.cls_convs, self.cls_norms[lvl])))
            reg_out.append(self.bbox_pred(self._branch(x, self.reg_convs, self.reg_norms[lvl])))
        return cls_out, reg_out
