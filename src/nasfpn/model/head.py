"""RetinaNet head with shared convs and per-level BN (mmdetection ``RetinaSepBNHead``)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn


class SepBNHead(nn.Module):
    """Classification and box branches of ``stacked_convs`` 3x3 convs each.

    The conv weights are shared across pyramid levels while every level has its own BN, as in
    mmdetection ``RetinaSepBNHead`` (used by both crop640 recipes, docs section 5). The convs
    have no bias (a BN follows). Initialisation follows that head: normal(0, 0.01) weights, and a
    classification bias giving every anchor a prior foreground probability of ``prior_prob``
    (RetinaNet paper, section 4.1).
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
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes={num_classes!r}: a detector needs at least one class")
        self.num_classes = num_classes
        self.num_anchors = num_anchors
        self.num_levels = num_levels

        def convs() -> nn.ModuleList:
            return nn.ModuleList(
                nn.Conv2d(
                    in_channels if i == 0 else feat_channels,
                    feat_channels,
                    3,
                    padding=1,
                    bias=False,
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
        self.cls_logits = nn.Conv2d(feat_channels, num_anchors * num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(feat_channels, num_anchors * 4, 3, padding=1)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
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
