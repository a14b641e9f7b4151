"""Model detections -> COCO results in original image pixels; an evaluator that collects them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from torch import Tensor

from nasfpn.data import ImageMeta, LabelMap, boxes_to_original
from nasfpn.evaluation.coco_eval import evaluate_coco, load_ground_truth


def detections_to_coco(
    detections: list[dict[str, Tensor]], metas: list[ImageMeta], label_map: LabelMap
) -> list[dict[str, Any]]:
    """COCO results (``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]``, ``score``).

    ``detections`` are ``RetinaNet.detect`` outputs (x1y1x2y2 boxes in the network input,
    contiguous labels); each is mapped back to its image file through its
    :class:`~nasfpn.data.ImageMeta` and its label to the COCO category id.
    """
    if len(detections) != len(metas):
        raise ValueError(
            f"{len(detections)} detection sets for {len(metas)} images; pass one per image"
        )
    results = []
    for det, meta in zip(detections, metas):
        boxes = boxes_to_original(det["boxes"], meta)
        xywh = boxes.clone()
        xywh[:, 2:] -= boxes[:, :2]  # mmdetection's xyxy2xywh: w = x2 - x1, no +1
        categories = label_map.to_category_ids(det["labels"].tolist())
        for box, score, category in zip(xywh.tolist(), det["scores"].tolist(), categories):
            results.append(
                {"image_id": meta.image_id, "category_id": category, "bbox": box, "score": score}
            )
    return results


class CocoEvaluator:
    """Collects detections batch by batch and scores them with COCOeval.

    ::

        evaluator = CocoEvaluator(dataset.annotation_file, dataset.label_map)
        for batch in loader:
            evaluator.update(model.detect(model(batch.images), batch.image_sizes), batch.metas)
        metrics = evaluator.evaluate()  # {"AP": ..., "AP50": ..., ...}
    """

    def __init__(
        self, annotations: str | Path | dict[str, Any] | COCO, label_map: LabelMap | None = None
    ) -> None:
        self.gt = load_ground_truth(annotations)
        self.label_map = label_map or LabelMap.from_categories(self.gt.dataset["categories"])
        unknown = sorted(set(self.label_map.category_ids) - set(self.gt.cats))
        if unknown:
            raise ValueError(
                f"the label map has category ids {unknown} that the annotations do not "
                f"(they have {sorted(self.gt.cats)}); build both from the same annotation file"
            )
        self.results: list[dict[str, Any]] = []

    def update(self, detections: list[dict[str, Tensor]], metas: list[ImageMeta]) -> None:
        self.results.extend(detections_to_coco(detections, metas, self.label_map))

    def evaluate(self, *, verbose: bool = False) -> dict[str, float]:
        return evaluate_coco(self.gt, self.results, verbose=verbose)
