"""Transforms: box geometry against hand-computed values, sizes, normalisation, inverse mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasfpn.data import (
    ImageMeta,
    Padding,
    Sample,
    TestTransform,
    TrainTransform,
    boxes_from_original,
    boxes_to_original,
    normalize,
    rescaled_size,
)


class FixedRng:
    """Stands in for ``np.random.Generator``: returns the draws a test chooses, in order."""

    def __init__(self, ratio: float, top: int, left: int, flip: bool) -> None:
        self.ratio, self.offsets, self.flip = ratio, [top, left], flip

    def uniform(self, low: float, high: float) -> float:
        assert low <= self.ratio <= high
        return self.ratio

    def integers(self, low: int, high: int) -> int:
        value = self.offsets.pop(0)
        assert low <= value < high, (low, value, high)
        return value

    def random(self) -> float:
        return 0.0 if self.flip else 0.99


def ramp_sample(w: int = 100, h: int = 50) -> Sample:
    """A w x h image whose red channel rises left to right, with three boxes."""
    image = torch.zeros(3, h, w, dtype=torch.uint8)
    image[0] = torch.linspace(0, 255, w).to(torch.uint8)
    boxes = torch.tensor([[10, 5, 30, 25], [90, 10, 100, 20], [0, 0, 12, 10]], dtype=torch.float32)
    return Sample(image, boxes, torch.tensor([0, 1, 2]), ImageMeta(42, (h, w), (h, w)))


@pytest.mark.parametrize(
    ("h", "w", "long_side", "expected"),
    [
        (480, 640, 512, (384, 512)),
        (640, 427, 640, (640, 427)),
        (333, 500, 640, (426, 640)),  # 333 * 1.28 = 426.24
        (5, 8, 4, (3, 4)),  # 2.5 rounds half up, as mmcv's int(x + 0.5)
    ],
)
def test_rescaled_size(h: int, w: int, long_side: int, expected: tuple[int, int]) -> None:
    assert rescaled_size(h, w, long_side) == expected


def test_train_transform_geometry_by_hand() -> None:
    # r = 1.2: long side int(64 * 1.2) = 76, factor 0.76 -> 38 x 76; crop 38 x 64 at x = 10
    out = TrainTransform(64)(ramp_sample(), FixedRng(1.2, top=0, left=10, flip=True))
    assert out.image.shape == (3, 38, 64)
    assert out.meta == ImageMeta(42, (50, 100), (38, 64), (0.76, 0.76), (10, 0), True)
    # box 1: scaled [7.6, 3.8, 22.8, 19], cropped [0, 3.8, 12.8, 19], flipped in 64 px
    # box 2: scaled [68.4, 7.6, 76, 15.2], cropped [58.4, 7.6, 64, 15.2], flipped
    # box 3: scaled [0, 0, 9.12, 7.6] lies left of the crop: dropped
    expected = torch.tensor([[51.2, 3.8, 64, 19.0], [0, 7.6, 5.6, 15.2]])
    torch.testing.assert_close(out.boxes, expected)
    assert out.labels.tolist() == [0, 1]
    # the flip reverses the ramp: brightest red on the left
    assert out.image[0, 0, 0] > out.image[0, 0, -1]


def test_train_transform_without_crop_or_flip() -> None:
    # r = 0.8: long side int(51.2) = 51, factor 0.51 -> 26 x 51 (int(25.5 + 0.5)); no crop
    out = TrainTransform(64)(ramp_sample(), FixedRng(0.8, top=0, left=0, flip=False))
    assert out.image.shape == (3, 26, 51)
    assert out.meta.scale == (0.51, 0.52) and out.meta.crop == (0, 0)
    expected = torch.tensor([[5.1, 2.6, 15.3, 13.0], [45.9, 5.2, 51, 10.4], [0, 0, 6.12, 5.2]])
    torch.testing.assert_close(out.boxes, expected)
    assert out.image[0, 0, 0] < out.image[0, 0, -1]


def test_train_transform_agrees_with_boxes_from_original() -> None:
    sample = ramp_sample()
    for seed in range(20):
        out = TrainTransform(64)(sample, np.random.default_rng(seed))
        assert out.image.shape[1] <= 64 and out.image.shape[2] <= 64
        mapped = boxes_from_original(sample.boxes, out.meta)
        keep = (mapped[:, 2] > mapped[:, 0]) & (mapped[:, 3] > mapped[:, 1])
        torch.testing.assert_close(out.boxes, mapped[keep])
        # and back: kept boxes return to the part of the original box inside the crop
        back = boxes_to_original(out.boxes, out.meta)
        assert (back[:, :2] >= sample.boxes[keep, :2] - 1e-4).all()
        assert (back[:, 2:] <= sample.boxes[keep, 2:] + 1e-4).all()


def test_train_transform_is_deterministic_per_seed() -> None:
    sample = ramp_sample()
    a = TrainTransform(64)(sample, np.random.default_rng((0, 1, 2)))
    b = TrainTransform(64)(sample, np.random.default_rng((0, 1, 2)))
    assert torch.equal(a.image, b.image) and torch.equal(a.boxes, b.boxes) and a.meta == b.meta


def test_crop_that_keeps_no_box_keeps_the_image() -> None:
    sample = ramp_sample()
    sample.boxes = torch.tensor([[0.0, 0.0, 5.0, 5.0]])
    sample.labels = torch.tensor([0])
    out = TrainTransform(64)(sample, FixedRng(1.2, top=0, left=12, flip=False))
    assert out.image.shape == (3, 38, 64)
    assert out.boxes.shape == (0, 4) and out.labels.shape == (0,)


def test_image_without_boxes() -> None:
    sample = ramp_sample()
    sample.boxes, sample.labels = torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)
    out = TrainTransform(64)(sample, np.random.default_rng(0))
    assert out.boxes.shape == (0, 4)


def test_test_transform() -> None:
    out = TestTransform(64, 128)(ramp_sample())
    # factor 0.64: 50 x 100 -> 32 x 64
    assert out.image.shape == (3, 32, 64)
    assert out.meta == ImageMeta(42, (50, 100), (32, 64), (0.64, 0.64))
    torch.testing.assert_close(out.boxes[0], torch.tensor([6.4, 3.2, 19.2, 16.0]))
    assert TestTransform(64, 128).padding == Padding(divisor=128)
    assert TrainTransform(64).padding == Padding(size=(64, 64))


def test_normalisation_values() -> None:
    image = torch.tensor([0, 124, 255], dtype=torch.uint8).view(1, 1, 3).expand(3, 1, 3)
    out = normalize(image)
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    for c in range(3):
        expected = torch.tensor([(v - mean[c]) / std[c] for v in (0, 124, 255)])
        torch.testing.assert_close(out[c, 0], expected)
    assert out.dtype == torch.float32
    assert out[0, 0, 0].item() == pytest.approx(-2.117904, abs=1e-6)


def test_boxes_round_trip_through_meta() -> None:
    meta = ImageMeta(1, (50, 100), (38, 64), (0.76, 0.76), (10, 0), True)
    inside = torch.tensor([[20.0, 10.0, 60.0, 40.0]])  # within the crop's part of the image
    back = boxes_to_original(boxes_from_original(inside, meta), meta)
    torch.testing.assert_close(back, inside)
    # the whole crop: unflipped [0, 0, 64, 60], shifted by x = 10, divided by 0.76; the
    # bottom (60 px > 38 px of image) is clipped to the original height 50
    torch.testing.assert_close(
        boxes_to_original(torch.tensor([[0.0, 0.0, 64.0, 60.0]]), meta),
        torch.tensor([[10 / 0.76, 0.0, 74 / 0.76, 50.0]]),
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TrainTransform(16), "transform size 16 is too small"),
        (lambda: TrainTransform(64, ratio_range=(1.2, 0.8)), r"ratio_range \(1.2, 0.8\) must"),
        (lambda: TrainTransform(64, ratio_range=(0, 1)), "0 < low <= high"),
        (lambda: TrainTransform(64, flip_prob=1.5), r"flip_prob 1.5 must lie in \[0, 1\]"),
        (lambda: TestTransform(8), "transform size 8 is too small"),
        (lambda: TestTransform(64, 0), "size_divisor 0 must be 1 or more"),
        (lambda: Padding(divisor=0), "padding divisor 0 must be 1 or more"),
        (lambda: Padding(size=(32, 32)).padded_size([(40, 20)]), "40x20 .* does not fit"),
    ],
)
def test_bad_settings(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_padded_sizes() -> None:
    assert Padding(divisor=128).padded_size([(200, 131), (129, 256)]) == (256, 256)
    assert Padding(divisor=64).padded_size([(64, 1)]) == (64, 64)
    assert Padding(size=(64, 64)).padded_size([(38, 64)]) == (64, 64)
    assert Padding().padded_size([(3, 5), (4, 2)]) == (4, 5)
