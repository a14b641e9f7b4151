"""Genotype: the published cell traced by hand (docs section 3), and every validation error."""

from __future__ import annotations

import dataclasses

import pytest

from nasfpn.space import NASFPN, CellPlan, Genotype, InvalidGenotypeError, MergingCell


def test_published_cell_traced_node_by_node() -> None:
    # docs section 3: node 9 absorbs the unused P5 (node 2), node 10 the unused P7 (node 4).
    expected = [
        CellPlan(5, MergingCell(1, 3, 4, "global_pool", False), ()),
        CellPlan(6, MergingCell(1, 5, 4, "sum", False), ()),
        CellPlan(7, MergingCell(0, 6, 3, "sum", True), ()),
        CellPlan(8, MergingCell(6, 7, 4, "sum", True), ()),
        CellPlan(9, MergingCell(7, 8, 5, "global_pool", True), (2,)),
        CellPlan(10, MergingCell(6, 9, 7, "global_pool", True), (4,)),
        CellPlan(11, MergingCell(9, 10, 6, "global_pool", True), ()),
    ]
    assert list(NASFPN.trace()) == expected
    assert NASFPN.output_nodes() == {3: 7, 4: 8, 5: 9, 6: 11, 7: 10}
    assert NASFPN.node_levels() == (3, 4, 5, 6, 7, 4, 4, 3, 4, 5, 7, 6)
    assert NASFPN.validate() is NASFPN


def test_coarse_and_fine_follow_levels_then_input_a() -> None:
    assert NASFPN.coarse_and_fine(0) == (3, 1)  # P6 is coarser than P4: input_b is coarse
    assert NASFPN.coarse_and_fine(4) == (8, 7)  # node 8 (P4 level) is coarser than node 7 (P3)
    tie = Genotype(
        [(1, 0, 4, "global_pool", False), (0, 2, 3, "sum", True), (2, 1, 4, "sum", True)],
        min_level=3,
        max_level=4,
    ).validate()
    assert tie.coarse_and_fine(2) == (2, 1)  # nodes 2 and 1 are both at level 4: input_a


def _with(k: int, **changes: object) -> Genotype:
    cells = list(NASFPN.cells)
    cells[k] = dataclasses.replace(cells[k], **changes)
    return Genotype(tuple(cells))


@pytest.mark.parametrize(
    ("genotype", "fragments"),
    [
        (_with(0, input_a=5), ["cell 0 (node 5)", "input_a=5", "0..4"]),
        (_with(2, input_b=-1), ["cell 2 (node 7)", "input_b=-1", "0..6"]),
        (_with(1, input_a="1"), ["cell 1", "input_a='1'"]),
        (_with(1, input_b=True), ["cell 1", "input_b=True"]),
        (_with(1, input_b=1), ["cell 1", "input_b=1 equals input_a"]),
        (_with(3, level=8), ["cell 3", "level=8", "3..7"]),
        (_with(3, level=4.0), ["cell 3", "level=4.0"]),
        (_with(4, op="attention"), ["cell 4", "op='attention'", "'sum', 'global_pool'"]),
        (_with(4, is_output=1), ["cell 4", "is_output=1", "bool"]),
        (_with(1, is_output=True), ["cell 1", "is_output=True", "last 5 of the 7 cells"]),
        (_with(6, is_output=False), ["cell 6", "is_output=False", "last 5"]),
        (_with(6, level=3), ["cell 6 (node 11)", "level=3", "output level of cell 2"]),
        (Genotype(NASFPN.cells[:4]), ["4 cells", "at least 5"]),
        (Genotype(NASFPN.cells, min_level=5, max_level=5), ["min_level=5", "max_level=5"]),
        (Genotype(NASFPN.cells, min_level=-1, max_level=3), ["min_level=-1"]),
        (Genotype(NASFPN.cells, min_level="3", max_level=7), ["min_level='3'"]),
    ],
)
def test_validate_names_cell_field_and_value(genotype: Genotype, fragments: list[str]) -> None:
    with pytest.raises(InvalidGenotypeError) as err:
        genotype.validate()
    for fragment in fragments:
        assert fragment in str(err.value)


def test_invalid_genotype_error_is_a_value_error() -> None:
    assert issubclass(InvalidGenotypeError, ValueError)


def test_cells_given_as_tuples_become_merging_cells() -> None:
    g = Genotype([tuple(dataclasses.astuple(c)) for c in NASFPN.cells])
    assert g == NASFPN and hash(g) == hash(NASFPN)
