"""Detections of a retrained checkpoint on image files: drawn images and a COCO results file.

The checkpoint carries everything needed: the resolved configuration (test transform, model),
the genotype and the dataset's categories (names and COCO ids).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from nasfpn import config as config_io
from nasfpn.data import ImageMeta, LabelMap, PadCollate, Sample, TestTransform
from nasfpn.evaluation import detections_to_coco
from nasfpn.retrain.config import RetrainConfig
from nasfpn.retrain.run import build_model, load_checkpoint, write_json
from nasfpn.space import Genotype

RESULTS_FILE = "detections.json"
IMAGES_FILE = "images.json"
PALETTE = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
)  # fmt: skip


def load_detector(checkpoint: str | Path, device: str = "cpu"):
    """``(model, config, label_map)`` of a retraining checkpoint, the model in eval mode."""
    ckpt = load_checkpoint(checkpoint)
    cfg = config_io.from_dict(RetrainConfig, ckpt["config"])
    genotype = Genotype.from_dict(ckpt["genotype"]) if ckpt["genotype"] is not None else None
    # the checkpoint holds every weight: no pretrained backbone file is needed
    model = build_model(genotype, replace(cfg, model=replace(cfg.model, pretrained=None)))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, cfg, LabelMap.from_categories(ckpt["categories"])


def _image_id(path: Path, index: int) -> int:
    # COCO file names are the image id (000000397133.jpg); other files are numbered 1, 2, ...
    return int(path.stem) if path.stem.isdigit() else index + 1


@torch.no_grad()
def predict(
    checkpoint: str | Path,
    images: list[str | Path],
    out: str | Path,
    *,
    score_threshold: float = 0.3,
    device: str = "cpu",
) -> dict[str, Any]:
    """Detect objects in ``images``; write ``out/<name>.png`` with the boxes at or above
    ``score_threshold`` drawn, ``out/detections.json`` (COCO results, every detection the
    model keeps, in original image pixels) and ``out/images.json`` (image ids -> files)."""
    paths = [Path(p) for p in images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"image files {missing} do not exist; give existing image files")
    model, cfg, label_map = load_detector(checkpoint, device)
    transform = TestTransform(cfg.data.test_size, cfg.data.test_pad_divisor)
    collate = PadCollate(transform.padding)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results, index = [], []
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as file:
                picture = file.convert("RGB")
        except OSError as err:
            raise ValueError(f"cannot read image {str(path)!r}: {err}") from None
        pixels = torch.from_numpy(np.array(picture)).permute(2, 0, 1)  # (h, w, 3) -> (3, h, w)
        h, w = pixels.shape[-2:]
        image_id = _image_id(path, i)
        meta = ImageMeta(image_id, (h, w), (h, w))
        sample = transform(Sample(pixels, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long),
                                  meta))  # fmt: skip
        batch = collate([sample]).to(device)
        dets = model.detect(model(batch.images), batch.image_sizes)
        found = detections_to_coco(dets, batch.metas, label_map)
        results.extend(found)
        drawn = _draw(picture, found, label_map, score_threshold)
        target = out / f"{path.stem}.png"
        drawn.save(target)
        index.append({"id": image_id, "file_name": str(path), "width": w, "height": h,
                      "drawn": str(target), "detections": len(found)})  # fmt: skip
    write_json(out / RESULTS_FILE, results)
    write_json(out / IMAGES_FILE, index)
    return {"images": index, "results": str(out / RESULTS_FILE), "detections": len(results)}


def _draw(picture: Image.Image, found: list[dict], label_map: LabelMap, threshold: float):
    image = picture.copy()
    draw = ImageDraw.Draw(image)
    names = dict(zip(label_map.category_ids, label_map.names))
    for det in found:
        if det["score"] < threshold:
            continue
        x, y, w, h = det["bbox"]
        colour = PALETTE[label_map.category_ids.index(det["category_id"]) % len(PALETTE)]
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=2)
        draw.text((x + 2, y + 1), f"{names[det['category_id']]} {det['score']:.2f}", fill=colour)
    return image
