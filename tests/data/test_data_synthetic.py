"""The synthetic dataset: COCO format, byte-identical per seed, its content, the embedded cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_helpers import write_tiny_synth
from PIL import Image

from nasfpn.data import CLASSES, CocoDetection, embedded_dataset, load_annotations, write_synthetic
from nasfpn.data import synthetic as synthetic_module
from nasfpn.data.synthetic import cache_root, draw_image, embedded_name


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_synth(tmp_path_factory.mktemp("synth"))


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_layout_and_coco_format(synth: Path) -> None:
    assert sorted(p.name for p in synth.iterdir()) == ["annotations", "train", "val"]
    train = load_annotations(synth / "annotations/instances_train.json", for_evaluation=True)
    val = load_annotations(synth / "annotations/instances_val.json", for_evaluation=True)
    assert len(train["images"]) == 12 and len(val["images"]) == 6
    assert {"info", "licenses", "images", "annotations", "categories"} <= set(train)
    ids = [c["id"] for c in train["categories"]]
    assert ids == [c.id for c in CLASSES] and ids != list(range(1, len(ids) + 1))  # gaps
    image = train["images"][0]
    assert image["file_name"] == "000000000001.jpg"
    with Image.open(synth / "train" / image["file_name"]) as f:
        assert f.size == (image["width"], image["height"])
        assert max(f.size) == 128
    for ann in train["annotations"]:
        _, _, w, h = ann["bbox"]
        assert w >= 1 and h >= 1 and 0 < ann["area"] <= w * h
    # val image ids do not collide with train's
    assert not {i["id"] for i in train["images"]} & {i["id"] for i in val["images"]}
    assert "date" not in json.dumps(train["info"])  # nothing that changes between runs


def test_byte_identical_for_a_seed_whatever_the_workers(tmp_path: Path, synth: Path) -> None:
    write_synthetic(tmp_path / "a", train=12, val=6, size=128, seed=0, workers=2)
    assert _files(tmp_path / "a") == _files(synth)
    write_synthetic(tmp_path / "b", train=12, val=6, size=128, seed=1, workers=0)
    assert _files(tmp_path / "b") != _files(synth)


def test_objects_span_coco_scales_crowds_and_classes() -> None:
    areas, crowd, labels = [], 0, set()
    for index in range(100):
        _, anns = draw_image(0, 0, index)  # the default size, 192 px
        for ann in anns:
            crowd += ann["iscrowd"]
            if not ann["iscrowd"]:
                areas.append(ann["area"])
                labels.add(ann["label"])
    a = np.asarray(areas)
    small, large = (a < 32**2).mean(), (a > 96**2).mean()
    assert 0.15 < small < 0.35 and 0.07 < large < 0.25 and 1 - small - large > 0.45
    assert crowd >= 1 and labels == set(range(len(CLASSES)))
    assert 2 < len(areas) / 100 < 4  # objects per image


def test_boxes_are_the_visible_extent() -> None:
    # draw_image's boxes are tight around the visible pixels of each object, so they lie in
    # the image and no two objects of one image share a box exactly
    for index in range(10):
        image, anns = draw_image(3, 0, index, size=128)
        h, w = image.shape[:2]
        for ann in anns:
            x, y, bw, bh = ann["bbox"]
            assert min(x, y) >= 0 and x + bw <= w and y + bh <= h


def test_loads_as_a_dataset(synth: Path) -> None:
    ds = CocoDetection(synth / "annotations/instances_train.json", synth / "train")
    assert ds.num_classes == len(CLASSES) and len(ds) == 12
    assert ds[0].image.shape[0] == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train": -1}, "--train -1 must be 0 or more"),
        ({"train": 0, "val": 0}, "would write no images"),
        ({"size": 32}, "--size 32 is too small"),
        ({"seed": -2}, "--seed -2 must be 0 or a positive integer"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_synthetic(tmp_path / "x", **{"train": 2, "val": 1, "workers": 0, **kwargs})
    assert not (tmp_path / "x").exists()


def test_refuses_a_non_empty_output(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists and is not an empty folder"):
        write_synthetic(tmp_path / "x", train=1, val=1, workers=0)
    (tmp_path / "x" / "keep.txt").unlink()
    write_synthetic(tmp_path / "x", train=1, val=1, size=64, workers=0)  # an empty one is fine
    assert (tmp_path / "x" / "annotations" / "instances_val.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["x"]  # no temporary folder left
    assert (tmp_path / "x").stat().st_mode & 0o777 == 0o755


def test_embedded_dataset_is_generated_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(synthetic_module, "EMBEDDED", {"train": 3, "val": 2, "size": 64, "seed": 0})
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))
    assert cache_root() == tmp_path / "cache"
    path = embedded_dataset(workers=0)
    assert path == tmp_path / "cache" / embedded_name()
    assert embedded_name() == "synthetic-v2-s64-train3-val2-seed0"
    stamp = (path / "annotations/instances_train.json").stat().st_mtime_ns
    assert embedded_dataset(workers=0) == path  # cached: not written again
    assert (path / "annotations/instances_train.json").stat().st_mtime_ns == stamp
    assert embedded_dataset(tmp_path / "other", workers=0) == tmp_path / "other" / embedded_name()


def test_embedded_dataset_unwritable_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(synthetic_module, "EMBEDDED", {"train": 1, "val": 1, "size": 64, "seed": 0})
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=r"could not write the embedded dataset .* NASFPN_CACHE"):
        embedded_dataset(blocker, workers=0)


def test_default_cache_root(monkeypatch) -> None:
    monkeypatch.delenv("NASFPN_CACHE", raising=False)
    assert cache_root() == Path.home() / ".cache" / "nasfpn"


def test_embedded_dataset_race(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(synthetic_module, "EMBEDDED", {"train": 1, "val": 1, "size": 64, "seed": 0})
    path = tmp_path / embedded_name()

    def other_process_wins(out, **kwargs):
        (Path(out) / "annotations").mkdir(parents=True)
        (Path(out) / "annotations" / "instances_val.json").write_text("{}")
        raise ValueError("already exists")

    monkeypatch.setattr(synthetic_module, "write_synthetic", other_process_wins)
    assert embedded_dataset(tmp_path) == path


def test_embedded_dataset_refuses_a_foreign_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(synthetic_module, "EMBEDDED", {"train": 1, "val": 1, "size": 64, "seed": 0})
    (tmp_path / embedded_name()).mkdir()
    (tmp_path / embedded_name() / "stray.txt").write_text("x")
    with pytest.raises(ValueError, match="already exists and is not an empty folder"):
        embedded_dataset(tmp_path, workers=0)


def test_unknown_shape_kind() -> None:
    with pytest.raises(ValueError, match="unknown shape kind 'blob2'"):
        synthetic_module._mask("blob2", np.zeros((2, 2)), np.zeros((2, 2)), 0.5)


def test_a_failed_run_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic_module, "_write_into", fail)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic(tmp_path / "x", train=1, val=1, workers=0)
    assert list(tmp_path.iterdir()) == []
