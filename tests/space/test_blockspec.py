"""tensorflow/tpu block specs: the published list, both namings, and errors."""

from __future__ import annotations

import random

import pytest

from nasfpn.space import (
    NASFPN,
    InvalidGenotypeError,
    SearchSpace,
    from_block_specs,
    to_block_specs,
)

# tensorflow/tpu models/official/detection/modeling/architecture/nasfpn.py, NASFPN_BLOCK_SPECS
TPU_NASFPN_BLOCK_SPECS = [
    (4, "attention", (1, 3), False),
    (4, "sum", (1, 5), False),
    (3, "sum", (0, 6), True),
    (4, "sum", (6, 7), True),
    (5, "attention", (7, 8), True),
    (7, "attention", (6, 9), True),
    (6, "attention", (9, 10), True),
]


def test_published_tpu_specs_are_the_builtin() -> None:
    assert from_block_specs(TPU_NASFPN_BLOCK_SPECS) == NASFPN
    assert to_block_specs(NASFPN) == TPU_NASFPN_BLOCK_SPECS


def test_our_op_names_round_trip_too() -> None:
    ours = to_block_specs(NASFPN, op_names="nasfpn")
    assert ours[0] == (4, "global_pool", (1, 3), False)
    assert from_block_specs(ours) == NASFPN
    lists = [[lvl, op, [a, b], out] for lvl, op, (a, b), out in ours]  # as read from JSON/YAML
    assert from_block_specs(lists) == NASFPN


def test_random_genotypes_round_trip() -> None:
    space, rng = (
        SearchSpace(min_level=3, max_level=5, num_cells=5, num_intermediate=2),
        random.Random(3),
    )
    for _ in range(300):
        g = space.decode(space.sample(rng))
        assert from_block_specs(to_block_specs(g), min_level=3, max_level=5) == g


def test_unknown_op_names_setting() -> None:
    with pytest.raises(ValueError, match=r"op_names='tf'.*'nasfpn', 'tpu'"):
        to_block_specs(NASFPN, op_names="tf")


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ((4, "sum", (1, 3)), ["block spec 1", "(level, combine_fn, (input0, input1), is_output)"]),
        ((4, "sum", 1, False), ["block spec 1"]),
        ((4, "max", (1, 3), False), ["block spec 1", "combine_fn='max'", "'attention'"]),
        ((4, ["sum"], (1, 3), False), ["block spec 1", "combine_fn=['sum']"]),
        ((4, "sum", (1, 9), False), ["cell 1 (node 6)", "input_b=9"]),
    ],
)
def test_bad_specs_are_named(spec: object, fragments: list[str]) -> None:
    specs = [TPU_NASFPN_BLOCK_SPECS[0], spec, *TPU_NASFPN_BLOCK_SPECS[2:]]
    with pytest.raises(InvalidGenotypeError) as err:
        from_block_specs(specs)
    for fragment in fragments:
        assert fragment in str(err.value)
