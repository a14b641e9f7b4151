"""Canonical keys: equal exactly when two genotypes build the same network."""

from __future__ import annotations

import dataclasses
import itertools

from nasfpn.space import NASFPN, Genotype, MergingCell, SearchSpace
from nasfpn.space.key import _graph


def _replace(genotype: Genotype, k: int, **changes: object) -> Genotype:
    cells = list(genotype.cells)
    cells[k] = dataclasses.replace(cells[k], **changes)
    return Genotype(tuple(cells), genotype.min_level, genotype.max_level).validate()


def _swap(genotype: Genotype, k: int) -> Genotype:
    cell = genotype.cells[k]
    return _replace(genotype, k, input_a=cell.input_b, input_b=cell.input_a)


def _reorder(genotype: Genotype, order: list[int]) -> Genotype:
    """Build the cells in ``order`` (old cell indices), renumbering the nodes they refer to."""
    base = genotype.num_inputs
    new_node = {base + old: base + new for new, old in enumerate(order)}
    cells = []
    for old in order:
        c = genotype.cells[old]
        a, b = new_node.get(c.input_a, c.input_a), new_node.get(c.input_b, c.input_b)
        cells.append(MergingCell(a, b, c.level, c.op, c.is_output))
    return Genotype(tuple(cells), genotype.min_level, genotype.max_level).validate()


def _sums(*cells: tuple[int, int, int]) -> Genotype:
    """A P3..P7 genotype of sum cells ``(input_a, input_b, level)``; the last 5 are outputs."""
    return Genotype(
        tuple(
            MergingCell(a, b, level, "sum", k >= len(cells) - 5)
            for k, (a, b, level) in enumerate(cells)
        )
    ).validate()


def test_key_is_a_stable_hex_string() -> None:
    key = NASFPN.key()
    assert len(key) == 16 and int(key, 16) >= 0
    assert key == "d25cf2387ea87b92"  # keys are stored in ledgers: change only on purpose
    assert Genotype(NASFPN.cells).key() == key


def test_swapping_sum_inputs_keeps_the_key() -> None:
    assert NASFPN.cells[1].op == "sum"
    assert _swap(NASFPN, 1).key() == NASFPN.key()


def test_swapping_global_pool_inputs_at_different_levels_keeps_the_key() -> None:
    # cell 0 is global_pool(P4, P6): the roles follow the levels, not the order
    assert NASFPN.cells[0].op == "global_pool"
    assert _swap(NASFPN, 0).key() == NASFPN.key()


def test_swapping_global_pool_inputs_at_the_same_level_changes_the_key() -> None:
    # nodes 1 (P4) and 2 (a level-4 cell) are both at level 4: input_a is the coarse one
    g = Genotype(
        [(0, 1, 4, "sum", False), (1, 2, 3, "global_pool", True), (3, 2, 4, "sum", True)],
        min_level=3,
        max_level=4,
    ).validate()
    assert _swap(g, 1).key() != g.key()
    assert _replace(g, 1, op="sum").key() == _swap(_replace(g, 1, op="sum"), 1).key()


def test_reordering_independent_intermediate_cells_keeps_the_key() -> None:
    g = _replace(NASFPN, 1, input_b=2)  # cell 1 no longer reads cell 0
    swapped = _reorder(g, [1, 0, 2, 3, 4, 5, 6])
    assert swapped.cells[:2] == (MergingCell(1, 2, 4, "sum", False), NASFPN.cells[0])
    assert swapped != g and swapped.key() == g.key()


def test_changing_op_level_or_input_changes_the_key() -> None:
    variants = [
        NASFPN,
        _replace(NASFPN, 0, op="sum"),
        _replace(NASFPN, 1, level=5),
        _replace(NASFPN, 3, input_a=5),
        _replace(NASFPN, 5, op="sum"),
    ]
    assert len({g.key() for g in variants}) == len(variants)


def test_absorbed_nodes_are_part_of_the_network() -> None:
    # cell 4 (node 9, level 5) reads cell 0 (level 5) and absorbs the unread P5 (node 2) ...
    g = _sums((0, 1, 5), (3, 4, 6), (0, 1, 3), (7, 1, 4), (5, 8, 5), (6, 9, 6), (10, 4, 7))
    assert g.trace()[4].absorbs == (2,)
    # ... or reads P5 and absorbs the unread cell 0
    traded = _replace(g, 4, input_a=2)
    assert traded.trace()[4].absorbs == (5,)
    # sum adds its inputs and the absorbed node alike: the same three summands, the same network
    assert traded.key() == g.key()
    # global_pool gates its inputs and then adds the absorbed node: not the same
    gp, gp_traded = _replace(g, 4, op="global_pool"), _replace(traded, 4, op="global_pool")
    assert gp.key() != gp_traded.key()
    # absorbing nothing is another network again
    assert _replace(g, 1, input_a=2).trace()[4].absorbs == ()
    assert _replace(g, 1, input_a=2).key() != g.key()


def test_duplicated_cells_differ_from_a_reused_node() -> None:
    # cells 0 and 1 are twins (same inputs, level and op): two convs, not one node
    twins = _sums((0, 1, 7), (0, 1, 7), (5, 0, 3), (5, 1, 4), (6, 2, 5), (7, 3, 6), (10, 4, 7))
    reused = _sums((0, 1, 7), (5, 0, 3), (5, 1, 4), (5, 2, 5), (6, 3, 6), (9, 4, 7))
    assert twins.key() != reused.key()
    # which twin a later cell reads matters only up to swapping the twins
    mirrored = _sums((0, 1, 7), (0, 1, 7), (6, 0, 3), (6, 1, 4), (5, 2, 5), (7, 3, 6), (10, 4, 7))
    assert mirrored.key() == twins.key()
    # twin 0 feeding cells 2 and 3 is not twin 0 feeding cell 2 and twin 1 feeding 3 and 4
    # (a plain Merkle hash of each node's inputs cannot tell these apart)
    regrouped = _sums((0, 1, 7), (0, 1, 7), (5, 0, 3), (6, 1, 4), (6, 2, 5), (7, 3, 6), (10, 4, 7))
    assert regrouped.key() != twins.key()


def _brute_force_form(genotype: Genotype) -> tuple:
    """The smallest description over every renumbering of the cells: equal iff isomorphic."""
    labels, inputs = _graph(genotype)
    base, n = genotype.num_inputs, len(labels)
    forms = []
    for perm in itertools.permutations(range(base, n)):
        new = list(range(base)) + list(perm)
        old = {v: u for u, v in enumerate(new)}
        forms.append(
            tuple(
                (labels[old[v]], tuple(sorted((role, new[u]) for role, u in inputs[old[v]])))
                for v in range(n)
            )
        )
    return min(forms)


def test_key_agrees_with_brute_force_isomorphism_on_a_whole_space() -> None:
    space = SearchSpace(
        min_level=3, max_level=4, num_cells=3, num_intermediate=1, intermediate_levels=(3, 4)
    )
    sequences: list[list[int]] = [[]]
    for _ in space.decisions:
        sequences = [[*p, j] for p in sequences for j, ok in enumerate(space.legal(p)) if ok]
    pairs = {(space.decode(s).key(), _brute_force_form(space.decode(s))) for s in sequences}
    keys = {key for key, _ in pairs}
    forms = {form for _, form in pairs}
    assert len(sequences) == 4608
    assert len(keys) == len(forms) == len(pairs) == 656  # a bijection: no merge, no split
