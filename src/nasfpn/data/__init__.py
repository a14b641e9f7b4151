"""COCO-format detection data: annotation files, the dataset, transforms, loaders, splits and
the embedded synthetic dataset. Imports no other part of nasfpn (docs/architecture.md).

Names are imported from their modules on first use (PEP 562), so that ``nasfpn data synth``
and ``nasfpn data split``, which need only numpy, PIL and pycocotools, start without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "annotations": (
        "DatasetError",
        "LabelMap",
        "coco_index",
        "content_digest",
        "load_annotations",
        "read_json",
        "root_files",
        "validate_annotations",
        "write_json",
    ),
    "coco": ("CocoDetection", "DegenerateBoxWarning"),
    "loader": ("Batch", "PadCollate", "TrainSampler", "build_loader"),
    "split": ("DEFAULT_HOLDOUT", "Split", "split_annotations", "write_split"),
    "synthetic": ("CLASSES", "SynthSummary", "embedded_dataset", "write_synthetic"),
    "transforms": (
        "MEAN",
        "STD",
        "ImageMeta",
        "Padding",
        "Sample",
        "TestTransform",
        "TrainTransform",
        "boxes_from_original",
        "boxes_to_original",
        "normalize",
        "rescaled_size",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = [
    "CLASSES",
    "DEFAULT_HOLDOUT",
    "MEAN",
    "STD",
    "Batch",
    "CocoDetection",
    "DatasetError",
    "DegenerateBoxWarning",
    "ImageMeta",
    "LabelMap",
    "PadCollate",
    "Padding",
    "Sample",
    "Split",
    "SynthSummary",
    "TestTransform",
    "TrainSampler",
    "TrainTransform",
    "boxes_from_original",
    "boxes_to_original",
    "build_loader",
    "coco_index",
    "content_digest",
    "embedded_dataset",
    "load_annotations",
    "normalize",
    "read_json",
    "rescaled_size",
    "root_files",
    "split_annotations",
    "validate_annotations",
    "write_json",
    "write_split",
    "write_synthetic",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'nasfpn.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nasfpn.data.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from nasfpn.data.annotations import (
        DatasetError,
        LabelMap,
        coco_index,
        content_digest,
        load_annotations,
        read_json,
        root_files,
        validate_annotations,
        write_json,
    )
    from nasfpn.data.coco import CocoDetection, DegenerateBoxWarning
    from nasfpn.data.loader import Batch, PadCollate, TrainSampler, build_loader
    from nasfpn.data.split import DEFAULT_HOLDOUT, Split, split_annotations, write_split
    from nasfpn.data.synthetic import CLASSES, SynthSummary, embedded_dataset, write_synthetic
    from nasfpn.data.transforms import (
        MEAN,
        STD,
        ImageMeta,
        Padding,
        Sample,
        TestTransform,
        TrainTransform,
        boxes_from_original,
        boxes_to_original,
        normalize,
        rescaled_size,
    )
