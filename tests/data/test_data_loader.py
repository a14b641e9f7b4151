"""Loader: padding collate, the seeded sampler, determinism across workers, builder errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from data_helpers import write_tiny_synth

from nasfpn.data import (
    Batch,
    CocoDetection,
    ImageMeta,
    PadCollate,
    Padding,
    Sample,
    TestTransform,
    TrainSampler,
    TrainTransform,
    build_loader,
    normalize,
)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_synth(tmp_path_factory.mktemp("synth"))


def _sample(h: int, w: int, value: int, boxes: list[list[float]]) -> Sample:
    image = torch.full((3, h, w), value, dtype=torch.uint8)
    b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return Sample(image, b, torch.zeros(len(b), dtype=torch.int64), ImageMeta(h, (h, w), (h, w)))


def test_collate_pads_bottom_right_after_normalising() -> None:
    samples = [_sample(40, 70, 200, [[1, 2, 3, 4]]), _sample(130, 20, 0, [])]
    batch = PadCollate(Padding(divisor=64))(samples)
    assert batch.images.shape == (2, 3, 192, 128) and batch.images.dtype == torch.float32
    assert torch.equal(batch.images[0, :, :40, :70], normalize(samples[0].image))
    assert batch.images[0, :, 40:].abs().sum() == 0 and batch.images[0, :, :, 70:].abs().sum() == 0
    assert torch.equal(batch.images[1, :, :130, :20], normalize(samples[1].image))
    assert batch.targets[0]["boxes"].tolist() == [[1, 2, 3, 4]]
    assert batch.targets[1]["boxes"].shape == (0, 4)
    assert batch.targets[1]["labels"].dtype == torch.int64
    assert batch.image_sizes == [(40, 70), (130, 20)] and len(batch) == 2


def test_collate_fixed_size() -> None:
    batch = PadCollate(Padding(size=(64, 64)))([_sample(38, 64, 9, []), _sample(64, 50, 9, [])])
    assert batch.images.shape == (2, 3, 64, 64)


def test_batch_to_and_pin_memory() -> None:
    batch = PadCollate()([_sample(4, 4, 1, [[0, 0, 1, 1]])])
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and torch.equal(moved.images, batch.images)
    assert moved.metas == batch.metas
    if torch.cuda.is_available():  # pinning needs a CUDA runtime
        assert batch.pin_memory().images.is_pinned()


def test_sampler_is_a_seeded_permutation_per_epoch() -> None:
    sampler = TrainSampler(10, seed=3)
    first = list(sampler)
    assert sorted(i for i, _, _ in first) == list(range(10))
    assert all(seed == 3 and epoch == 0 for _, seed, epoch in first)
    assert list(TrainSampler(10, seed=3)) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert [i for i, _, _ in second] != [i for i, _, _ in first]
    assert {epoch for _, _, epoch in second} == {1}
    assert [i for i, _, _ in TrainSampler(5, shuffle=False)] == [0, 1, 2, 3, 4]
    assert len(sampler) == 10


def test_sampler_shares_for_several_processes() -> None:
    whole = [i for i, _, _ in TrainSampler(11, seed=3)]
    shares = [[i for i, _, _ in TrainSampler(11, seed=3, rank=r, world_size=3)] for r in range(3)]
    # training: every process takes every 3rd key of the same order, cut to equal length
    assert shares == [whole[0:9:3], whole[1:9:3], whole[2:9:3]]
    assert [len(TrainSampler(11, rank=r, world_size=3)) for r in range(3)] == [3, 3, 3]
    # test: file order, every image once, shares may differ by one
    tests = [[i for i, _, _ in TrainSampler(11, shuffle=False, rank=r, world_size=3)]
             for r in range(3)]  # fmt: skip
    assert tests == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert [len(TrainSampler(11, shuffle=False, rank=r, world_size=3)) for r in range(3)] == [
        4, 4, 3]  # fmt: skip
    with pytest.raises(ValueError, match=r"rank 3 must be in \[0, world_size=3\)"):
        TrainSampler(11, rank=3, world_size=3)


def _train_set(synth: Path) -> CocoDetection:
    return CocoDetection(
        synth / "annotations/instances_train.json",
        synth / "train",
        TrainTransform(96),
        filter_empty=True,
    )


def _batches(loader, epoch: int) -> list[Batch]:
    loader.sampler.set_epoch(epoch)
    return list(loader)


def test_same_seed_same_batches_with_or_without_workers(synth: Path) -> None:
    in_process = build_loader(_train_set(synth), 4, train=True, seed=7, workers=0)
    with_worker = build_loader(_train_set(synth), 4, train=True, seed=7, workers=1)
    for epoch in (0, 1):
        a, b = _batches(in_process, epoch), _batches(with_worker, epoch)
        # the images with boxes (10 of the 12 of the tiny set), in full batches of 4
        assert len(a) == len(b) == len(in_process) == len(in_process.dataset) // 4 >= 2
        for x, y in zip(a, b):
            assert torch.equal(x.images, y.images) and x.metas == y.metas
            for tx, ty in zip(x.targets, y.targets):
                assert torch.equal(tx["boxes"], ty["boxes"])
    # another epoch, another seed: other batches
    assert _batches(in_process, 0)[0].metas != _batches(in_process, 1)[0].metas
    other = build_loader(_train_set(synth), 4, train=True, seed=8, workers=0)
    assert _batches(other, 0)[0].metas != _batches(in_process, 0)[0].metas


def test_training_batches_are_ready_for_the_model(synth: Path) -> None:
    batch = next(iter(build_loader(_train_set(synth), 4, train=True, workers=0)))
    assert batch.images.shape == (4, 3, 96, 96)
    for target, meta in zip(batch.targets, batch.metas):
        boxes = target["boxes"]
        h, w = meta.size
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (boxes[:, [0, 2]] <= w).all() and (boxes[:, [1, 3]] <= h).all()
        assert target["labels"].max() < 8


def test_test_loader_keeps_order_and_every_image(synth: Path) -> None:
    ds = CocoDetection(
        synth / "annotations/instances_val.json", synth / "val", TestTransform(100, 64)
    )
    batches = list(build_loader(ds, 4, train=False, workers=0))
    assert [len(b) for b in batches] == [4, 2]
    ids = [m.image_id for b in batches for m in b.metas]
    assert ids == ds.image_ids.tolist()
    assert batches[0].images.shape[-2:] == (128, 128)  # long side 100 -> padded to 128
    # this process's share of the first 5 images (of 6), as a 2-process evaluation splits them
    share = list(build_loader(ds, 4, train=False, workers=0, rank=1, world_size=2, limit=5))
    assert [m.image_id for b in share for m in b.metas] == ds.image_ids.tolist()[1:5:2]


def test_build_loader_errors(synth: Path) -> None:
    ds = _train_set(synth)
    with pytest.raises(ValueError, match="batch_size 0 must be 1 or more"):
        build_loader(ds, 0, train=True)
    with pytest.raises(ValueError, match="workers -1 must be 0"):
        build_loader(ds, 2, train=True, workers=-1)
