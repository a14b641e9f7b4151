"""``nasfpn data synth`` and ``nasfpn data split``: outputs and one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nasfpn.cli import main


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_synth_then_split(tmp_path: Path, capsys) -> None:
    out = tmp_path / "set"
    assert main(["data", "synth", str(out), "--train", "6", "--val", "2", "--size", "64"]) == 0
    printed = capsys.readouterr().out
    assert "train      6 images" in printed and f"wrote {out}" in printed
    assert len(list((out / "train").iterdir())) == 6
    ann = out / "annotations" / "instances_train.json"
    code = main(["data", "split", str(ann), "--holdout", "2", "--out", str(tmp_path / "split")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "proxy_train.json: 4 images" in printed and "reward.json: 2 images" in printed
    half_dir = str(tmp_path / "half")
    args = ["data", "split", str(ann), "--holdout", "2", "--subset", "0.5", "--out", half_dir]
    assert main(args) == 0
    half = json.loads((tmp_path / "half" / "proxy_train.json").read_text())
    assert len(half["images"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "synth", "{tmp}/new", "--size", "10"], "nasfpn data: error: --size 10 is too"),
        (["data", "synth", "{tmp}/new", "--train", "-3"], "--train -3 must be 0 or more"),
        (["data", "split", "{tmp}/none.json", "--out", "{tmp}/o"], "annotation file '.*none.json"),
        (["data", "split", "{bad}", "--out", "{tmp}/o"], "is not valid JSON"),
        (["data", "split", "{ann}", "--out", "{tmp}/o"], "has 1 images, not more than --holdout"),
        (["data", "split", "{ann}", "--holdout", "1", "--out", "{tmp}/o"], "has 1 images"),
    ],
)
def test_errors_are_one_line(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "ann.json").write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}],
                "annotations": [],
                "categories": [],
            }
        )
    )
    values = {"tmp": tmp_path, "bad": tmp_path / "bad.json", "ann": tmp_path / "ann.json"}
    assert main([a.format(**values) for a in args]) == 2
    assert re.search(message, _error(capsys))


def test_synth_refuses_a_non_empty_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "x.txt").write_text("x")
    assert main(["data", "synth", str(tmp_path)]) == 2
    assert "already exists and is not an empty folder" in _error(capsys)


def test_data_and_evaluate_commands_do_not_import_torch() -> None:
    # torchvision takes seconds to import; these commands need only numpy, PIL, pycocotools
    code = (
        "import sys; import nasfpn.cli; from nasfpn.data import write_synthetic, write_split, "
        "embedded_dataset; from nasfpn.evaluation import evaluate_coco; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
