import json
import subprocess
import sys

import pytest

from nasfpn.cli import main
from nasfpn.space import NASFPN

SMALL = ["--backbone", "resnet10", "--repeats", "2", "--width", "16", "--image-size", "128"]


def test_inspect_json_adds_up(capsys) -> None:
    assert main(["inspect", "nasfpn", *SMALL, "--num-classes", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    params = out["params"]
    assert params["total"] == params["backbone"] + params["neck"] + params["head"]
    assert out["flops"] > 0 and out["key"] == NASFPN.key()
    assert out["repeats"] == 2 and out["num_classes"] == 3


def test_inspect_table_lists_cells_and_absorbed_nodes(capsys) -> None:
    assert main(["inspect", "nasfpn", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "n9    P5     global_pool  7 (n7)   8 (n8)    2 (P5)   -> P5" in out
    assert "params.total" in out and "GFLOPs" in out


def test_inspect_fpn_and_genotype_file(tmp_path, capsys) -> None:
    assert main(["inspect", "fpn", *SMALL, "--json"]) == 0
    fpn = json.loads(capsys.readouterr().out)
    assert fpn["neck"] == "fpn" and "key" not in fpn
    path = tmp_path / "arch.json"
    NASFPN.save(path)
    assert main(["inspect", str(path), *SMALL, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["key"] == NASFPN.key()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inspect", "no-such-arch"], "unknown genotype 'no-such-arch'"),
        (["inspect", "nasfpn", "--backbone", "vgg16"], "backbone 'vgg16' is unknown"),
        (["inspect", "nasfpn", "--repeats", "0"], "repeats=0"),
    ],
)
def test_inspect_errors_are_one_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_console_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nasfpn", "inspect", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--variant" in out
