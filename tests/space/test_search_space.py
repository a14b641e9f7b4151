"""SearchSpace: decisions, masks, decode/encode, sampling and sizes."""

from __future__ import annotations

import random

import pytest

from nasfpn.space import NASFPN, Decision, InvalidGenotypeError, SearchSpace

SPACES = {
    "paper": SearchSpace(),
    "small": SearchSpace(min_level=3, max_level=5, num_cells=4, num_intermediate=1),
    "large": SearchSpace(num_cells=10, num_intermediate=5),
    "sum_only_all_levels": SearchSpace(
        min_level=2, max_level=4, num_cells=3, num_intermediate=0, ops=("sum",)
    ),
    "intermediate_p3": SearchSpace(intermediate_levels=(3, 5)),
}


def test_paper_defaults() -> None:
    space = SearchSpace()
    assert space.levels == (3, 4, 5, 6, 7)
    assert space.intermediate_levels == (4, 5, 6, 7)
    assert space.ops == ("sum", "global_pool")
    assert len(space.decisions) == 28
    assert space.decisions[:5] == (
        Decision(0, 0, "input_a", 5),
        Decision(1, 0, "input_b", 5),
        Decision(2, 0, "level", 5),
        Decision(3, 0, "op", 2),
        Decision(4, 1, "input_a", 6),
    )
    assert space.decisions[-4] == Decision(24, 6, "input_a", 11)
    assert [d.group for d in space.decisions[:4]] == ["input", "input", "level", "op"]


def test_max_choices_per_kind_and_group() -> None:
    space = SearchSpace()
    assert space.max_choices("input_a") == space.max_choices("input_b") == 11
    assert space.max_choices("input") == 11
    assert space.max_choices("level") == 5
    assert space.max_choices("op") == 2
    with pytest.raises(ValueError, match=r"kind='inputs'.*'input_a'"):
        space.max_choices("inputs")


def test_size_matches_the_paper() -> None:
    space = SearchSpace()
    assert space.size(ordered=True) == 247_210_809_753_600_000  # about 2.47e17
    assert space.size(ordered=False) == 1_931_334_451_200_000  # about 1.93e15
    assert space.size(ordered=True) == space.size(ordered=False) * 2**7


def _enumerate(space: SearchSpace) -> list[list[int]]:
    done: list[list[int]] = [[]]
    for _ in space.decisions:
        done = [[*p, j] for p in done for j, ok in enumerate(space.legal(p)) if ok]
    return done


def test_size_counts_every_legal_sequence_of_a_tiny_space() -> None:
    space = SearchSpace(min_level=3, max_level=4, num_cells=3, num_intermediate=1)
    sequences = _enumerate(space)
    # per cell: ordered input pairs * levels * ops
    assert len(sequences) == space.size() == (2 * 1 * 2) * (6 * 2 * 2) * (12 * 1 * 2)
    assert len({tuple(s) for s in sequences}) == len(sequences)
    assert space.size(ordered=False) == len({space.decode(s) for s in sequences}) // 8


def test_paper_genotype_encodes_and_decodes() -> None:
    space = SearchSpace()
    actions = space.encode(NASFPN)
    assert actions[:8] == [1, 3, 1, 1, 1, 5, 1, 0]  # gp(1,3)->P4, sum(1,5)->P4
    assert space.decode(actions) == NASFPN
    assert space.contains(NASFPN)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_sampled_sequences_are_legal_and_round_trip(name: str) -> None:
    space, rng = SPACES[name], random.Random(name)
    levels = set(space.levels)
    for _ in range(1000):
        actions = space.sample(rng)
        for i, action in enumerate(actions):
            assert space.legal(actions[:i])[action]
        genotype = space.decode(actions)
        assert genotype.validate() is genotype
        assert space.encode(genotype) == actions
        assert all(c.input_a != c.input_b for c in genotype.cells)
        outputs = [c.level for c in genotype.cells if c.is_output]
        assert sorted(outputs) == sorted(levels)
        inter = [c.level for c in genotype.cells if not c.is_output]
        assert set(inter) <= set(space.intermediate_levels)


def test_masks() -> None:
    space = SearchSpace()
    assert space.legal([]) == (True,) * 5
    assert space.legal([2]) == (True, True, False, True, True)  # input_b != input_a
    assert space.legal([2, 0]) == (False, True, True, True, True)  # intermediate: no P3
    assert space.legal([2, 0, 1]) == (True, True)
    prefix = space.encode(NASFPN)[:8]  # the two intermediate cells
    first_output = [*prefix, 0, 6]
    assert space.legal(first_output) == (True,) * 5  # an output cell may take any level
    took_p7 = [*first_output, 4, 0]  # level action 4 = P7, op sum
    assert space.legal([*took_p7, 0, 1]) == (True, True, True, True, False)


