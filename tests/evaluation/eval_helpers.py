"""Helpers for the evaluation tests: hand-made ground truth and predictions, a tiny synthetic set.

A plain module rather than a ``conftest.py``: a second module named ``conftest`` would shadow
the root one for tests that import names from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasfpn.data import write_synthetic


def write_eval_synth(root: Path) -> Path:
    """8 train + 8 val synthetic images of 128 px."""
    out = root / "set"
    write_synthetic(out, train=8, val=8, size=128, seed=1, workers=0)
    return out


def gt_data() -> dict[str, Any]:
    """Three images, categories 2/5/9, a small, a medium and a large object and a crowd region."""
    boxes = [
        (1, 2, [10, 10, 20, 20]),  # small: 400 px
        (1, 5, [40, 40, 60, 50]),  # medium: 3,000 px
        (2, 9, [0, 0, 150, 120]),  # large: 18,000 px
        (2, 2, [160, 10, 8, 8]),  # small
        (3, 5, [5, 5, 40, 40]),  # medium
    ]
    anns = [
        {"id": k + 1, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3],
         "iscrowd": 0}
        for k, (i, c, b) in enumerate(boxes)
    ]  # fmt: skip
    anns.append(
        {"id": 99, "image_id": 3, "category_id": 2, "bbox": [100, 100, 50, 50], "area": 2000,
         "iscrowd": 1}
    )  # fmt: skip
    return {
        "info": {"description": "hand-made"},
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 160} for i in (1, 2, 3)
        ],
        "annotations": anns,
        "categories": [{"id": c, "name": f"c{c}"} for c in (2, 5, 9)],
    }


def predictions() -> list[dict[str, Any]]:
    """Hits, a poor localisation, a wrong class, a detection on the crowd region, a miss."""
    return [
        {"image_id": 1, "category_id": 2, "bbox": [10, 10, 20, 20], "score": 0.9},
        {"image_id": 1, "category_id": 5, "bbox": [45, 42, 60, 50], "score": 0.8},
        {"image_id": 1, "category_id": 9, "bbox": [40, 40, 60, 50], "score": 0.7},
        {"image_id": 2, "category_id": 9, "bbox": [0, 0, 120, 120], "score": 0.6},
        {"image_id": 2, "category_id": 2, "bbox": [100, 100, 10, 10], "score": 0.95},
        {"image_id": 3, "category_id": 2, "bbox": [110, 110, 20, 20], "score": 0.5},
        {"image_id": 3, "category_id": 5, "bbox": [6, 5, 40, 41], "score": 0.4},
    ]


def write_files(root: Path, gt: dict[str, Any], preds: list[dict[str, Any]]) -> tuple[Path, Path]:
    """``gt.json`` and ``pred.json`` under ``root``."""
    gt_path, pred_path = root / "gt.json", root / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(preds))
    return gt_path, pred_path
