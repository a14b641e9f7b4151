"""Training and test transforms, and the box geometry to map detections back.

Both follow mmdetection v2's crop640 pipelines (docs/nasfpn.md section 5; docs/references.md
section 1 "Data"), at any size ``S`` (512 for the proxy task, 640 for retraining):

- training: resize so that the long side is ``int(S * r)``, ``r`` uniform in ``[0.8, 1.2]``,
  keeping the aspect ratio; random crop ``S x S`` (the crop size clipped to the image); boxes
  clipped to the crop and boxes left empty dropped; horizontal flip with probability 0.5; the
  batch is later padded bottom/right to ``S x S``;
- test: resize so that the long side is ``S``; the batch is padded bottom/right to a multiple
  of 128 (NAS-FPN; 64 for FPN).

Images stay ``uint8`` here; :class:`~nasfpn.data.loader.PadCollate` normalises them with
:data:`MEAN` and :data:`STD` and pads with zeros *after* normalisation, as mmdetection's
``Normalize`` then ``Pad`` do. Randomness comes only from the ``numpy`` generator passed in, so
a sample depends on its seed alone, not on the process that draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

# RGB mean and std of mmdetection's img_norm_cfg (docs section 5), on 0..255 pixel values
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class ImageMeta:
    """Where a transformed image came from: enough to map its boxes back to the image file.

    ``size`` is the ``(h, w)`` of the transformed image before padding (detections are clipped
    to it); ``scale`` is ``(sx, sy)``, resized size over original size per axis (mmdetection's
    ``scale_factor``); ``crop`` is the ``(x, y)`` of the crop's top-left corner in the resized
    image; ``flipped`` says whether the crop was then flipped left-right.
    """

    image_id: int
    original_size: tuple[int, int]
    size: tuple[int, int]
    scale: tuple[float, float] = (1.0, 1.0)
    crop: tuple[int, int] = (0, 0)
    flipped: bool = False


@dataclass
class Sample:
    """One image and its training targets: ``image`` ``(3, h, w)`` uint8 RGB, ``boxes`` ``(G, 4)``
    float32 x1y1x2y2 in that image's pixels, ``labels`` ``(G,)`` int64 in ``0..K-1``."""

    image: Tensor
    boxes: Tensor
    labels: Tensor
    meta: ImageMeta


