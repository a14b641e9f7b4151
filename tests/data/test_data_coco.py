"""CocoDetection: targets, crowd and degenerate boxes, label mapping, missing and bad images."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from data_helpers import coco_dict, write_coco, write_tiny_synth

from nasfpn.data import CocoDetection, DatasetError, DegenerateBoxWarning, TestTransform


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_synth(tmp_path_factory.mktemp("synth"))


@pytest.fixture
def make_coco(tmp_path: Path):
    return lambda data, write_images=True: write_coco(tmp_path, data, write_images)


def test_targets_are_x1y1x2y2_with_contiguous_labels(make_coco) -> None:
    ann, images = make_coco(
        coco_dict(
            [(7, 64, 48)],
            [(7, 3, [4, 6, 10, 20], 0), (7, 1, [0, 0, 64, 48], 0), (7, 3, [50, 40, 30, 30], 0)],
        )
    )
    ds = CocoDetection(ann, images)
    sample = ds[0]
    assert sample.image.shape == (3, 48, 64) and sample.image.dtype == torch.uint8
    # the last box sticks out of the 64 x 48 image and is clipped to it
    expected = [[4, 6, 14, 26], [0, 0, 64, 48], [50, 40, 64, 48]]
    assert sample.boxes.tolist() == expected
    assert sample.labels.tolist() == [1, 0, 1]  # category 3 -> label 1, category 1 -> label 0
    assert sample.meta.image_id == 7 and sample.meta.original_size == (48, 64)
    assert ds.label_map.category_ids == (1, 3) and ds.num_classes == 2
    assert ds.image_ids.tolist() == [7]


def test_crowd_regions_are_not_targets(make_coco) -> None:
    ann, images = make_coco(
        coco_dict([(1, 32, 32)], [(1, 1, [1, 1, 8, 8], 1), (1, 3, [2, 2, 9, 9], 0)])
    )
    sample = CocoDetection(ann, images)[0]
    assert sample.boxes.tolist() == [[2, 2, 11, 11]]
    assert sample.labels.tolist() == [1]


def test_degenerate_boxes_dropped_with_one_warning(make_coco) -> None:
    data = coco_dict(
        [(1, 32, 32), (2, 32, 32)],
        [
            (1, 1, [1, 1, 0, 5], 0),  # zero width
            (1, 1, [1, 1, 5, -2], 0),  # negative height
            (2, 1, [1, 1, 0.5, 5], 0),  # below 1 px
            (2, 1, [40, 1, 5, 5], 0),  # outside the image
            (2, 3, [1, 1, 5, 5], 0),  # fine
            (2, 3, [1, 1, 5, 5], 0),  # fine, but area 0 below
        ],
    )
    data["annotations"][-1]["area"] = 0.0
    ann, images = make_coco(data)
    with pytest.warns(DegenerateBoxWarning) as record:
        ds = CocoDetection(ann, images)
    assert len(record) == 1
    assert str(record[0].message).startswith("5 degenerate boxes")
    assert str(ann) in str(record[0].message)
    assert ds[0].boxes.shape == (0, 4) and ds[1].boxes.tolist() == [[1, 1, 6, 6]]


def test_no_warning_without_degenerate_boxes(make_coco) -> None:
    ann, images = make_coco(coco_dict([(1, 32, 32)], [(1, 1, [1, 1, 5, 5], 0)]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CocoDetection(ann, images)


def test_filter_empty_and_min_size(make_coco) -> None:
    data = coco_dict(
        [(1, 64, 64), (2, 64, 64), (3, 64, 20), (4, 64, 64)],
        [(1, 1, [1, 1, 5, 5], 0), (3, 1, [1, 1, 5, 5], 0), (4, 1, [1, 1, 5, 5], 1)],
    )
    ann, images = make_coco(data)
    assert len(CocoDetection(ann, images)) == 4  # evaluation keeps every image
    kept = CocoDetection(ann, images, filter_empty=True, min_size=32)
    # 2 has no box, 3 is 20 px high, 4 has only a crowd region
    assert kept.image_ids.tolist() == [1]


def test_missing_image_names_image_and_annotation_file(make_coco) -> None:
    data = coco_dict([(1, 32, 32), (2, 32, 32), (3, 32, 32)], [(2, 1, [1, 1, 5, 5], 0)])
    ann, images = make_coco(data)
    (images / "0002.png").unlink()
    (images / "0003.png").unlink()
    with pytest.raises(DatasetError) as err:
        CocoDetection(ann, images)
    message = str(err.value)
    assert "'0002.png' (id 2)" in message and str(ann) in message and str(images) in message
    assert "1 more images are missing" in message


def test_missing_image_folder(make_coco, tmp_path: Path) -> None:
    ann, _ = make_coco(coco_dict([(1, 32, 32)], []))
    with pytest.raises(FileNotFoundError, match=r"image folder '.*nowhere' .* does not exist"):
        CocoDetection(ann, tmp_path / "nowhere")


def test_image_file_in_a_missing_subfolder(make_coco) -> None:
    data = coco_dict([(1, 32, 32)], [])
    data["images"][0]["file_name"] = "sub/0001.png"
    ann, images = make_coco(data, write_images=False)
    with pytest.raises(DatasetError, match=r"'sub/0001.png' .* is not in"):
        CocoDetection(ann, images)


def test_unreadable_image(make_coco) -> None:
    ann, images = make_coco(coco_dict([(1, 32, 32)], []))
    (images / "0001.png").write_bytes(b"not a png")
    ds = CocoDetection(ann, images)
    with pytest.raises(DatasetError, match=r"cannot read image '.*0001.png' \(listed in '.*'\)"):
        ds[0]


def test_image_size_must_match_the_annotations(make_coco) -> None:
    data = coco_dict([(1, 32, 32)], [])
    ann, images = make_coco(data)
    data["images"][0]["width"] = 40
    ann.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"is 32x32 \(h x w\) but .* says 32x40"):
        CocoDetection(ann, images)[0]


def test_transform_and_keys(synth: Path) -> None:
    ds = CocoDetection(synth / "annotations/instances_val.json", synth / "val", TestTransform(64))
    sample = ds[2]
    assert max(sample.image.shape[-2:]) == 64 and sample.meta.size == tuple(sample.image.shape[1:])
    # an (index, seed, epoch) key gives the same sample when the transform is not random
    assert torch.equal(ds[(2, 5, 1)].image, sample.image)
    assert len(ds) == 6 and ds.image_file(0).name == "000001000001.jpg"
