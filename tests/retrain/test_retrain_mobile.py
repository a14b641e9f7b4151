"""Retraining the mobile detectors (the cpu-mobile preset): a P3-P6 genotype of the mobile space
and FPNLite, with MobileNetV2 and separable convs."""

import json
import random

from retrain_helpers import TINY

from nasfpn.cli import main
from nasfpn.space import NASFPN, SearchSpace


def test_mobile_genotype_and_fpnlite_retrain(tiny_synth, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))
    space = SearchSpace(min_level=3, max_level=6, num_cells=6)
    path = tmp_path / "mobile.json"
    space.decode(space.sample(random.Random(4))).save(path)
    args = ["--config", "cpu-mobile", "--data", str(tiny_synth)]
    for item in TINY:
        args += ["--set", item]
    for arch, name in ((str(path), "cell"), ("fpn", "fpnlite")):
        assert main(["retrain", arch, *args, "--out", str(tmp_path / name), "--json"]) == 0
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics["status"] == "ok" and 0.0 <= metrics["final"]["AP"] <= 1.0
    resolved = json.loads((tmp_path / "fpnlite" / "resolved.json").read_text())
    assert resolved["config"]["model"]["separable"] is True
    capsys.readouterr()
    # a P3-P7 genotype needs five anchor strides: the error says which
    assert main(["retrain", "nasfpn", *args, "--out", str(tmp_path / "p7")]) == 2
    assert "set model.anchors.strides=[8, 16, 32, 64, 128]" in capsys.readouterr().err
    assert NASFPN.levels == (3, 4, 5, 6, 7)
