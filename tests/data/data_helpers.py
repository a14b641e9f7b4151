"""Helpers for the data tests: hand-made COCO folders and a tiny synthetic set.

A plain module rather than a ``conftest.py``: a second module named ``conftest`` would shadow
the root one for tests that import names from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nasfpn.data import write_synthetic


def write_tiny_synth(root: Path) -> Path:
    """12 train + 6 val synthetic images of 128 px, drawn in this process."""
    out = root / "set"
    write_synthetic(out, train=12, val=6, size=128, seed=0, workers=0)
    return out


def coco_dict(
    images: list[tuple[int, int, int]], anns: list[tuple], categories=((1, "a"), (3, "b"))
) -> dict[str, Any]:
    """``images``: (id, width, height); ``anns``: (image_id, category_id, [x, y, w, h], iscrowd)."""
    return {
        "info": {"description": "hand-made"},
        "licenses": [],
        "images": [
            {"id": i, "file_name": f"{i:04d}.png", "width": w, "height": h} for i, w, h in images
        ],
        "annotations": [
            {
                "id": k + 1,
                "image_id": image_id,
                "category_id": cat,
                "bbox": list(map(float, bbox)),
                "area": float(bbox[2] * bbox[3]),
                "iscrowd": crowd,
            }
            for k, (image_id, cat, bbox, crowd) in enumerate(anns)
        ],
        "categories": [{"id": c, "name": n} for c, n in categories],
    }


def write_coco(root: Path, data: dict[str, Any], write_images: bool = True) -> tuple[Path, Path]:
    """Write a hand-made COCO folder under ``root``; returns (annotation file, image folder)."""
    images = root / "images"
    images.mkdir(exist_ok=True)
    if write_images:
        for info in data["images"]:
            # a left-to-right ramp: red = x, so geometry can be read back from pixels
            w, h = info["width"], info["height"]
            pixels = np.zeros((h, w, 3), np.uint8)
            pixels[..., 0] = np.linspace(0, 255, w, dtype=np.float32).astype(np.uint8)
            pixels[..., 1] = 100
            Image.fromarray(pixels).save(images / info["file_name"])
    ann = root / "instances.json"
    ann.write_text(json.dumps(data))
    return ann, images
