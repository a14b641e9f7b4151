"""``nasfpn evaluate``: pycocotools' AP to the last digit; bad input as one line, exit code 2."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import eval_helpers
import pytest
from eval_helpers import write_files
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from nasfpn.cli import main


@pytest.fixture
def gt_data() -> dict:
    return eval_helpers.gt_data()


@pytest.fixture
def predictions() -> list:
    return eval_helpers.predictions()


@pytest.fixture
def files(tmp_path: Path, gt_data: dict, predictions: list) -> tuple[Path, Path]:
    return write_files(tmp_path, gt_data, predictions)


def test_json_output_equals_pycocotools(files: tuple[Path, Path], capsys) -> None:
    gt, pred = files
    assert main(["evaluate", "--annotations", str(gt), "--predictions", str(pred), "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt))
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(str(pred)), "bbox")
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    assert list(ours.values()) == [float(x) for x in coco_eval.stats[:6]]
    assert list(ours) == ["AP", "AP50", "AP75", "APs", "APm", "APl"]


def test_text_output(files: tuple[Path, Path], capsys) -> None:
    gt, pred = files
    assert main(["evaluate", "--annotations", str(gt), "--predictions", str(pred)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["AP", "AP50", "AP75", "APs", "APm", "APl"]
    main(["evaluate", "--annotations", str(gt), "--predictions", str(pred), "--json"])
    exact = json.loads(capsys.readouterr().out)
    assert [float(line.split()[1]) for line in lines] == list(exact.values())


def test_verbose_shows_pycocotools(files: tuple[Path, Path], capsys) -> None:
    gt, pred = files
    main(["evaluate", "--annotations", str(gt), "--predictions", str(pred), "--verbose"])
    assert "Average Recall" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p[0].update(category_id=4), "detection 0 has category_id 4, which is not a"),
        (lambda p: p[1].update(image_id=12), "detection 1 is for image_id 12, which is not an"),
        (lambda p: p[2].pop("bbox"), "detection 2 lacks 'bbox'"),
        (lambda p: p[2].update(bbox=[0, 0, -1, 5]), "negative width or height"),
    ],
)
def test_bad_predictions_are_one_line(files, predictions, capsys, edit, message) -> None:
    gt, pred = files
    edit(predictions)
    pred.write_text(json.dumps(predictions))
    assert main(["evaluate", "--annotations", str(gt), "--predictions", str(pred)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasfpn evaluate: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("which", "content", "message"),
    [
        ("pred", None, "predictions file '.*' does not exist"),
        ("pred", "not json", "predictions file '.*' is not valid JSON"),
        ("pred", "{}", "must be a JSON list of detections"),
        ("gt", None, "annotation file '.*' does not exist"),
        ("gt", "[1", "annotation file '.*' is not valid JSON"),
        ("gt", '{"images": []}', "'annotations' must be a list"),
    ],
)
def test_bad_files_are_one_line(files, capsys, which: str, content, message: str) -> None:
    gt, pred = files
    target = gt if which == "gt" else pred
    if content is None:
        target.unlink()
    else:
        target.write_text(content)
    assert main(["evaluate", "--annotations", str(gt), "--predictions", str(pred)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    import re

    assert re.search(message, err), err
