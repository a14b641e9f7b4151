"""Training and validation data of a retraining run, sharded over the training processes.

Datasets, transforms, loaders and the share of each process (``rank``/``world_size``, see
:class:`nasfpn.data.TrainSampler`) are :mod:`nasfpn.data`'s; what is added here is where the
files are and the checks that speak in the recipe's keys, and the configuration's identity
(:func:`config_hash`: the data and weights by their content, never by their paths).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from nasfpn import config as config_io
from nasfpn.data import (
    CocoDetection,
    TestTransform,
    TrainTransform,
    build_loader,
    content_digest,
    embedded_dataset,
    root_files,
)
from nasfpn.retrain.config import DataConfig, RetrainConfig


@dataclass(frozen=True)
class RetrainFiles:
    train_annotations: Path
    train_images: Path
    val_annotations: Path
    val_images: Path


def resolve_files(cfg: DataConfig) -> RetrainFiles:
    """The annotation files and image folders, from explicit paths or the data root."""
    explicit = (cfg.train_annotations, cfg.train_images, cfg.val_annotations, cfg.val_images)
    if all(explicit):
        return RetrainFiles(*(Path(e) for e in explicit))
    root = Path(cfg.root).expanduser() if cfg.root is not None else embedded_dataset()
    fix = ("set data.train_annotations, data.train_images, data.val_annotations and "
           "data.val_images")  # fmt: skip
    files = root_files(root, fix)
    found = (*files["train"], *files["val"])
    return RetrainFiles(*(Path(e) if e else f for e, f in zip(explicit, found)))


def identity(cfg: RetrainConfig) -> dict[str, Any]:
    """What a retraining's result depends on: every setting, with the data named by the content
    of its annotation files and the backbone weights by theirs, instead of paths (the image
    folders leave it: the annotation files name the images). Equal for the same recipe on the
    same data regenerated or copied elsewhere; ``nasfpn fidelity --reuse`` matches on it."""
    files = resolve_files(cfg.data)
    values = config_io.to_dict(cfg)
    values["data"].update(root=None, train_images=None, val_images=None,
                          train_annotations=content_digest(files.train_annotations),
                          val_annotations=content_digest(files.val_annotations))  # fmt: skip
    weights = cfg.model.pretrained
    if weights and Path(weights).is_file():
        values["model"]["pretrained"] = content_digest(weights)
    return values


def config_hash(cfg: RetrainConfig) -> str:
    """The short hash of :func:`identity`."""
    return config_io.config_hash(identity(cfg))


def train_dataset(files: RetrainFiles, cfg: DataConfig) -> CocoDetection:
    transform = TrainTransform(cfg.train_size, cfg.ratio_range, cfg.flip_prob)
    return CocoDetection(files.train_annotations, files.train_images, transform,
                         filter_empty=cfg.filter_empty, min_size=cfg.min_size)  # fmt: skip


def val_dataset(files: RetrainFiles, cfg: DataConfig) -> CocoDetection:
    return CocoDetection(
        files.val_annotations, files.val_images, TestTransform(cfg.test_size, cfg.test_pad_divisor)
    )


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
    loader = build_loader(dataset, batch_size, train=True, seed=seed, workers=workers,
                          pin_memory=pin_memory, rank=rank, world_size=world_size)  # fmt: skip
    if len(loader.sampler) < batch_size:
        raise ValueError(
            f"the training set has {len(dataset)} images with boxes: {len(loader.sampler)} per "
            f"process for {world_size} processes, fewer than batch_per_gpu={batch_size}; lower "
            "batch_per_gpu or use more data"
        )
    return loader


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
    return build_loader(dataset, batch_size, train=False, workers=workers,
                        pin_memory=pin_memory, rank=rank, world_size=world_size,
                        limit=limit)  # fmt: skip
