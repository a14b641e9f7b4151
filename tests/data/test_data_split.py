"""The proxy split: disjoint by image, deterministic, subsets, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import coco_dict

from nasfpn.data import DEFAULT_HOLDOUT, split_annotations, write_split


@pytest.fixture
def data() -> dict:
    images = [(i, 32, 32) for i in range(1, 41)]
    anns = [(i, 1 if i % 2 else 3, [1, 1, 5, 5], 0) for i in range(1, 41) for _ in range(i % 3)]
    out = coco_dict(images, anns)
    out["licenses"] = [{"id": 1, "name": "CC0"}]
    return out


def _ids(d: dict) -> set[int]:
    return {img["id"] for img in d["images"]}


def test_default_holdout_is_the_papers() -> None:
    assert DEFAULT_HOLDOUT == 7392  # 118,287 - 110,895 (docs section 4)


def test_disjoint_complete_and_annotations_follow(data: dict) -> None:
    split = split_annotations(data, holdout=10, seed=0)
    train, reward = split.proxy_train, split.reward
    assert len(reward["images"]) == 10 and len(train["images"]) == 30
    assert not _ids(train) & _ids(reward) and _ids(train) | _ids(reward) == _ids(data)
    for part in (train, reward):
        assert {a["image_id"] for a in part["annotations"]} <= _ids(part)
        assert part["categories"] == data["categories"] and part["info"] == data["info"]
        assert part["licenses"] == data["licenses"]
    assert len(train["annotations"]) + len(reward["annotations"]) == len(data["annotations"])
    # the source file's order is kept
    order = [img["id"] for img in data["images"]]
    assert [img["id"] for img in train["images"]] == [i for i in order if i in _ids(train)]


def test_deterministic_for_a_seed(data: dict) -> None:
    a = split_annotations(data, holdout=10, seed=0)
    assert split_annotations(data, holdout=10, seed=0) == a
    assert _ids(split_annotations(data, holdout=10, seed=1).reward) != _ids(a.reward)


def test_subset_is_nested_and_leaves_the_reward_alone(data: dict) -> None:
    full = split_annotations(data, holdout=10, seed=0)
    tenth = split_annotations(data, holdout=10, seed=0, subset=0.1)
    half = split_annotations(data, holdout=10, seed=0, subset=0.5)
    assert len(tenth.proxy_train["images"]) == 3 and len(half.proxy_train["images"]) == 15
    assert _ids(tenth.proxy_train) <= _ids(half.proxy_train) <= _ids(full.proxy_train)
    assert tenth.reward == full.reward


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"holdout": 40}, "has 40 images, not more than --holdout 40; pass a smaller --holdout"),
        ({"holdout": 7392}, r"\(e.g. 8, a fifth\)"),
        ({"holdout": 0}, "--holdout 0 must be 1 or more"),
        ({"holdout": 10, "subset": 0}, r"--subset 0 must be a fraction in \(0, 1\]"),
        ({"holdout": 10, "subset": 1.5}, "--subset 1.5 must be a fraction"),
        ({"holdout": 10, "subset": 0.01}, "keeps none; use at least 0.0333"),
    ],
)
def test_errors(data: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_annotations(data, **kwargs)


def test_write_split(tmp_path: Path, data: dict) -> None:
    source = tmp_path / "instances.json"
    source.write_text(json.dumps(data))
    train_path, reward_path, split = write_split(source, tmp_path / "out", holdout=5, seed=2)
    assert train_path.name == "proxy_train.json" and reward_path.name == "reward.json"
    assert json.loads(train_path.read_text()) == split.proxy_train
    assert json.loads(reward_path.read_text()) == split.reward
    first = reward_path.read_bytes()
    write_split(source, tmp_path / "out", holdout=5, seed=2)
    assert reward_path.read_bytes() == first  # byte-identical when run again
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"--out '.*file' is a file"):
        write_split(source, tmp_path / "file", holdout=5)
