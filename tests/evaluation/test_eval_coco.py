"""COCO AP: exactly pycocotools' numbers, empty predictions, silence, and every bad input."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import eval_helpers
import numpy as np
import pytest
from eval_helpers import write_eval_synth, write_files
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from nasfpn.data import DatasetError
from nasfpn.evaluation import (
    METRICS,
    PredictionError,
    evaluate_coco,
    load_ground_truth,
    load_predictions,
)


@pytest.fixture(scope="module")
def eval_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_eval_synth(tmp_path_factory.mktemp("eval_synth"))


@pytest.fixture
def gt_data() -> dict:
    return eval_helpers.gt_data()


@pytest.fixture
def predictions() -> list:
    return eval_helpers.predictions()


@pytest.fixture
def files(tmp_path: Path, gt_data: dict, predictions: list) -> tuple[Path, Path]:
    return write_files(tmp_path, gt_data, predictions)


def pycocotools_stats(gt: Path, pred: Path) -> list[float]:
    """pycocotools on its own, as its README runs it."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt))
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(str(pred)), "bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return [float(x) for x in coco_eval.stats[:6]]


def test_equals_pycocotools_exactly(files: tuple[Path, Path]) -> None:
    gt, pred = files
    ours = evaluate_coco(gt, pred)
    assert list(ours) == list(METRICS)
    assert list(ours.values()) == pycocotools_stats(gt, pred)  # every digit
    assert 0 < ours["AP"] < 1


def test_equals_pycocotools_on_many_detections(tmp_path: Path, eval_synth: Path) -> None:
    gt = eval_synth / "annotations" / "instances_val.json"
    data = json.loads(gt.read_text())
    rng = np.random.default_rng(0)
    preds = []
    for ann in data["annotations"]:  # jittered hits, with random scores
        x, y, w, h = ann["bbox"]
        jitter = rng.normal(0, 0.08, 4) * [w, h, w, h]
        box = [x + jitter[0], y + jitter[1], max(w + jitter[2], 1), max(h + jitter[3], 1)]
        preds.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                      "bbox": [float(v) for v in box], "score": float(rng.random())})  # fmt: skip
    for image in data["images"]:  # false positives
        for _ in range(5):
            x, y = rng.uniform(0, 100, 2)
            cat = int(rng.choice([c["id"] for c in data["categories"]]))
            box = [float(x), float(y), 20.0, 15.0]
            preds.append({"image_id": image["id"], "category_id": cat, "bbox": box,
                          "score": float(rng.random())})  # fmt: skip
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(preds))
    ours = evaluate_coco(gt, pred)
    assert list(ours.values()) == pycocotools_stats(gt, pred)
    assert 0.1 < ours["AP"] < 0.95
    assert evaluate_coco(gt, preds) == ours  # a list gives the same as its file


def test_empty_predictions_give_zero(files: tuple[Path, Path], gt_data: dict) -> None:
    gt, _ = files
    assert evaluate_coco(gt, []) == dict.fromkeys(METRICS, 0.0)
    # COCOeval's -1 where there is nothing to score: no large object left
    gt_data["annotations"] = [a for a in gt_data["annotations"] if a["area"] < 96**2]
    result = evaluate_coco(gt_data, [])
    assert result["APl"] == -1.0 and result["AP"] == 0.0


def test_silent_unless_verbose(files: tuple[Path, Path], capsys) -> None:
    gt, pred = files
    evaluate_coco(gt, pred)
    assert capsys.readouterr().out == ""
    evaluate_coco(gt, pred, verbose=True)
    assert "Average Precision  (AP) @[ IoU=0.50:0.95" in capsys.readouterr().out


def test_inputs_are_not_modified(gt_data: dict, predictions: list) -> None:
    before_gt, before_pred = copy.deepcopy(gt_data), copy.deepcopy(predictions)
    evaluate_coco(gt_data, predictions)
    assert gt_data == before_gt and predictions == before_pred


def test_ground_truth_forms(files: tuple[Path, Path], gt_data: dict) -> None:
    gt, _ = files
    from_path = load_ground_truth(gt)
    assert load_ground_truth(from_path) is from_path
    assert sorted(load_ground_truth(gt_data).imgs) == sorted(from_path.imgs) == [1, 2, 3]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.clear() or p.append([1, 2]), "detection 0 is a list, not an object"),
        (lambda p: p[1].pop("score"), "detection 1 lacks 'score'; each needs image_id"),
        (lambda p: p[2].update(bbox=[1, 2, 3]), r"detection 2 has bbox \[1, 2, 3\]; expected"),
        (lambda p: p[2].update(bbox=[1, 2, "3", 4]), "expected \\[x, y, width, height\\]"),
        (lambda p: p[2].update(bbox=[1, 2, -3, 4]), "with a negative width or height"),
        (lambda p: p[0].update(score=float("nan")), "detection 0 has score nan"),
        (lambda p: p[0].update(score="high"), "has score 'high'; expected a number"),
        (
            lambda p: p[3].update(image_id=77),
            r"detection 3 is for image_id 77, which is not an image of .*gt.json' "
            r"\(3 images, ids 1..3\); were the predictions made on another split\?",
        ),
        (lambda p: p[3].update(image_id="1"), "is for image_id '1'"),
        (
            lambda p: p[4].update(category_id=1),
            r"detection 4 has category_id 1, which is not a category of .* \(ids \[2, 5, 9\]\); "
            "were labels mapped back to category ids\\?",
        ),
        (
            lambda p: [d.update(category_id=0) for d in p],
            r"detection 0 has category_id 0, .* \(6 more detections have problems\)",
        ),
    ],
)
def test_bad_predictions(files: tuple[Path, Path], predictions: list, edit, message) -> None:
    gt, pred = files
    edit(predictions)
    pred.write_text(json.dumps(predictions))
    with pytest.raises(PredictionError, match=message):
        evaluate_coco(gt, pred)
    if predictions and isinstance(predictions[0], dict):
        with pytest.raises(PredictionError, match=message.replace(".*gt.json'", ".*")):
            evaluate_coco(json.loads(gt.read_text()), predictions)


def test_predictions_file_errors(files: tuple[Path, Path], tmp_path: Path) -> None:
    gt, pred = files
    with pytest.raises(FileNotFoundError, match=r"predictions file '.*missing.json' does not"):
        evaluate_coco(gt, tmp_path / "missing.json")
    pred.write_text("[{")
    with pytest.raises(DatasetError, match=r"predictions file .* is not valid JSON"):
        evaluate_coco(gt, pred)
    pred.write_text(json.dumps({"annotations": []}))
    with pytest.raises(PredictionError, match=r"must be a JSON list of detections .* found a dict"):
        load_predictions(pred, load_ground_truth(gt))


def test_ground_truth_errors(files: tuple[Path, Path], gt_data: dict, tmp_path: Path) -> None:
    _, pred = files
    with pytest.raises(FileNotFoundError, match="annotation file"):
        evaluate_coco(tmp_path / "none.json", pred)
    del gt_data["annotations"][0]["area"]
    with pytest.raises(DatasetError, match=r"annotations\[0\] lacks 'area'"):
        evaluate_coco(gt_data, [])