@dataclass(frozen=True)
class Padding:
    """How a batch is padded: to a fixed ``size`` ``(h, w)``, else to a multiple of ``divisor``."""

    size: tuple[int, int] | None = None
    divisor: int = 1

    def __post_init__(self) -> None:
        if self.divisor < 1:
            raise ValueError(f"padding divisor {self.divisor} must be 1 or more (e.g. 128)")

    def padded_size(self, sizes: list[tuple[int, int]]) -> tuple[int, int]:
        """The padded ``(H, W)`` that holds every ``(h, w)`` in ``sizes``."""
        h, w = max(s[0] for s in sizes), max(s[1] for s in sizes)
        if self.size is not None:
            if h > self.size[0] or w > self.size[1]:
                raise ValueError(
                    f"an image of {h}x{w} (h x w) does not fit the fixed padding {self.size}; "
                    "crop it first (TrainTransform) or pad to a divisor instead"
                )
            return self.size
        d = self.divisor
        return -(-h // d) * d, -(-w // d) * d


def rescaled_size(h: int, w: int, long_side: int) -> tuple[int, int]:
    """``(h, w)`` resized so that the long side is ``long_side``, keeping the aspect ratio.

    mmcv ``imrescale`` with a square scale ``(L, L)``: factor ``L / max(h, w)``, each side
    rounded half up (``int(x * factor + 0.5)``).
    """
    factor = long_side / max(h, w)
    return max(int(h * factor + 0.5), 1), max(int(w * factor + 0.5), 1)


def _resize(sample: Sample, h: int, w: int) -> tuple[Tensor, tv_tensors.BoundingBoxes]:
    # bilinear without antialiasing, as mmcv's cv2 INTER_LINEAR; boxes scaled by new/old per axis
    boxes = tv_tensors.BoundingBoxes(sample.boxes, format="XYXY", canvas_size=sample.meta.size)
    image = F.resize(sample.image, [h, w], antialias=False)
    return image, F.resize(boxes, [h, w])


def _check_size(size: int) -> None:
    if size < 32:
        raise ValueError(f"transform size {size} is too small; use 32 px or more (512, 640)")


@dataclass(frozen=True)
class TrainTransform:
    """Scale jitter, random ``S x S`` crop and flip (mmdetection ``Resize(ratio_range)``,
    ``RandomCrop``, ``RandomFlip``; docs section 5).

    A crop that keeps no box is kept with empty targets (mmdetection draws another image
    instead; see docs/data.md): the loss handles empty targets, every image is seen once per
    epoch, and such crops are rare because only the long side is ever cropped, by at most
    1 - 1/1.2 = 17%.
    """

    size: int = 512
    ratio_range: tuple[float, float] = (0.8, 1.2)
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        _check_size(self.size)
        lo, hi = self.ratio_range
        if not 0 < lo <= hi:
            raise ValueError(
                f"ratio_range {self.ratio_range} must be (low, high) with 0 < low <= high, "
                "e.g. (0.8, 1.2)"
            )
        if not 0 <= self.flip_prob <= 1:
            raise ValueError(f"flip_prob {self.flip_prob} must lie in [0, 1], e.g. 0.5")

    @property
    def padding(self) -> Padding:
        return Padding(size=(self.size, self.size))

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        h, w = sample.meta.size
        long_side = int(self.size * rng.uniform(*self.ratio_range))  # mmdetection truncates
        rh, rw = rescaled_size(h, w, long_side)
        image, boxes = _resize(sample, rh, rw)
        ch, cw = min(self.size, rh), min(self.size, rw)
        top = int(rng.integers(0, rh - ch + 1))
        left = int(rng.integers(0, rw - cw + 1))
        image = F.crop(image, top, left, ch, cw)
        boxes = F.crop(boxes, top, left, ch, cw)  # shifted and clipped to the crop
        flipped = bool(rng.random() < self.flip_prob)
        if flipped:
            image, boxes = F.horizontal_flip(image), F.horizontal_flip(boxes)
        boxes = boxes.as_subclass(Tensor)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        meta = replace(
            sample.meta, size=(ch, cw), scale=(rw / w, rh / h), crop=(left, top), flipped=flipped
        )
        return Sample(image, boxes[keep], sample.labels[keep], meta)


@dataclass(frozen=True)
class TestTransform:
    """Resize the long side to ``size``; batches are padded to a multiple of ``size_divisor``
    (mmdetection test pipeline: ``Resize(keep_ratio=True)``, ``Pad(size_divisor=128)``)."""

    __test__ = False  # not a pytest class

    size: int = 640
    size_divisor: int = 128

    def __post_init__(self) -> None:
        _check_size(self.size)
        if self.size_divisor < 1:
            raise ValueError(
                f"size_divisor {self.size_divisor} must be 1 or more (128 for NAS-FPN, 64 for FPN)"
            )

    @property
    def padding(self) -> Padding:
        return Padding(divisor=self.size_divisor)

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        h, w = sample.meta.size
        rh, rw = rescaled_size(h, w, self.size)
        image, boxes = _resize(sample, rh, rw)
        meta = replace(sample.meta, size=(rh, rw), scale=(rw / w, rh / h))
        return Sample(image, boxes.as_subclass(Tensor), sample.labels, meta)


def normalize(images: Tensor, mean=MEAN, std=STD) -> Tensor:
    """uint8 ``(..., 3, H, W)`` RGB -> float32 ``(x - mean) * (1 / std)`` per channel, as mmcv
    ``imnormalize`` computes it (the reciprocal is taken in float64)."""
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    inv_std = (1 / torch.tensor(std, dtype=torch.float64)).float().view(3, 1, 1)
    return (images.float() - m) * inv_std


def boxes_to_original(boxes: Tensor, meta: ImageMeta) -> Tensor:
    """x1y1x2y2 boxes in a transformed image -> pixels of the original file, clipped to it.

    The inverse of the transform's geometry: undo the flip, add the crop offset, divide by the
    per-axis scale (mmdetection divides by ``scale_factor`` the same way).
    """
    b = boxes.detach().to(torch.float32).clone()
    if meta.flipped:
        w = meta.size[1]
        b[:, [0, 2]] = w - b[:, [2, 0]]
    sx, sy = meta.scale
    b[:, [0, 2]] = (b[:, [0, 2]] + meta.crop[0]) / sx
    b[:, [1, 3]] = (b[:, [1, 3]] + meta.crop[1]) / sy
    h0, w0 = meta.original_size
    b[:, [0, 2]] = b[:, [0, 2]].clamp(0, w0)
    b[:, [1, 3]] = b[:, [1, 3]].clamp(0, h0)
    return b


def boxes_from_original(boxes: Tensor, meta: ImageMeta) -> Tensor:
    """x1y1x2y2 boxes in the original file -> the transformed image (scale, crop, clip, flip)."""
    b = boxes.detach().to(torch.float32).clone()
    sx, sy = meta.scale
    b[:, [0, 2]] = (b[:, [0, 2]] * sx - meta.crop[0]).clamp(0, meta.size[1])
    b[:, [1, 3]] = (b[:, [1, 3]] * sy - meta.crop[1]).clamp(0, meta.size[0])
    if meta.flipped:
        b[:, [0, 2]] = meta.size[1] - b[:, [2, 0]]
    return b
