"""Anchors, assignment of anchors to ground truth, and box encoding (docs section 5)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_iou


@dataclass(frozen=True)
class AnchorSpec:
    """RetinaNet anchors: ``octave_base_scale * 2**(i / scales_per_octave)`` times the stride.

    Defaults are mmdetection's RetinaNet (octave base scale 4, 3 scales, ratios 0.5/1/2, strides
    8..128): 9 anchors per location, ordered ratio-major then scale, as mmdetection orders them,
    so a head trained there predicts the same anchors here.
    """

    strides: tuple[int, ...] = (8, 16, 32, 64, 128)
    octave_base_scale: float = 4.0
    scales_per_octave: int = 3
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0)

    @property
    def num_anchors(self) -> int:
        return self.scales_per_octave * len(self.ratios)

    def base_anchors(self, stride: int) -> Tensor:
        """``(A, 4)`` boxes centred on the origin, x1y1x2y2."""
        scales = torch.tensor(
            [
                self.octave_base_scale * 2 ** (i / self.scales_per_octave)
                for i in range(self.scales_per_octave)
            ],
            dtype=torch.float64,
        )
        h_ratios = torch.tensor(self.ratios, dtype=torch.float64).sqrt()
        w_ratios = 1 / h_ratios
        ws = (stride * w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (stride * h_ratios[:, None] * scales[None, :]).reshape(-1)
        return torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=1).float()

    def grid(self, sizes: list[tuple[int, int]], device: torch.device) -> list[Tensor]:
        """Anchors of every level, ``(H*W*A, 4)`` each, location-major then anchor."""
        out = []
        for (h, w), stride in zip(sizes, self.strides):
            base = self.base_anchors(stride).to(device)
            ys = torch.arange(h, device=device, dtype=torch.float32) * stride
            xs = torch.arange(w, device=device, dtype=torch.float32) * stride
            yy, xx = torch.meshgrid(ys, xs, indexing="ij")
            shifts = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)
            out.append((shifts + base[None]).reshape(-1, 4))
        return out


@dataclass(frozen=True)
class Assignment:
    """Per anchor: index of the matched ground truth, or ``NEGATIVE`` / ``IGNORED``."""

    matched: Tensor  # (num_anchors,) int64

    NEGATIVE = -1
    IGNORED = -2

    @property
    def positive(self) -> Tensor:
        return self.matched >= 0

    @property
    def valid(self) -> Tensor:
        return self.matched != self.IGNORED


def assign(
    anchors: Tensor,
    gt_boxes: Tensor,
    pos_iou: float = 0.5,
    neg_iou: float = 0.5,
    min_pos_iou: float = 0.0,
) -> Assignment:
    """Max-IoU assignment as mmdetection ``MaxIoUAssigner`` does it.

    An anchor is positive when its best IoU is ``>= pos_iou``, negative when ``< neg_iou``,
    ignored in between. Then every ground truth also claims the anchors that overlap it best
    (all ties, ``gt_max_assign_all``), when that overlap is ``>= min_pos_iou``, even below
    ``pos_iou``; a later ground truth wins such a claim, as in mmdetection's loop. Note that
    torchvision's ``Matcher(allow_low_quality_matches=True)`` keeps the anchor's own argmax
    instead, which differs when an anchor is the best for one box but overlaps another more.
    """
    matched = torch.full(
        (anchors.shape[0],), Assignment.NEGATIVE, dtype=torch.long, device=anchors.device
    )
    if gt_boxes.numel() == 0:
        return Assignment(matched)
    iou = box_iou(gt_boxes, anchors)  # (G, A)
    best_iou, best_gt = iou.max(dim=0)
    matched[(best_iou >= neg_iou) & (best_iou < pos_iou)] = Assignment.IGNORED
    pos = best_iou >= pos_iou
    matched[pos] = best_gt[pos]
    gt_best_iou = iou.max(dim=1, keepdim=True).values  # (G, 1)
    # A box that overlaps no anchor at all claims nothing (mmdetection, with min_pos_iou=0,
    # would make every non-overlapping anchor positive for it).
    claims = (iou == gt_best_iou) & (gt_best_iou >= min_pos_iou) & (gt_best_iou > 0)  # (G, A)
    gt_index = torch.arange(gt_boxes.shape[0], device=anchors.device)[:, None]
    last_claim = torch.where(claims, gt_index, -1).max(dim=0).values  # later box wins
    claimed = last_claim >= 0
    matched[claimed] = last_claim[claimed]
    return Assignment(matched)


# mmdetection DeltaXYWHBBoxCoder with means 0 and stds 1; the clamp on dw/dh is its max_ratio.
_WH_CLAMP = math.log(1000.0 / 16)


def encode(anchors: Tensor, boxes: Tensor) -> Tensor:
    """Box regression targets ``(dx, dy, dw, dh)`` of ``boxes`` relative to ``anchors``."""
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    bx, by = boxes[:, 0] + 0.5 * bw, boxes[:, 1] + 0.5 * bh
    return torch.stack(
        [(bx - ax) / aw, (by - ay) / ah, torch.log(bw / aw), torch.log(bh / ah)], dim=1
    )


def decode(anchors: Tensor, deltas: Tensor) -> Tensor:
    """Inverse of :func:`encode`; ``dw``/``dh`` are clamped so that boxes stay finite."""
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
    dx, dy = deltas[:, 0], deltas[:, 1]
    dw, dh = deltas[:, 2].clamp(-_WH_CLAMP, _WH_CLAMP), deltas[:, 3].clamp(-_WH_CLAMP, _WH_CLAMP)
    cx, cy = ax + dx * aw, ay + dy * ah
    w, h = aw * dw.exp(), ah * dh.exp()
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)
