"""RetinaNet: backbone -> neck -> SepBN head, with its loss and test-time post-processing.

Parts are built outside and passed in (as torchvision's ``RetinaNet`` takes them); ``forward``
returns the raw head outputs, ``loss`` and ``detect`` turn them into a loss or detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms, clip_boxes_to_image, sigmoid_focal_loss

from nasfpn.model.anchors import AnchorSpec, assign, decode, encode


@dataclass(frozen=True)
class LossSettings:
    """Training targets and losses (docs section 5; mmdetection RetinaNet)."""

    focal_alpha: float = 0.25
    focal_gamma: float = 2.0  # the paper used 1.5
    pos_iou: float = 0.5
    neg_iou: float = 0.5
    min_pos_iou: float = 0.0
    box_weight: float = 1.0


@dataclass(frozen=True)
class TestSettings:
    """Test-time post-processing (docs section 5)."""

    __test__ = False  # not a pytest class

    pre_nms_top_k: int = 1000  # per level
    score_threshold: float = 0.05
    nms_iou: float = 0.5
    max_detections: int = 100


def _flatten(x: Tensor, k: int) -> Tensor:
    # (N, A*K, H, W) -> (N, H, W, A*K) -> (N, HWA, K)
    n = x.shape[0]
    return x.permute(0, 2, 3, 1).reshape(n, -1, k)


class RetinaNet(nn.Module):
    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        head: nn.Module,
        anchors: AnchorSpec | None = None,
        loss_settings: LossSettings | None = None,
        test_settings: TestSettings | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.anchors = anchors or AnchorSpec()
        self.loss_settings = loss_settings or LossSettings()
        self.test_settings = test_settings or TestSettings()
        self.num_classes: int = head.num_classes
        if head.num_anchors != self.anchors.num_anchors:
            raise ValueError(
                f"the head predicts {head.num_anchors} anchors per location but the anchor "
                f"spec has {self.anchors.num_anchors}"
            )

    def forward(self, images: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Images ``(N, 3, H, W)`` -> per level ``(N, A*K, h, w)`` logits and ``(N, A*4, h, w)``."""
        return self.head(self.neck(self.backbone(images)))

    def anchors_for(self, cls_out: list[Tensor]) -> Tensor:
        """All anchors ``(sum HWA, 4)`` for these head outputs, finest level first."""
        sizes = [tuple(x.shape[-2:]) for x in cls_out]
        return torch.cat(self.anchors.grid(sizes, cls_out[0].device))

    def loss(
        self, outputs: tuple[list[Tensor], list[Tensor]], targets: list[dict[str, Tensor]]
    ) -> dict[str, Tensor]:
        """Focal loss and L1 box loss, each summed and divided by the number of positives.

        ``targets[i]`` holds ``boxes`` ``(G, 4)`` x1y1x2y2 in input-image pixels and ``labels``
        ``(G,)`` in ``0 .. num_classes-1``. The divisor is mmdetection v2's ``avg_factor``: the
        sum over images of ``max(positives, 1)``.
        """
        cls_out, reg_out = outputs
        k = self.num_classes
        logits = torch.cat([_flatten(x, k) for x in cls_out], dim=1)  # (N, sum HWA, K)
        deltas = torch.cat([_flatten(x, 4) for x in reg_out], dim=1)  # (N, sum HWA, 4)
        anchors = self.anchors_for(cls_out)
        s = self.loss_settings
        cls_terms, box_terms, num_pos = [], [], 0
        for i, target in enumerate(targets):
            boxes = target["boxes"].to(anchors)
            labels = target["labels"].to(anchors.device)
            if labels.numel() and (labels.min() < 0 or labels.max() >= k):
                raise ValueError(
                    f"image {i} has labels {sorted(set(labels.tolist()))} but the model has "
                    f"{k} classes (labels 0..{k - 1}); set num_classes to the dataset's classes"
                )
            a = assign(anchors, boxes, s.pos_iou, s.neg_iou, s.min_pos_iou)
            pos, valid = a.positive, a.valid
            cls_target = torch.zeros_like(logits[i])
            cls_target[pos, labels[a.matched[pos]]] = 1.0
            cls_terms.append(
                sigmoid_focal_loss(
                    logits[i][valid].float(),
                    cls_target[valid],
                    alpha=s.focal_alpha,
                    gamma=s.focal_gamma,
                    reduction="sum",
                )
            )
            box_target = encode(anchors[pos], boxes[a.matched[pos]])
            box_terms.append((deltas[i][pos].float() - box_target).abs().sum())
            num_pos += max(int(pos.sum()), 1)
        norm = num_pos
        return {
            "loss_cls": torch.stack(cls_terms).sum() / norm,
            "loss_box": s.box_weight * torch.stack(box_terms).sum() / norm,
        }

    @torch.no_grad()
    def detect(
        self, outputs: tuple[list[Tensor], list[Tensor]], image_sizes: list[tuple[int, int]]
    ) -> list[dict[str, Tensor]]:
        """Boxes, scores and labels per image, in input-image pixels.

        Per level the ``pre_nms_top_k`` best (anchor, class) scores above ``score_threshold``;
        then class-wise NMS over all levels and the ``max_detections`` best (docs section 5).
        ``image_sizes`` are the unpadded ``(h, w)`` sizes boxes are clipped to.
        """
        cls_out, reg_out = outputs
        k = self.num_classes
        s = self.test_settings
        level_anchors = self.anchors.grid([tuple(x.shape[-2:]) for x in cls_out], cls_out[0].device)
        results = []
        for i, size in enumerate(image_sizes):
            all_boxes, all_scores, all_labels = [], [], []
            for logit, delta, anchors in zip(cls_out, reg_out, level_anchors):
                scores = torch.sigmoid(_flatten(logit[i : i + 1], k)[0].float()).flatten()
                keep = scores > s.score_threshold
                scores, idx = scores[keep], keep.nonzero().squeeze(1)
                top = scores.topk(min(s.pre_nms_top_k, scores.numel()))
                scores, idx = top.values, idx[top.indices]
                anchor_idx, labels = idx // k, idx % k
                deltas = _flatten(delta[i : i + 1], 4)[0].float()[anchor_idx]
                boxes = clip_boxes_to_image(decode(anchors[anchor_idx], deltas), size)
                all_boxes.append(boxes)
                all_scores.append(scores)
                all_labels.append(labels)
            boxes, scores, labels = (
                torch.cat(all_boxes),
                torch.cat(all_scores),
                torch.cat(all_labels),
            )
            keep = batched_nms(boxes, scores, labels, s.nms_iou)[: s.max_detections]
            results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return results
