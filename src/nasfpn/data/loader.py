"""Batches ready for the model: a seeded sampler, a padding collate, and DataLoader builders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from nasfpn.data.transforms import MEAN, STD, ImageMeta, Padding, Sample


@dataclass
class Batch:
    """``images`` ``(N, 3, H, W)`` float32, normalised, zero-padded bottom/right; ``targets``
    ``[{"boxes": (G, 4) x1y1x2y2, "labels": (G,) int64}]`` in the padded image's pixels (the
    input of ``RetinaNet.loss``); ``metas`` map detections back to the image files."""

    images: Tensor
    targets: list[dict[str, Tensor]]
    metas: list[ImageMeta]

    def __len__(self) -> int:
        return len(self.metas)

    @property
    def image_sizes(self) -> list[tuple[int, int]]:
        """Unpadded ``(h, w)`` per image: what ``RetinaNet.detect`` clips boxes to."""
        return [m.size for m in self.metas]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        move = {"device": device, "non_blocking": non_blocking}
        return Batch(
            self.images.to(**move),
            [{k: v.to(**move) for k, v in t.items()} for t in self.targets],
            self.metas,
        )

    def pin_memory(self) -> Batch:
        """Called by ``DataLoader(pin_memory=True)`` for a faster copy to the GPU."""
        return Batch(
            self.images.pin_memory(),
            [{k: v.pin_memory() for k, v in t.items()} for t in self.targets],
            self.metas,
        )


class PadCollate:
    """Samples -> :class:`Batch`: normalise each uint8 image and pad the batch bottom/right
    with zeros after normalisation (mmdetection ``Normalize`` then ``Pad``)."""

    def __init__(self, padding: Padding | None = None, mean=MEAN, std=STD) -> None:
        self.padding = padding or Padding()
        # (x - mean) * (1 / std), as mmcv imnormalize computes it (and transforms.normalize)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.inv_std = (1 / torch.tensor(std, dtype=torch.float64)).float().view(3, 1, 1)

    def __call__(self, samples: list[Sample]) -> Batch:
        sizes = [tuple(s.image.shape[-2:]) for s in samples]
        h, w = self.padding.padded_size(sizes)
        images = torch.empty(len(samples), 3, h, w)
        if get_worker_info() is not None:
            # in a worker process, build the batch in shared memory: sending it to the main
            # process then needs no extra copy (as torch's default_collate does)
            images.share_memory_()
        images.zero_()
        for i, s in enumerate(samples):
            ih, iw = sizes[i]
            images[i, :, :ih, :iw].copy_(s.image).sub_(self.mean).mul_(self.inv_std)
        targets = [{"boxes": s.boxes.float(), "labels": s.labels.long()} for s in samples]
        return Batch(images, targets, [s.meta for s in samples])


class TrainSampler(Sampler):
    """Yields ``(index, seed, epoch)`` keys in a shuffled order fixed by ``(seed, epoch)``.

    The dataset seeds each sample's augmentation from its key, so a batch depends only on the
    seed, the epoch and its position, never on which worker process drew it. Call
    :meth:`set_epoch` before each epoch (it lives in the main process, so persistent workers
    see it).

    With ``world_size`` > 1 this process (``rank``) takes the keys at positions ``rank, rank +
    world_size, ...`` of the same order, as torch's ``DistributedSampler`` does. Shuffled
    (training) shares are cut to the same length on every process, so all take the same number
    of steps; unshuffled (test) shares keep every image.
    """

    def __init__(
        self, length: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} must be in [0, world_size={world_size})")
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Take the order of ``epoch`` from its ``start``-th key of this process's share on
        (a run resumed part way through an epoch; the keys skipped are never loaded)."""
        if not 0 <= start <= len(self):
            raise ValueError(f"start={start} must be in [0, {len(self)}] (this share's length)")
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        if self.shuffle:
            return self.length // self.world_size
        return len(range(self.rank, self.length, self.world_size))

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(self.length)
            order = order[: len(self) * self.world_size]
        else:
            order = np.arange(self.length)
        for i in order[self.rank :: self.world_size][self.start :]:
            yield int(i), self.seed, self.epoch


def build_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    train: bool,
    seed: int = 0,
    workers: int = 2,
    pin_memory: bool = False,
    drop_last: bool | None = None,
    rank: int = 0,
    world_size: int = 1,
    limit: int | None = None,
) -> DataLoader:
    """A DataLoader of :class:`Batch` es for a dataset with a ``TrainTransform``/``TestTransform``.

    Training shuffles with :class:`TrainSampler` (call ``loader.sampler.set_epoch(e)``) and
    drops the last incomplete batch by default, so every step sees ``batch_size`` images; test
    loading keeps the file order and every image. Padding comes from
    ``dataset.transform.padding`` (``S x S`` in training, a multiple of 128 in test).
    ``rank``/``world_size`` give this process its share (:class:`TrainSampler`); ``limit``
    keeps the first ``limit`` images only.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} must be 1 or more")
    if workers < 0:
        raise ValueError(f"workers {workers} must be 0 (load in this process) or more")
    length = len(dataset) if limit is None else min(limit, len(dataset))
    padding = getattr(getattr(dataset, "transform", None), "padding", None)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=TrainSampler(length, seed, shuffle=train, rank=rank, world_size=world_size),
        collate_fn=PadCollate(padding),
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=train if drop_last is None else drop_last,
        persistent_workers=workers > 0,
    )
