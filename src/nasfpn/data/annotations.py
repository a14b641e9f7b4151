"""COCO annotation files: loading with clear errors, validation, deterministic writing, labels.

The format is COCO's ``instances_*.json``: a dict with ``images`` (``id``, ``file_name``,
``width``, ``height``), ``annotations`` (``id``, ``image_id``, ``category_id``, ``bbox`` as
``[x, y, w, h]`` in pixels, ``area``, ``iscrowd``) and ``categories`` (``id``, ``name``).
``info`` and ``licenses`` are carried along untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO

REQUIRED_KEYS = {
    "images": ("id", "file_name", "width", "height"),
    "annotations": ("id", "image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}
# COCOeval reads these two from every ground-truth annotation (pycocotools cocoeval.py)
EVALUATION_KEYS = ("area", "iscrowd")


class DatasetError(ValueError):
    """An annotation file or image folder that cannot be used as it is; the message says why."""


def is_number(x: Any) -> bool:
    """A finite JSON number (``bool`` is not one, although Python says it is an ``int``)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file, raising ``FileNotFoundError``/``DatasetError`` that name the file."""
    path = Path(path)
    if not path.is_file():
        hint = " (it is a directory)" if path.is_dir() else ""
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist{hint}")
    try:
        with path.open("rb") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise DatasetError(
            f"{what} {str(path)!r} is not valid JSON: {err.msg} at line {err.lineno} "
            f"column {err.colno}"
        ) from None
    except UnicodeDecodeError as err:
        raise DatasetError(f"{what} {str(path)!r} is not UTF-8 JSON: {err.reason}") from None


def write_json(data: Any, path: str | Path) -> None:
    """Write compact JSON, byte-identical for equal data (no timestamps, fixed key order)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def content_digest(path: str | Path) -> str:
    """``sha256:`` and the first 16 hex digits of the SHA-256 of a file's bytes: what identifies
    a dataset file, wherever it lies and whenever it was written (COCO's 448 MB train
    annotations: about a second)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f"sha256:{h.hexdigest()[:16]}"


def load_annotations(path: str | Path, *, for_evaluation: bool = False) -> dict[str, Any]:
    """Read and validate a COCO annotation file; returns the parsed dict unchanged.

    With ``for_evaluation`` every annotation must also carry ``area`` and ``iscrowd``, which
    COCOeval reads and which it would otherwise fail on with a bare ``KeyError``.
    """
    data = read_json(path, "annotation file")
    validate_annotations(data, str(path), for_evaluation=for_evaluation)
    return data


def validate_annotations(data: Any, source: str, *, for_evaluation: bool = False) -> None:
    """Raise ``DatasetError`` naming the first bad entry of a COCO annotation dict."""
    if not isinstance(data, dict):
        raise DatasetError(
            f"{source} must hold a JSON object with 'images', 'annotations' and 'categories' "
            f"(COCO instances format), found a {type(data).__name__}"
        )
    for section, keys in REQUIRED_KEYS.items():
        entries = data.get(section)
        if not isinstance(entries, list):
            found = "nothing" if entries is None else f"a {type(entries).__name__}"
            raise DatasetError(
                f"{source}: '{section}' must be a list (COCO instances format), found {found}"
            )
        needed = keys + EVALUATION_KEYS if section == "annotations" and for_evaluation else keys
        for i, entry in enumerate(entries):
            missing = [k for k in needed if not isinstance(entry, dict) or k not in entry]
            if missing:
                raise DatasetError(
                    f"{source}: {section}[{i}] lacks {', '.join(map(repr, missing))}; each entry "
                    f"needs {', '.join(needed)}"
                )
    image_ids = _unique_ids(data["images"], "images", source)
    category_ids = _unique_ids(data["categories"], "categories", source)
    _unique_ids(data["annotations"], "annotations", source)
    for image in data["images"]:
        w, h = image["width"], image["height"]
        if not (is_int(w) and is_int(h) and w > 0 and h > 0):
            raise DatasetError(
                f"{source}: image {image['id']} ({image['file_name']!r}) has width {w!r} and "
                f"height {h!r}; both must be positive integers"
            )
    for ann in data["annotations"]:
        _check_annotation(ann, image_ids, category_ids, source, for_evaluation)


def _unique_ids(entries: list[dict], section: str, source: str) -> set[int]:
    ids: set[int] = set()
    for entry in entries:
        i = entry["id"]
        if not is_int(i):
            raise DatasetError(f"{source}: {section} id {i!r} is not an integer")
        if i in ids:
            raise DatasetError(f"{source}: {section} id {i} appears twice; ids must be unique")
        ids.add(i)
    return ids


def _check_annotation(
    ann: dict, image_ids: set[int], category_ids: set[int], source: str, for_evaluation: bool
) -> None:
    where = f"{source}: annotation {ann['id']}"
    if ann["image_id"] not in image_ids:
        raise DatasetError(
            f"{where} points at image_id {ann['image_id']!r}, which is not among the file's "
            f"{len(image_ids)} images; the image entry is missing from 'images'"
        )
    if ann["category_id"] not in category_ids:
        raise DatasetError(
            f"{where} has category_id {ann['category_id']!r}, which is not among the "
            f"categories {sorted(category_ids)}"
        )
    bbox = ann["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(is_number, bbox))):
        raise DatasetError(f"{where} has bbox {bbox!r}; expected [x, y, width, height] numbers")
    if for_evaluation:
        if not is_number(ann["area"]):
            raise DatasetError(f"{where} has area {ann['area']!r}; expected a number")
        if ann["iscrowd"] not in (0, 1):
            raise DatasetError(f"{where} has iscrowd {ann['iscrowd']!r}; expected 0 or 1")


@dataclass(frozen=True)
class LabelMap:
    """Contiguous training labels ``0..K-1`` <-> COCO category ids, in increasing id order.

    COCO's 80 categories have ids 1..90 with gaps; the model predicts ``K`` contiguous labels.
    Sorting by id gives mmdetection's order (``CocoDataset.cat2label``).
    """

    category_ids: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def from_categories(cls, categories: Iterable[dict[str, Any]]) -> LabelMap:
        cats = sorted(categories, key=lambda c: c["id"])
        return cls(tuple(c["id"] for c in cats), tuple(str(c["name"]) for c in cats))

    def __post_init__(self) -> None:
        if len(self.names) != len(self.category_ids):
            raise ValueError(
                f"{len(self.category_ids)} category ids but {len(self.names)} names; give one "
                "name per id"
            )
        if list(self.category_ids) != sorted(set(self.category_ids)):
            raise ValueError(
                f"category ids {list(self.category_ids)} must be unique and increasing"
            )

    def __len__(self) -> int:
        return len(self.category_ids)

    @cached_property
    def _index(self) -> dict[int, int]:
        return {c: i for i, c in enumerate(self.category_ids)}

    def to_labels(self, category_ids: Sequence[int]) -> list[int]:
        """COCO category ids -> contiguous labels."""
        index = self._index
        unknown = sorted({c for c in category_ids if c not in index})
        if unknown:
            raise ValueError(
                f"category ids {unknown} are not in this label map (ids {list(self.category_ids)})"
            )
        return [index[c] for c in category_ids]

    def to_category_ids(self, labels: Sequence[int]) -> list[int]:
        """Contiguous labels -> COCO category ids."""
        bad = sorted({int(label) for label in labels if not 0 <= label < len(self)})
        if bad:
            raise ValueError(f"labels {bad} are outside 0..{len(self) - 1} for {len(self)} classes")
        return [self.category_ids[label] for label in labels]


# the layouts of a data root: (split name -> (annotation file, image folder)), in order of
# preference: the embedded synthetic set, then COCO 2017
ROOT_LAYOUTS: tuple[dict[str, tuple[str, str]], ...] = (
    {"train": ("annotations/instances_train.json", "train"),
     "val": ("annotations/instances_val.json", "val")},
    {"train": ("annotations/instances_train2017.json", "train2017"),
     "val": ("annotations/instances_val2017.json", "val2017")},
)  # fmt: skip


def root_files(root: str | Path, fix: str) -> dict[str, tuple[Path, Path]]:
    """``{"train": (annotation file, image folder), "val": (...)}`` of a data root, by the
    first layout whose train annotations exist; FileNotFoundError otherwise, ending in ``fix``
    (what the caller's configuration offers instead)."""
    root = Path(root)
    for layout in ROOT_LAYOUTS:
        if (root / layout["train"][0]).is_file():
            return {split: (root / ann, root / images) for split, (ann, images) in layout.items()}
    expected = " or ".join(f"{ann} with {images}/" for ann, images in
                           (layout["train"] for layout in ROOT_LAYOUTS))  # fmt: skip
    raise FileNotFoundError(
        f"data root {str(root)!r} has no train annotations: expected {expected}; or {fix}"
    )


def image_path(image_dir: str | Path, file_name: str) -> Path:
    """Where an image entry's file lives (COCO ``file_name`` is relative to the image folder)."""
    return Path(image_dir) / file_name


def coco_index(data: dict[str, Any]) -> COCO:
    """A pycocotools ``COCO`` over an already loaded annotation dict, without its prints."""
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco
