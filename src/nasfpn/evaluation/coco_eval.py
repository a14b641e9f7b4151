"""COCO box AP through pycocotools' COCOeval, with clear errors for bad predictions.

The metrics are COCOeval's ``stats[0:6]`` exactly (``evaluate(); accumulate(); summarize()``
with ``iouType="bbox"`` and default parameters), on COCOeval's 0..1 scale (0.405, not 40.5):

=====  ==========================================================
AP     AP at IoU 0.50:0.95, all areas, up to 100 detections/image
AP50   AP at IoU 0.50
AP75   AP at IoU 0.75
APs    AP on small objects (area < 32^2)
APm    AP on medium objects (32^2 .. 96^2)
APl    AP on large objects (area > 96^2)
=====  ==========================================================

As in COCOeval, a metric with no ground truth to score (e.g. APl on a set without large
objects) is -1.0.
"""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from nasfpn.data.annotations import (
    coco_index,
    is_int,
    is_number,
    load_annotations,
    read_json,
    validate_annotations,
)

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
PREDICTION_KEYS = ("image_id", "category_id", "bbox", "score")


class PredictionError(ValueError):
    """A detection results file or list that cannot be scored against the annotations."""


def load_ground_truth(annotations: str | Path | dict[str, Any] | COCO) -> COCO:
    """A pycocotools ``COCO`` for an annotation file (or dict), validated for evaluation."""
    if isinstance(annotations, COCO):
        return annotations
    if isinstance(annotations, dict):
        validate_annotations(annotations, "the annotations", for_evaluation=True)
        # COCOeval writes an 'ignore' key into every annotation: index copies, not the caller's
        return coco_index(
            {**annotations, "annotations": [dict(a) for a in annotations["annotations"]]}
        )
    return coco_index(load_annotations(annotations, for_evaluation=True))


def load_predictions(path: str | Path, gt: COCO, gt_name: str = "the annotations") -> list[dict]:
    """Read a COCO results file (a JSON list of detections) and check it against ``gt``."""
    predictions = read_json(path, "predictions file")
    check_predictions(predictions, gt, source=repr(str(path)), gt_name=gt_name)
    return predictions


def check_predictions(
    predictions: Any, gt: COCO, *, source: str = "predictions", gt_name: str = "the annotations"
) -> None:
    """Raise :class:`PredictionError` naming the first bad detection (and how many more)."""
    if not isinstance(predictions, list):
        raise PredictionError(
            f"{source} must be a JSON list of detections {{image_id, category_id, bbox, score}} "
            f"(COCO results format), found a {type(predictions).__name__}"
        )
    images, categories = set(gt.imgs), set(gt.cats)
    problems: list[tuple[int, str]] = []
    for i, det in enumerate(predictions):
        problem = _problem(det, images, categories, gt_name)
        if problem:
            problems.append((i, problem))
    if problems:
        i, problem = problems[0]
        more = f" ({len(problems) - 1} more detections have problems)" if len(problems) > 1 else ""
        raise PredictionError(f"{source}: detection {i} {problem}{more}")


def _problem(det: Any, images: set[int], categories: set[int], gt_name: str) -> str | None:
    if not isinstance(det, dict):
        return f"is a {type(det).__name__}, not an object {{image_id, category_id, bbox, score}}"
    missing = [k for k in PREDICTION_KEYS if k not in det]
    if missing:
        return f"lacks {', '.join(map(repr, missing))}; each needs {', '.join(PREDICTION_KEYS)}"
    bbox, score = det["bbox"], det["score"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(is_number, bbox))):
        return f"has bbox {bbox!r}; expected [x, y, width, height] numbers"
    if bbox[2] < 0 or bbox[3] < 0:
        return f"has bbox {bbox!r} with a negative width or height"
    if not is_number(score):
        return f"has score {score!r}; expected a number"
    if not is_int(det["image_id"]) or det["image_id"] not in images:
        ids = sorted(images)
        span = f"ids {ids[0]}..{ids[-1]}" if ids else "no images"
        return (
            f"is for image_id {det['image_id']!r}, which is not an image of {gt_name} "
            f"({len(ids)} images, {span}); were the predictions made on another split?"
        )
    if not is_int(det["category_id"]) or det["category_id"] not in categories:
        return (
            f"has category_id {det['category_id']!r}, which is not a category of {gt_name} "
            f"(ids {sorted(categories)}); were labels mapped back to category ids?"
        )
    return None


def _results(gt: COCO, predictions: list[dict]) -> COCO:
    if predictions:
        return gt.loadRes(predictions)
    # pycocotools' loadRes indexes predictions[0]; an empty result set is built directly
    res = COCO()
    res.dataset = {
        "images": list(gt.dataset["images"]),
        "categories": copy.deepcopy(gt.dataset["categories"]),
        "annotations": [],
    }
    res.createIndex()
    return res


def evaluate_coco(
    annotations: str | Path | dict[str, Any] | COCO,
    predictions: str | Path | list[dict],
    *,
    verbose: bool = False,
) -> dict[str, float]:
    """Box AP of ``predictions`` (COCO results, original image pixels) on ``annotations``.

    Returns :data:`METRICS` as COCOeval computes them (0..1). No predictions give 0.0 (-1.0
    where there is no ground truth). pycocotools' prints are silenced unless ``verbose``.
    """
    gt_name = repr(str(annotations)) if isinstance(annotations, str | Path) else "the annotations"
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if not verbose else contextlib.nullcontext():
        gt = load_ground_truth(annotations)
        if isinstance(predictions, str | Path):
            predictions = load_predictions(predictions, gt, gt_name)
        else:
            check_predictions(predictions, gt, gt_name=gt_name)
        # loadRes adds keys to each detection: give it copies, not the caller's dicts
        results = _results(gt, [dict(d) for d in predictions])
        coco_eval = COCOeval(gt, results, iouType="bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return {name: float(v) for name, v in zip(METRICS, coco_eval.stats[: len(METRICS)])}
