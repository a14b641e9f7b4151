"""A detection dataset over a COCO directory: an annotation JSON plus an image folder."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from nasfpn.data.annotations import (
    DatasetError,
    LabelMap,
    coco_index,
    image_path,
    load_annotations,
)
from nasfpn.data.transforms import ImageMeta, Sample

# a dataset key: an index, or (index, seed, epoch) from TrainSampler for per-sample randomness
Key = int | tuple[int, int, int]
Transform = Callable[[Sample, np.random.Generator], Sample]


class DegenerateBoxWarning(UserWarning):
    """Annotations whose boxes cannot be trained on were left out (one warning per file)."""


class CocoDetection(Dataset):
    """Images and training targets from a COCO annotation file and its image folder.

    Targets follow mmdetection ``CocoDataset._parse_ann_info``: boxes ``[x, y, w, h]`` become
    x1y1x2y2 (clipped to the image); crowd regions (``iscrowd=1``) are left out of the targets
    (RetinaNet does not train on them; COCOeval ignores detections on them); *degenerate*
    boxes (width or height below 1 px, area not positive, or no overlap with the image) are
    dropped, counted in one :class:`DegenerateBoxWarning`. Category ids become contiguous
    labels through :attr:`label_map`.

    ``filter_empty`` drops images left without boxes and ``min_size`` images whose short side is
    smaller (mmdetection trains with ``filter_empty_gt=True`` and ``min_size=32``; it evaluates
    on every image). Every image file is checked to exist when the dataset is built.

    ``dataset[i]`` is a :class:`~nasfpn.data.transforms.Sample`; ``dataset[(i, seed, epoch)]``
    draws the transform's randomness from a generator seeded by ``(seed, epoch, i)``.
    """

    def __init__(
        self,
        annotations: str | Path,
        images: str | Path,
        transform: Transform | None = None,
        *,
        filter_empty: bool = False,
        min_size: int = 0,
    ) -> None:
        self.annotation_file = Path(annotations)
        self.image_dir = Path(images)
        self.transform = transform
        data = load_annotations(self.annotation_file)
        self.label_map = LabelMap.from_categories(data["categories"])
        coco = coco_index(data)
        ids, files, sizes, boxes, labels, degenerate = [], [], [], [], [], 0
        for image_id, info in coco.imgs.items():
            w, h = info["width"], info["height"]
            b, c, bad = _targets(coco.imgToAnns.get(image_id, []), w, h)
            degenerate += bad
            if (filter_empty and not len(b)) or min(w, h) < min_size:
                continue
            ids.append(image_id)
            files.append(info["file_name"])
            sizes.append((h, w))
            boxes.append(b)
            labels.append(self.label_map.to_labels(c))
        if degenerate:
            warnings.warn(
                f"{degenerate} degenerate boxes (width or height < 1 px, area <= 0, or outside "
                f"the image) in {str(self.annotation_file)!r} were left out of the targets",
                DegenerateBoxWarning,
                stacklevel=2,
            )
        _check_files(self.image_dir, files, ids, self.annotation_file)
        # compact arrays rather than per-image Python objects: DataLoader workers share them
        self.image_ids = np.asarray(ids, dtype=np.int64)
        self._files = np.asarray(files, dtype=np.str_)
        self._sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        self._offsets = np.cumsum([0] + [len(b) for b in boxes])
        self._boxes = np.concatenate(boxes or [np.zeros((0, 4))]).astype(np.float32).reshape(-1, 4)
        self._labels = np.asarray([x for lab in labels for x in lab], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def num_classes(self) -> int:
        return len(self.label_map)

    def image_file(self, index: int) -> Path:
        return image_path(self.image_dir, str(self._files[index]))

    def raw(self, index: int) -> Sample:
        """Image ``index`` as stored, with its targets, before any transform."""
        path = self.image_file(index)
        try:
            # PIL rather than torchvision.io, whose decoders are deprecated since 0.29
            with Image.open(path) as file:
                pixels = np.array(file.convert("RGB"))  # writable, owned by torch below
        except (OSError, ValueError) as err:
            raise DatasetError(
                f"cannot read image {str(path)!r} (listed in {str(self.annotation_file)!r}): "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
            ) from None
        image = torch.from_numpy(pixels).permute(2, 0, 1)  # (h, w, 3) -> (3, h, w), a view
        h, w = (int(x) for x in self._sizes[index])
        if tuple(image.shape[-2:]) != (h, w):
            raise DatasetError(
                f"image {str(path)!r} is {image.shape[-2]}x{image.shape[-1]} (h x w) but "
                f"{str(self.annotation_file)!r} says {h}x{w}; fix its width/height entry"
            )
        lo, hi = self._offsets[index], self._offsets[index + 1]
        meta = ImageMeta(int(self.image_ids[index]), (h, w), (h, w))
        boxes = torch.from_numpy(self._boxes[lo:hi].copy())
        return Sample(image, boxes, torch.from_numpy(self._labels[lo:hi].copy()), meta)

    def __getitem__(self, key: Key) -> Sample:
        index, seed, epoch = (key, 0, 0) if isinstance(key, int | np.integer) else key
        sample = self.raw(int(index))
        if self.transform is None:
            return sample
        return self.transform(sample, np.random.default_rng((seed, epoch, int(index))))


def _targets(anns: list[dict], w: int, h: int) -> tuple[np.ndarray, list[int], int]:
    """Training boxes (x1y1x2y2, clipped), their category ids, and how many were degenerate."""
    boxes, cats, bad = [], [], 0
    for ann in anns:
        if ann.get("iscrowd", 0) or ann.get("ignore", False):
            continue
        x, y, bw, bh = ann["bbox"]
        x1, y1 = max(x, 0.0), max(y, 0.0)
        x2, y2 = min(x + bw, w), min(y + bh, h)
        if bw < 1 or bh < 1 or ann.get("area", 1) <= 0 or x2 <= x1 or y2 <= y1:
            bad += 1
            continue
        boxes.append((x1, y1, x2, y2))
        cats.append(ann["category_id"])
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4), cats, bad


def _check_files(image_dir: Path, files: list[str], ids: list[int], annotations: Path) -> None:
    """Raise naming the first image of ``annotations`` whose file is not in ``image_dir``."""
    if not image_dir.is_dir():
        raise FileNotFoundError(
            f"image folder {str(image_dir)!r} (for {str(annotations)!r}) does not exist"
        )
    listings: dict[Path, set[str]] = {}
    missing = []
    for image_id, name in zip(ids, files):
        path = image_path(image_dir, name)
        if path.parent not in listings:
            try:
                listings[path.parent] = set(os.listdir(path.parent))
            except OSError:
                listings[path.parent] = set()
        if path.name not in listings[path.parent]:
            missing.append((image_id, name))
    if missing:
        image_id, name = missing[0]
        more = f" ({len(missing) - 1} more images are missing too)" if len(missing) > 1 else ""
        raise DatasetError(
            f"image {name!r} (id {image_id}) listed in {str(annotations)!r} is not in "
            f"{str(image_dir)!r}{more}; check the image folder"
        )
