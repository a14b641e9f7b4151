"""nasfpn predict: drawn images and a COCO results file from a retraining checkpoint."""

import json

import pytest
from PIL import Image
from retrain_helpers import tiny

from nasfpn.cli import main
from nasfpn.evaluation import evaluate_coco
from nasfpn.retrain import latest_checkpoint, retrain
from nasfpn.space import NASFPN


@pytest.fixture(scope="module")
def checkpoint(tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("predict-run")
    retrain(NASFPN, tiny(tiny_synth, "model.test.score_threshold=0.0"), out, log=lambda *a: None)
    return latest_checkpoint(out)


def test_predict_writes_drawn_images_and_coco_results(checkpoint, tiny_synth, tmp_path, capsys):
    val = json.loads((tiny_synth / "annotations" / "instances_val.json").read_text())
    files = [tiny_synth / "val" / img["file_name"] for img in val["images"][:2]]
    out = tmp_path / "pred"
    code = main(["predict", str(checkpoint), *map(str, files), "--out", str(out), "--json",
                 "--score-threshold", "0.0"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert [Image.open(e["drawn"]).size for e in summary["images"]] == [
        (img["width"], img["height"]) for img in val["images"][:2]
    ]
    results = json.loads((out / "detections.json").read_text())
    assert results and summary["detections"] == len(results) <= 200
    assert set(results[0]) == {"image_id", "category_id", "bbox", "score"}
    index = json.loads((out / "images.json").read_text())
    ids = {e["id"] for e in index}
    assert {r["image_id"] for r in results} <= ids
    # COCO-style file names are the image ids (as the synthetic set's are)
    assert ids == {img["id"] for img in val["images"][:2]}
    assert {r["category_id"] for r in results} <= {c["id"] for c in val["categories"]}
    # the results file is in COCO's format: pycocotools scores it on those two images
    gt = dict(val, images=val["images"][:2],
              annotations=[a for a in val["annotations"] if a["image_id"] in ids])  # fmt: skip
    assert 0.0 <= evaluate_coco(gt, str(out / "detections.json"))["AP"] <= 1.0


def test_image_ids_of_other_file_names() -> None:
    from pathlib import Path

    from nasfpn.retrain.predict import _image_id

    assert _image_id(Path("000000397133.jpg"), 0) == 397133
    assert _image_id(Path("street.jpg"), 4) == 5


def test_predict_refusals(checkpoint, tmp_path, capsys) -> None:
    assert main(["predict", str(checkpoint), str(tmp_path / "missing.jpg")]) == 2
    assert "do not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    assert main(["predict", str(checkpoint), str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "none.pt"), str(bad)]) == 2
    assert "does not exist" in capsys.readouterr().err
