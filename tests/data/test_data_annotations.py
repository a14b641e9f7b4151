"""Annotation files: loading errors, validation of every field, label mapping, JSON writing."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from data_helpers import coco_dict

from nasfpn.data import (
    DatasetError,
    LabelMap,
    load_annotations,
    read_json,
    root_files,
    validate_annotations,
    write_json,
)


@pytest.fixture
def good() -> dict:
    return coco_dict(
        [(1, 64, 48), (2, 32, 32)], [(1, 1, [4, 4, 10, 10], 0), (2, 3, [0, 0, 5, 5], 1)]
    )


def test_read_json_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"annotation file '.*nope.json' does not exist"):
        load_annotations(tmp_path / "nope.json")


def test_read_json_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist \\(it is a directory\\)"):
        read_json(tmp_path, "annotation file")


def test_read_json_malformed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [}')
    with pytest.raises(DatasetError, match=r"bad.json' is not valid JSON: .* line 1 column 13"):
        load_annotations(bad)


def test_read_json_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(DatasetError, match="is not UTF-8 JSON"):
        read_json(bad, "annotation file")


def test_load_returns_the_parsed_dict(tmp_path: Path, good: dict) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(good))
    assert load_annotations(path) == good


def _broken(good: dict, edit) -> dict:
    data = copy.deepcopy(good)
    edit(data)
    return data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.clear(), "'images' must be a list .* found nothing"),
        (lambda d: d.update(images={}), "'images' must be a list .* found a dict"),
        (lambda d: d["images"][0].pop("width"), r"images\[0\] lacks 'width'"),
        (lambda d: d["annotations"][1].pop("bbox"), r"annotations\[1\] lacks 'bbox'"),
        (lambda d: d["categories"].append(7), r"categories\[2\] lacks 'id', 'name'"),
        (lambda d: d["images"][1].update(id=1), "images id 1 appears twice"),
        (lambda d: d["images"][1].update(id="2"), "images id '2' is not an integer"),
        (lambda d: d["annotations"][1].update(id=1), "annotations id 1 appears twice"),
        (lambda d: d["images"][0].update(height=0), "height 0; both must be positive integers"),
        (lambda d: d["images"][0].update(width=6.5), "width 6.5 .* positive integers"),
        (
            lambda d: d["annotations"][0].update(image_id=9),
            "annotation 1 points at image_id 9, which is not among the file's 2 images",
        ),
        (
            lambda d: d["annotations"][0].update(category_id=2),
            r"annotation 1 has category_id 2, which is not among the categories \[1, 3\]",
        ),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"bbox \[1, 2, 3\]; expected"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, "3", 4]), "expected \\[x, y, width"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, True, 4]), "expected \\[x, y, width"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, float("nan"), 4]), "expected \\[x"),
    ],
)
def test_validation_names_the_bad_entry(good: dict, edit, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        validate_annotations(_broken(good, edit), "f.json")


def test_not_a_dict() -> None:
    with pytest.raises(DatasetError, match=r"f.json must hold a JSON object .* found a list"):
        validate_annotations([], "f.json")


def test_evaluation_needs_area_and_iscrowd(good: dict) -> None:
    validate_annotations(_broken(good, lambda d: d["annotations"][0].pop("area")), "f.json")
    with pytest.raises(DatasetError, match=r"annotations\[0\] lacks 'area'"):
        validate_annotations(
            _broken(good, lambda d: d["annotations"][0].pop("area")), "f.json", for_evaluation=True
        )
    with pytest.raises(DatasetError, match="has area 'x'; expected a number"):
        validate_annotations(
            _broken(good, lambda d: d["annotations"][0].update(area="x")), "f", for_evaluation=True
        )
    with pytest.raises(DatasetError, match="has iscrowd 2; expected 0 or 1"):
        validate_annotations(
            _broken(good, lambda d: d["annotations"][0].update(iscrowd=2)), "f", for_evaluation=True
        )


def test_label_map_round_trip() -> None:
    cats = [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
    labels = LabelMap.from_categories(cats)
    assert labels.category_ids == (1, 3, 90)  # sorted by id, as mmdetection's cat2label
    assert labels.names == ("person", "car", "toothbrush")
    assert len(labels) == 3
    assert labels.to_labels([90, 1, 3, 3]) == [2, 0, 1, 1]
    assert labels.to_category_ids([2, 0, 1, 1]) == [90, 1, 3, 3]
    assert labels.to_category_ids(labels.to_labels([3, 90])) == [3, 90]


def test_label_map_errors() -> None:
    labels = LabelMap((1, 3), ("a", "b"))
    with pytest.raises(ValueError, match=r"category ids \[2, 7\] are not in this label map"):
        labels.to_labels([1, 2, 7])
    with pytest.raises(ValueError, match=r"labels \[-1, 2\] are outside 0..1 for 2 classes"):
        labels.to_category_ids([0, 2, -1])
    with pytest.raises(ValueError, match="2 category ids but 1 names"):
        LabelMap((1, 3), ("a",))
    with pytest.raises(ValueError, match="must be unique and increasing"):
        LabelMap((3, 1), ("a", "b"))


def test_write_json_is_deterministic(tmp_path: Path, good: dict) -> None:
    write_json(good, tmp_path / "a.json")
    write_json(copy.deepcopy(good), tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert json.loads((tmp_path / "a.json").read_text()) == good


def test_root_files_by_layout(tmp_path: Path) -> None:
    for name in ("annotations/instances_train2017.json", "annotations/instances_val2017.json"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("{}")
    files = root_files(tmp_path, "set the files")
    assert files["train"] == (tmp_path / "annotations/instances_train2017.json",
                              tmp_path / "train2017")  # fmt: skip
    assert files["val"] == (tmp_path / "annotations/instances_val2017.json", tmp_path / "val2017")
    # the synthetic set's layout comes first when both are there
    (tmp_path / "annotations/instances_train.json").write_text("{}")
    assert root_files(tmp_path, "")["val"][1] == tmp_path / "val"
    with pytest.raises(FileNotFoundError, match=r"instances_train2017\.json with train2017/; or "
                                                "set the files"):  # fmt: skip
        root_files(tmp_path / "empty", "set the files")
