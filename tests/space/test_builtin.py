"""Genotypes by name or by file."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasfpn.space import BUILTIN, NASFPN, SearchSpace, get_genotype


def test_builtins_are_valid_members_of_the_paper_space() -> None:
    assert BUILTIN == {"nasfpn": NASFPN}
    for genotype in BUILTIN.values():
        assert SearchSpace().contains(genotype)


def test_by_name_or_path(tmp_path: Path) -> None:
    assert get_genotype("nasfpn") is NASFPN
    assert get_genotype("NASFPN") is NASFPN
    NASFPN.save(tmp_path / "g.json")
    assert get_genotype(tmp_path / "g.json") == NASFPN
    assert get_genotype(str(tmp_path / "g.json")) == NASFPN


def test_unknown_name_lists_builtins_and_mentions_files() -> None:
    with pytest.raises(ValueError, match=r"unknown genotype 'nas-fpn'.*nasfpn.*JSON file") as err:
        get_genotype("nas-fpn")
    assert "FPN neck" not in str(err.value)
    with pytest.raises(ValueError, match=r"'fpn' is the plain FPN neck, not a genotype"):
        get_genotype("fpn")
    with pytest.raises(ValueError, match=r"missing\.json"):
        get_genotype("runs/missing.json")
