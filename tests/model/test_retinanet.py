import math
import random

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from nasfpn.model import ModelConfig, TestSettings, build_retinanet
from nasfpn.model.anchors import AnchorSpec, encode
from nasfpn.space import NASFPN, SearchSpace

TINY = ModelConfig(backbone="resnet10", repeats=2, width=8, num_classes=3, head_convs=1)


def _targets() -> list[dict[str, torch.Tensor]]:
    return [
        {
            "boxes": torch.tensor([[10.0, 12, 50, 60], [30, 40, 90, 95]]),
            "labels": torch.tensor([0, 2]),
        },
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]


def test_random_genotypes_build_and_train_on_odd_sizes() -> None:
    """100 random genotypes: forward + backward, finite, five maps at strides 8..128."""
    space = SearchSpace()
    rng = random.Random(0)
    torch.manual_seed(0)
    h, w = 75, 101
    images = torch.randn(2, 3, h, w)
    for _ in range(100):
        genotype = space.decode(space.sample(rng))
        model = build_retinanet(
            genotype,
            ModelConfig(backbone="resnet10", repeats=1, width=4, num_classes=3, head_convs=1),
        )
        feats = model.neck(model.backbone(images))
        assert [tuple(f.shape[-2:]) for f in feats] == [
            (math.ceil(h / s), math.ceil(w / s)) for s in (8, 16, 32, 64, 128)
        ], genotype
        cls, reg = model.head(feats)
        loss = sum(model.loss((cls, reg), _targets()).values())
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in model.neck.parameters())


def test_loss_by_hand_on_one_anchor_per_location() -> None:
    torch.manual_seed(0)
    spec = AnchorSpec(strides=(8, 16, 32, 64, 128), scales_per_octave=1, ratios=(1.0,))
    model = build_retinanet(
        NASFPN,
        ModelConfig(
            backbone="resnet10", repeats=1, width=8, num_classes=2, head_convs=1, anchors=spec
        ),
    ).eval()  # one image: BN on the 1x1 P7 map needs running statistics
    outputs = model(torch.randn(1, 3, 64, 64))
    # a box equal to the anchor at level 3 location (y=2, x=3): 32 x 32 centred at (24, 16)
    box = torch.tensor([[8.0, 0.0, 40.0, 32.0]])
    target = [{"boxes": box, "labels": torch.tensor([1])}]
    losses = model.loss(outputs, target)

    anchors = model.anchors_for(outputs[0])
    logits = torch.cat([o.permute(0, 2, 3, 1).reshape(-1, 2) for o in outputs[0]])
    deltas = torch.cat([o.permute(0, 2, 3, 1).reshape(-1, 4) for o in outputs[1]])
    # The anchor at (y=2, x=3) equals the box; its four neighbours (shifted by 8 px) overlap it
    # at 24*32 / (2*32*32 - 24*32) = 0.6 >= 0.5: five positives on an 8-wide grid.
    pos = [1 * 8 + 3, 2 * 8 + 2, 2 * 8 + 3, 2 * 8 + 4, 3 * 8 + 3]
    assert torch.equal(anchors[19], box[0])
    cls_target = torch.zeros_like(logits)
    cls_target[pos, 1] = 1
    expected_cls = sigmoid_focal_loss(logits, cls_target, 0.25, 2.0, reduction="sum") / 5
    box_targets = encode(anchors[pos], box.expand(5, 4))
    expected_box = (deltas[pos] - box_targets).abs().sum() / 5
    torch.testing.assert_close(losses["loss_cls"], expected_cls, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(losses["loss_box"], expected_box)


def test_loss_without_objects_is_finite() -> None:
    model = build_retinanet(NASFPN, TINY)
    outputs = model(torch.randn(2, 3, 64, 64))
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}] * 2
    losses = model.loss(outputs, empty)
    assert losses["loss_box"] == 0 and torch.isfinite(losses["loss_cls"])


def _planted(model, scores: dict[tuple[int, int], float], size: int = 64):
    """Head outputs with zero deltas and the given (anchor index, class) scores planted."""
    cls, reg = model(torch.zeros(1, 3, size, size))
    cls = [torch.full_like(c, -20.0) for c in cls]
    reg = [torch.zeros_like(r) for r in reg]
    for (anchor, label), score in scores.items():
        logit = math.log(score / (1 - score))
        # anchor 0..(H*W*A) of level 0, (N, A*K, H, W) layout
        a, loc = anchor % 9, anchor // 9
        hw = cls[0].shape[-1]
        cls[0][0, a * model.num_classes + label, loc // hw, loc % hw] = logit
    return cls, reg


def test_detect_thresholds_nms_and_caps() -> None:
    model = build_retinanet(NASFPN, TINY).eval()
    anchors = model.anchors_for(model(torch.zeros(1, 3, 64, 64))[0])
    # anchor 3 and 4 of location 0 overlap heavily (octaves 0 and 1 of ratio 1): NMS keeps one
    planted = {(3, 0): 0.9, (4, 0): 0.8, (4, 1): 0.7, (9 * 5 + 3, 2): 0.04}
    dets = model.detect(_planted(model, planted), [(64, 64)])[0]
    assert dets["scores"].tolist() == pytest.approx([0.9, 0.7], abs=1e-5)  # 0.04 < 0.05
    assert dets["labels"].tolist() == [0, 1]  # class-wise NMS keeps the other class
    expected = anchors[3].clamp(min=0, max=64)
    torch.testing.assert_close(dets["boxes"][0], expected)

    capped = build_retinanet(
        NASFPN, ModelConfig(**{**TINY.__dict__, "test": TestSettings(max_detections=1)})
    ).eval()
    assert len(capped.detect(_planted(capped, planted), [(64, 64)])[0]["scores"]) == 1


def test_detect_with_nothing_above_threshold_is_empty() -> None:
    model = build_retinanet(NASFPN, TINY).eval()
    dets = model.detect(_planted(model, {}), [(64, 64)])[0]
    assert dets["boxes"].shape == (0, 4) and dets["labels"].dtype == torch.long


def test_labels_outside_the_classes_are_refused() -> None:
    model = build_retinanet(NASFPN, TINY).eval()
    bad = [{"boxes": torch.tensor([[0.0, 0, 9, 9]]), "labels": torch.tensor([3])}]
    with pytest.raises(ValueError, match=r"labels \[3\] but the model has 3 classes"):
        model.loss(model(torch.zeros(1, 3, 64, 64)), bad)


def test_anchor_and_head_mismatch_is_refused() -> None:
    from nasfpn.model.head import SepBNHead
    from nasfpn.model.retinanet import RetinaNet

    model = build_retinanet(NASFPN, TINY)
    with pytest.raises(ValueError, match="predicts 4 anchors per location"):
        RetinaNet(model.backbone, model.neck, SepBNHead(3, num_anchors=4), AnchorSpec())
