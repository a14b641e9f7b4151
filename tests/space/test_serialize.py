"""Genotype JSON: round trips, the readable layout, provenance, and every error."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from nasfpn.space import NASFPN, Genotype, InvalidGenotypeError, SearchSpace


def test_dict_round_trip_and_layout() -> None:
    doc = NASFPN.to_dict()
    assert doc["format_version"] == 1
    assert (doc["min_level"], doc["max_level"]) == (3, 7)
    assert doc["cells"][0] == {
        "node": 5,
        "input_a": 1,
        "input_b": 3,
        "level": 4,
        "op": "global_pool",
        "is_output": False,
    }
    assert Genotype.from_dict(doc) == NASFPN


def test_json_has_one_line_per_cell() -> None:
    text = NASFPN.to_json()
    assert json.loads(text) == NASFPN.to_dict()
    lines = text.splitlines()
    assert lines[0] == "{" and lines[1] == '  "format_version": 1,'
    assert lines[5] == (
        '    {"node": 5, "input_a": 1, "input_b": 3, "level": 4, "op": "global_pool", '
        '"is_output": false},'
    )
    assert len(lines) == 5 + 7 + 2
    assert Genotype.from_json(text) == NASFPN


def test_random_genotypes_round_trip_through_json() -> None:
    space, rng = (
        SearchSpace(min_level=2, max_level=6, num_cells=8, num_intermediate=3),
        random.Random(1),
    )
    for _ in range(200):
        g = space.decode(space.sample(rng))
        assert Genotype.from_json(g.to_json()) == g


def test_save_and_load_bare_and_with_provenance(tmp_path: Path) -> None:
    NASFPN.save(tmp_path / "bare.json")
    assert Genotype.load(tmp_path / "bare.json") == NASFPN
    NASFPN.save(tmp_path / "trial.json", reward=0.312, trial_id="t7", metrics={"AP50": 0.5})
    doc = json.loads((tmp_path / "trial.json").read_text())
    assert doc["format_version"] == 1 and doc["reward"] == 0.312 and doc["trial_id"] == "t7"
    assert doc["genotype"]["cells"] == NASFPN.to_dict()["cells"]
    assert Genotype.load(tmp_path / "trial.json") == NASFPN


def test_load_accepts_provenance_beside_a_bare_genotype(tmp_path: Path) -> None:
    doc = NASFPN.to_dict() | {"reward": 0.3, "note": "hand-written"}
    for cell in doc["cells"]:
        del cell["node"]  # a reading aid, not required
    (tmp_path / "g.json").write_text(json.dumps(doc))
    assert Genotype.load(tmp_path / "g.json") == NASFPN


def test_provenance_may_not_use_reserved_keys() -> None:
    with pytest.raises(ValueError, match=r"\['format_version', 'genotype'\] are reserved"):
        NASFPN.to_json(genotype="x", format_version=2)


def _doc(**changes: object) -> dict:
    doc = NASFPN.to_dict()
    doc.update(changes)
    return doc


def _cells(k: int, **changes: object) -> list[dict]:
    cells = NASFPN.to_dict()["cells"]
    cells[k] = {key: value for key, value in (cells[k] | changes).items() if value is not ...}
    return cells


@pytest.mark.parametrize(
    ("doc", "fragments"),
    [
        ([1, 2], ["must be a JSON object", "list"]),
        ({k: v for k, v in _doc().items() if k != "format_version"}, ['no "format_version"']),
        (_doc(format_version=2), ["format_version=2", "format_version 1"]),
        (_doc(format_version=True), ["format_version=True"]),
        ({"format_version": 1, "genotype": [1]}, ['"genotype" must be a JSON object']),
        (
            {"format_version": 1, "genotype": _doc(format_version=3)},
            ['"genotype" has format_version=3'],
        ),
        ({"format_version": 1, "genotype": _doc(reward=1.0)}, ["unknown keys ['reward']"]),
        ({"format_version": 1, "min_level": 3, "cells": []}, ["lacks ['max_level']"]),
        (_doc(cells={"a": 1}), ['"cells" must be a list', "dict"]),
        (_doc(cells=[1]), ["cell 0 must be a JSON object"]),
        (_doc(cells=_cells(2, op=...)), ["cell 2", "missing keys ['op']"]),
        (_doc(cells=_cells(2, kind="x")), ["cell 2", "unknown keys ['kind']"]),
        (_doc(cells=_cells(3, node=9)), ["cell 3", "node=9", "creates node 8"]),
        (_doc(cells=_cells(3, level=9)), ["cell 3 (node 8)", "level=9"]),
        (_doc(max_level=8), ["cell 1 (node 7)", "is_output=False", "last 6"]),
    ],
)
def test_malformed_documents_are_named(doc: object, fragments: list[str]) -> None:
    with pytest.raises(InvalidGenotypeError) as err:
        Genotype.from_dict(doc)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_bad_json_and_bad_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidGenotypeError, match="not valid JSON"):
        Genotype.from_json("{")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_doc(format_version=0)))
    with pytest.raises(InvalidGenotypeError, match=r"old\.json: the document has format_version=0"):
        Genotype.load(path)
    with pytest.raises(FileNotFoundError):
        Genotype.load(tmp_path / "missing.json")


def test_invalid_genotypes_are_not_written() -> None:
    bad = Genotype(NASFPN.cells[:4])
    with pytest.raises(InvalidGenotypeError, match="4 cells"):
        bad.to_json()
