"""COCO box AP (pycocotools COCOeval) of model detections or of a results file.

May import ``data`` (and ``config``), never ``model`` (docs/architecture.md). Names are imported
from their modules on first use (PEP 562), so that ``nasfpn evaluate`` starts without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "coco_eval": (
        "METRICS",
        "PredictionError",
        "check_predictions",
        "evaluate_coco",
        "load_ground_truth",
        "load_predictions",
    ),
    "results": ("CocoEvaluator", "detections_to_coco"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = [
    "METRICS",
    "CocoEvaluator",
    "PredictionError",
    "check_predictions",
    "detections_to_coco",
    "evaluate_coco",
    "load_ground_truth",
    "load_predictions",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'nasfpn.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nasfpn.evaluation.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from nasfpn.evaluation.coco_eval import (
        METRICS,
        PredictionError,
        check_predictions,
        evaluate_coco,
        load_ground_truth,
        load_predictions,
    )
    from nasfpn.evaluation.results import CocoEvaluator, detections_to_coco
