"""Detections -> COCO results in original pixels, the evaluator, and a model end to end."""

from __future__ import annotations

from pathlib import Path

import eval_helpers
import pytest
import torch
from eval_helpers import write_eval_synth

from nasfpn.data import (
    CocoDetection,
    ImageMeta,
    LabelMap,
    TestTransform,
    TrainTransform,
    build_loader,
)
from nasfpn.evaluation import METRICS, CocoEvaluator, detections_to_coco


@pytest.fixture(scope="module")
def eval_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_eval_synth(tmp_path_factory.mktemp("eval_synth"))


@pytest.fixture
def gt_data() -> dict:
    return eval_helpers.gt_data()


LABELS = LabelMap((2, 5, 9), ("c2", "c5", "c9"))


def test_detections_to_coco_by_hand() -> None:
    meta = ImageMeta(5, (100, 200), (40, 60), scale=(0.5, 0.4), crop=(4, 2), flipped=True)
    detections = [
        {
            "boxes": torch.tensor([[10.0, 5.0, 30.0, 25.0], [0.0, 0.0, 60.0, 40.0]]),
            "scores": torch.tensor([0.75, 0.5]),
            "labels": torch.tensor([1, 2]),
        }
    ]
    results = detections_to_coco(detections, [meta], LABELS)
    # unflip in 60 px: x 30..50; add the crop (4, 2); divide by (0.5, 0.4)
    assert results[0] == {
        "image_id": 5,
        "category_id": 5,
        "bbox": [68, 17.5, 40, 50],
        "score": 0.75,
    }
    # [4, 2, 64, 42] / (0.5, 0.4) = [8, 5, 128, 105], clipped to the 100 px high image
    assert results[1]["bbox"] == [8, 5, 120, 95] and results[1]["category_id"] == 9


def test_detections_to_coco_errors() -> None:
    meta = ImageMeta(1, (10, 10), (10, 10))
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)}
    assert detections_to_coco([empty], [meta], LABELS) == []
    with pytest.raises(ValueError, match="2 detection sets for 1 images"):
        detections_to_coco([empty, empty], [meta], LABELS)
    bad = {"boxes": torch.zeros(1, 4), "scores": torch.ones(1), "labels": torch.tensor([3])}
    with pytest.raises(ValueError, match=r"labels \[3\] are outside 0..2 for 3 classes"):
        detections_to_coco([bad], [meta], LABELS)


def test_evaluator_label_map_must_match(gt_data: dict) -> None:
    with pytest.raises(ValueError, match=r"category ids \[4\] that the annotations do not"):
        CocoEvaluator(gt_data, LabelMap((2, 4), ("a", "b")))
    assert CocoEvaluator(gt_data).label_map == LABELS


def _test_set(root: Path, size: int) -> CocoDetection:
    ann = root / "annotations" / "instances_val.json"
    return CocoDetection(ann, root / "val", TestTransform(size, 64))


@pytest.mark.parametrize("size", [100, 300])
def test_ground_truth_through_the_loader_and_back_scores_one(eval_synth: Path, size: int) -> None:
    ds = _test_set(eval_synth, size)
    evaluator = CocoEvaluator(ds.annotation_file, ds.label_map)
    for batch in build_loader(ds, 3, train=False, workers=0):
        detections = [
            {"boxes": t["boxes"], "labels": t["labels"], "scores": torch.ones(len(t["labels"]))}
            for t in batch.targets
        ]
        evaluator.update(detections, batch.metas)
    # 128 px images hold no object above 96^2 px: COCOeval reports APl as -1
    assert evaluator.evaluate() == {**dict.fromkeys(METRICS, 1.0), "APl": -1.0}


def test_training_crops_map_back_inside_the_ground_truth(eval_synth: Path) -> None:
    root = eval_synth
    ds = CocoDetection(root / "annotations/instances_val.json", root / "val", TrainTransform(96))
    plain = CocoDetection(root / "annotations/instances_val.json", root / "val")
    for index in range(len(ds)):
        sample, raw = ds[(index, 0, 3)], plain[index]
        back = detections_to_coco(
            [
                {
                    "boxes": sample.boxes,
                    "labels": sample.labels,
                    "scores": torch.ones(len(sample.labels)),
                }
            ],
            [sample.meta],
            ds.label_map,
        )
        for result in back:  # each lies within some ground-truth box of its class
            x, y, w, h = result["bbox"]
            label = ds.label_map.to_labels([result["category_id"]])[0]
            inside = [
                b[0] - 1e-3 <= x
                and b[1] - 1e-3 <= y
                and x + w <= b[2] + 1e-3
                and y + h <= b[3] + 1e-3
                for b, lab in zip(raw.boxes.tolist(), raw.labels.tolist())
                if lab == label
            ]
            assert any(inside)


def test_a_model_trains_and_is_scored_on_a_batch(eval_synth: Path) -> None:
    from nasfpn.model import ModelConfig, build_retinanet

    torch.manual_seed(0)
    train = CocoDetection(
        eval_synth / "annotations/instances_train.json",
        eval_synth / "train",
        TrainTransform(128),
        filter_empty=True,
    )
    cfg = ModelConfig(backbone="resnet10", repeats=1, width=16, head_convs=1, num_classes=8)
    model = build_retinanet("nasfpn", cfg)
    batch = next(iter(build_loader(train, 2, train=True, workers=0)))
    losses = model.loss(model(batch.images), batch.targets)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())

    val = _test_set(eval_synth, 128)
    evaluator = CocoEvaluator(val.annotation_file, val.label_map)
    model.eval()
    with torch.no_grad():
        for batch in build_loader(val, 4, train=False, workers=0):
            evaluator.update(model.detect(model(batch.images), batch.image_sizes), batch.metas)
    metrics = evaluator.evaluate()
    assert list(metrics) == list(METRICS)
    assert all(v == -1.0 or 0.0 <= v <= 1.0 for v in metrics.values())
