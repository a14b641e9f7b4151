import math

import pytest
import torch
from torchvision.models.detection._utils import BoxCoder

from nasfpn.model.anchors import AnchorSpec, Assignment, assign, decode, encode


def test_base_anchors_by_hand() -> None:
    spec = AnchorSpec()
    base = spec.base_anchors(8)
    assert base.shape == (9, 4)
    # ratio 1 (index 1) at octave 0: a 32 x 32 box (base scale 4 x stride 8), centred on 0
    torch.testing.assert_close(base[3], torch.tensor([-16.0, -16.0, 16.0, 16.0]))
    # ratio 0.5 = h/w at octave 0: w = 32*sqrt(2), h = 32/sqrt(2)
    w, h = 32 * math.sqrt(2), 32 / math.sqrt(2)
    torch.testing.assert_close(base[0], torch.tensor([-w / 2, -h / 2, w / 2, h / 2]))
    # ratio-major then scale: index 4 is ratio 1, octave 1 (scale 4 * 2**(1/3))
    s = 32 * 2 ** (1 / 3)
    torch.testing.assert_close(base[4], torch.tensor([-s / 2, -s / 2, s / 2, s / 2]))


def test_grid_is_location_major() -> None:
    spec = AnchorSpec(strides=(8, 16))
    levels = spec.grid([(2, 3), (1, 2)], torch.device("cpu"))
    assert [t.shape for t in levels] == [(2 * 3 * 9, 4), (1 * 2 * 9, 4)]
    # location (y=1, x=2) of level 0 starts at row (1*3 + 2) * 9, shifted by (16, 8)
    torch.testing.assert_close(
        levels[0][5 * 9], spec.base_anchors(8)[0] + torch.tensor([16.0, 8, 16, 8])
    )


def test_encode_matches_torchvision_and_decode_inverts() -> None:
    g = torch.Generator().manual_seed(0)
    anchors = torch.rand(50, 2, generator=g) * 100
    anchors = torch.cat([anchors, anchors + 5 + torch.rand(50, 2, generator=g) * 50], 1)
    boxes = torch.rand(50, 2, generator=g) * 100
    boxes = torch.cat([boxes, boxes + 5 + torch.rand(50, 2, generator=g) * 50], 1)
    ours = encode(anchors, boxes)
    theirs = BoxCoder((1.0, 1.0, 1.0, 1.0)).encode_single(boxes, anchors)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(decode(anchors, ours), boxes, rtol=1e-4, atol=1e-3)


def test_decode_clamps_huge_deltas() -> None:
    box = decode(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[0.0, 0, 1e4, 1e4]]))
    assert torch.isfinite(box).all()


def test_assign_by_hand() -> None:
    anchors = torch.tensor(
        [
            [0.0, 0, 10, 10],  # IoU 1 with gt 0 -> positive
            [0.0, 0, 10, 14],  # IoU 100/140 = 0.71 with gt 0 -> positive
            [0.0, 0, 10, 22],  # IoU 100/220 = 0.45 -> ignored at (0.4, 0.5)
            [50.0, 50, 60, 60],  # IoU 0 -> negative
            [100.0, 100, 120, 130],  # IoU 0.25 with gt 1, its best anchor -> forced positive
        ]
    )
    gts = torch.tensor([[0.0, 0, 10, 10], [100.0, 100, 110, 115]])
    a = assign(anchors, gts, pos_iou=0.5, neg_iou=0.4)
    assert a.matched.tolist() == [0, 0, Assignment.IGNORED, Assignment.NEGATIVE, 1]
    # the docs' recipe (neg < 0.5): the 0.45 anchor is negative
    assert assign(anchors, gts, 0.5, 0.5).matched[2] == Assignment.NEGATIVE


def test_assign_forced_match_goes_to_the_box_it_is_best_for() -> None:
    # The anchor overlaps gt 0 more (IoU 0.6) but is gt 1's best anchor: mmdetection gives it
    # to gt 1; torchvision's Matcher would keep gt 0.
    anchors = torch.tensor([[0.0, 0, 10, 10], [20.0, 0, 30, 10]])
    gts = torch.tensor([[0.0, 0, 10, 6], [0.0, 0, 10, 3], [20.0, 0, 30, 10]])
    a = assign(anchors, gts, 0.5, 0.5)
    assert a.matched.tolist() == [1, 2]


def test_assign_without_boxes_is_all_negative() -> None:
    a = assign(torch.rand(7, 4), torch.zeros(0, 4))
    assert (a.matched == Assignment.NEGATIVE).all()


@pytest.mark.parametrize("n", [1, 3])
def test_num_anchors(n: int) -> None:
    assert AnchorSpec(scales_per_octave=n).num_anchors == 3 * n