def test_legal_rejects_a_complete_or_illegal_prefix() -> None:
    space = SearchSpace()
    with pytest.raises(ValueError, match="all 28 decisions are made"):
        space.legal(space.encode(NASFPN))
    with pytest.raises(InvalidGenotypeError, match=r"decision 1 \(cell 0, input_b\)"):
        space.legal([3, 3])


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ((0, 5), ["decision 0 (cell 0, input_a)", "action 5", "[0, 1, 2, 3, 4]", "node indices"]),
        ((1, 1), ["decision 1 (cell 0, input_b)", "action 1", "[0, 2, 3, 4]", "input_a=1"]),
        ((2, 0), ["decision 2 (cell 0, level)", "action 0", "[1, 2, 3, 4]", "level - 3"]),
        ((3, 2), ["decision 3 (cell 0, op)", "action 2", "[0, 1]", "'global_pool'"]),
        ((18, 0), ["decision 18 (cell 4, level)", "action 0", "[2, 3, 4]", "earlier output"]),
        ((4, -1), ["decision 4 (cell 1, input_a)", "action -1"]),
        ((4, True), ["decision 4", "action True"]),
        ((4, 1.0), ["decision 4", "action 1.0"]),
    ],
)
def test_decode_names_the_bad_decision(change: tuple[int, object], fragments: list[str]) -> None:
    space = SearchSpace()
    actions: list[object] = list(space.encode(NASFPN))
    actions[change[0]] = change[1]
    with pytest.raises(InvalidGenotypeError) as err:
        space.decode(actions)  # type: ignore[arg-type]
    for fragment in fragments:
        assert fragment in str(err.value)


def test_decode_rejects_a_wrong_length() -> None:
    space = SearchSpace()
    with pytest.raises(InvalidGenotypeError, match=r"expected 28 actions.*got 27"):
        space.decode(space.encode(NASFPN)[:-1])
    with pytest.raises(InvalidGenotypeError, match="got 29"):
        space.decode([*space.encode(NASFPN), 0])


def test_decode_accepts_integer_like_actions() -> None:
    class Index:  # a numpy or 0-d tensor integer also has __index__
        def __init__(self, value: int) -> None:
            self.value = value

        def __index__(self) -> int:
            return self.value

    space = SearchSpace()
    assert space.decode([Index(a) for a in space.encode(NASFPN)]) == NASFPN  # type: ignore[misc]


@pytest.mark.parametrize(
    ("genotype", "space", "fragments"),
    [
        (NASFPN, SearchSpace(min_level=3, max_level=6, num_cells=6), ["P3..P7", "P3..P6"]),
        (NASFPN, SearchSpace(num_cells=8, num_intermediate=3), ["7 cells", "space 8"]),
        (NASFPN, SearchSpace(intermediate_levels=(5, 6)), ["cell 0", "level=4", "(5, 6)"]),
        (NASFPN, SearchSpace(ops=("sum",)), ["cell 0", "op='global_pool'", "('sum',)"]),
    ],
)
def test_space_validate_names_the_rule(
    genotype: object, space: SearchSpace, fragments: list[str]
) -> None:
    with pytest.raises(InvalidGenotypeError) as err:
        space.validate(genotype)  # type: ignore[arg-type]
    for fragment in fragments:
        assert fragment in str(err.value)
    assert not space.contains(genotype)  # type: ignore[arg-type]
    with pytest.raises(InvalidGenotypeError):
        space.encode(genotype)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"min_level": 5, "max_level": 5}, ["min_level=5", "max_level=5", "min_level=3"]),
        ({"min_level": -1}, ["min_level=-1"]),
        ({"max_level": 7.0}, ["max_level=7.0"]),
        ({"num_intermediate": -1, "num_cells": 4}, ["num_intermediate=-1", ">= 0"]),
        ({"num_intermediate": "2"}, ["num_intermediate='2'"]),
        ({"num_cells": 8}, ["num_cells=8", "num_intermediate=2", "set num_cells=7"]),
        ({"num_cells": 7.0}, ["num_cells=7.0"]),
        ({"intermediate_levels": (2, 4)}, ["intermediate_levels=(2, 4)", "(3, 4, 5, 6, 7)"]),
        ({"intermediate_levels": (4, 4)}, ["intermediate_levels=(4, 4)", "distinct"]),
        ({"intermediate_levels": ()}, ["intermediate_levels=()", "at least one"]),
        ({"intermediate_levels": 4}, ["intermediate_levels=4"]),
        ({"intermediate_levels": (4.0,)}, ["intermediate_levels=(4.0,)"]),
        ({"ops": ("sum", "max")}, ["ops=('sum', 'max')", "'global_pool'"]),
        ({"ops": ("sum", "sum")}, ["ops=('sum', 'sum')", "distinct"]),
        ({"ops": ()}, ["ops=()", "at least one"]),
        ({"ops": "sum"}, ["ops='sum'"]),
    ],
)
def test_bad_space_parameters(kwargs: dict[str, object], fragments: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        SearchSpace(**kwargs)  # type: ignore[arg-type]
    for fragment in fragments:
        assert fragment in str(err.value)


def test_lists_are_stored_as_tuples() -> None:
    space = SearchSpace(intermediate_levels=[5, 4], ops=["global_pool"])  # type: ignore[arg-type]
    assert space.intermediate_levels == (5, 4) and space.ops == ("global_pool",)
    assert space == SearchSpace(intermediate_levels=(5, 4), ops=("global_pool",))
    assert space.decode(space.sample(random.Random(0))).cells[0].op == "global_pool"
