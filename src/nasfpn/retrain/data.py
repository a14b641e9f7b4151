"""Training and validation data of a retraining run, sharded over the training processes.

Datasets, transforms and the padding collate are :mod:`nasfpn.data`'s; what is added here is
the split of every epoch's shuffled order over ``world_size`` processes (each takes every
``world_size``-th key of the same permutation, as torch's ``DistributedSampler`` does), and the
split of the val images for evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import DataLoader

from nasfpn.data import (
    CocoDetection,
    PadCollate,
    TestTransform,
    TrainSampler,
    TrainTransform,
    embedded_dataset,
)
from nasfpn.retrain.config import DataConfig

# (train annotations, train images, val annotations, val images) a data root may hold
LAYOUTS = (
    ("annotations/instances_train.json", "train", "annotations/instances_val.json", "val"),
    (
        "annotations/instances_train2017.json",
        "train2017",
        "annotations/instances_val2017.json",
        "val2017",
    ),
)


@dataclass(frozen=True)
class RetrainFiles:
    train_annotations: Path
    train_images: Path
    val_annotations: Path
    val_images: Path


def resolve_files(cfg: DataConfig) -> RetrainFiles:
    """The annotation files and image folders, from explicit paths or the data root."""
    explicit = (cfg.train_annotations, cfg.train_images, cfg.val_annotations, cfg.val_images)
    found: tuple[str | Path | None, ...] = (None,) * 4
    if not all(explicit):
        root = Path(cfg.root).expanduser() if cfg.root is not None else embedded_dataset()
        for layout in LAYOUTS:
            if (root / layout[0]).is_file():
                found = tuple(root / p for p in layout)
                break
        else:
            expected = " or ".join(f"{a} with {i}/" for a, i, _, _ in LAYOUTS)
            raise FileNotFoundError(
                f"data root {str(root)!r} has no train annotations: expected {expected}; or "
                "set data.train_annotations, data.train_images, data.val_annotations and "
                "data.val_images"
            )
    return RetrainFiles(*(Path(e) if e else Path(f) for e, f in zip(explicit, found)))


def train_dataset(files: RetrainFiles, cfg: DataConfig) -> CocoDetection:
    transform = TrainTransform(cfg.train_size, cfg.ratio_range, cfg.flip_prob)
    return CocoDetection(files.train_annotations, files.train_images, transform,
                         filter_empty=cfg.filter_empty, min_size=cfg.min_size)  # fmt: skip


def val_dataset(files: RetrainFiles, cfg: DataConfig) -> CocoDetection:
    return CocoDetection(
        files.val_annotations, files.val_images, TestTransform(cfg.test_size, cfg.test_pad_divisor)
    )


class ShardedTrainSampler(TrainSampler):
    """:class:`~nasfpn.data.TrainSampler` keys for one of ``world_size`` processes.

    Every process draws the same ``(seed, epoch)`` permutation and keeps the keys at positions
    ``rank, rank + world_size, ...``, cut to the same length on every process, so together they
    see each image at most once per epoch and all take the same number of steps.
    """

    def __init__(self, length: int, seed: int, rank: int, world_size: int) -> None:
        super().__init__(length, seed, shuffle=True)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return self.length // self.world_size

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        keys = list(super().__iter__())[: len(self) * self.world_size]
        yield from keys[self.rank :: self.world_size]


def train_loader(
    dataset: CocoDetection,
    batch_size: int,
    *,
    seed: int,
    rank: int,
    world_size: int,
    workers: int,
    pin_memory: bool,
) -> DataLoader:
    """Full batches of this process's share (call ``loader.sampler.set_epoch(e)``)."""
    sampler = ShardedTrainSampler(len(dataset), seed, rank, world_size)
    if len(sampler) < batch_size:
        raise ValueError(
            f"the training set has {len(dataset)} images with boxes: {len(sampler)} per process "
            f"for {world_size} processes, fewer than batch_per_gpu={batch_size}; lower "
            "batch_per_gpu or use more data"
        )
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler,
        collate_fn=PadCollate(dataset.transform.padding), num_workers=workers,
        pin_memory=pin_memory, drop_last=True, persistent_workers=workers > 0,
    )  # fmt: skip


def val_loader(
    dataset: CocoDetection,
    batch_size: int,
    *,
    rank: int,
    world_size: int,
    limit: int | None,
    workers: int,
    pin_memory: bool,
) -> DataLoader:
    """This process's share of the (first ``limit``) val images, in file order."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    return DataLoader(
        dataset, batch_size=batch_size, sampler=list(range(rank, n, world_size)),
        collate_fn=PadCollate(dataset.transform.padding), num_workers=workers,
        pin_memory=pin_memory,
    )  # fmt: skip
