"""Regularized evolution: one-decision mutations that stay legal, tournaments, aging."""

from __future__ import annotations

import random

import pytest

from nasfpn.controller import RegularizedEvolution, make_algorithm, mutate
from nasfpn.space import NASFPN, InvalidGenotypeError, SearchSpace

SPACES = {
    "paper": SearchSpace(),
    "small": SearchSpace(min_level=3, max_level=5, num_cells=4, num_intermediate=1),
    "sum_only": SearchSpace(
        min_level=2, max_level=4, num_cells=3, num_intermediate=0, ops=("sum",)
    ),
}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_mutation_changes_one_decision_to_another_legal_choice(name: str) -> None:
    space = SPACES[name]
    rng = random.Random(0)
    repairs = 0
    for _ in range(2000):
        parent = space.sample(rng)
        child = mutate(space, parent, rng)
        space.decode(child)  # legal
        changed = [t for t, (a, b) in enumerate(zip(parent, child)) if a != b]
        assert len(changed) in (1, 2)
        t = changed[0]
        assert space.legal(child[:t])[child[t]]  # another legal choice of that decision
        if len(changed) == 2:
            # the repair: a later decision the mutation made illegal takes the given-up action
            u = changed[1]
            assert not space.legal(child[:u])[parent[u]]
            assert child[u] == parent[t]
            assert child[t] == parent[u] or space.decisions[t].kind == "input_a"
            repairs += 1
    assert repairs > 0


def test_mutation_swaps_output_levels() -> None:
    space = SPACES["paper"]
    parent = space.encode(NASFPN)
    level_of_first_output = 4 * space.num_intermediate + 2
    # find a mutation of the first output cell's level and check the permutation survives
    for seed in range(500):
        child = mutate(space, parent, random.Random(seed))
        if child[level_of_first_output] != parent[level_of_first_output]:
            levels = [child[4 * k + 2] for k in range(space.num_intermediate, space.num_cells)]
            assert sorted(levels) == list(range(len(space.levels)))
            return
    pytest.fail("no mutation of the first output level in 500 draws")


def test_mutation_of_an_illegal_parent_is_refused() -> None:
    with pytest.raises(InvalidGenotypeError, match="decision 1"):
        mutate(SPACES["paper"], [0, 0] + [0] * 26, random.Random(0))


def test_initial_population_is_random_then_mutants_of_tournament_winners() -> None:
    space = SPACES["small"]
    algorithm = make_algorithm("evolution", space, seed=0, population_size=4)
    first = [algorithm.propose() for _ in range(4)]
    assert [p.origin for p in first] == ["random"] * 4
    for p, reward in zip(first, (0.1, 0.9, 0.3, 0.2)):
        algorithm.feedback(p, reward)
    child = algorithm.propose()
    # sample_size None (= population_size): the tournament always picks the best member
    assert child.origin == "mutation" and child.parent == first[1].id
    diff = sum(a != b for a, b in zip(child.actions, first[1].actions))
    assert diff in (1, 2)


def test_the_oldest_member_dies_not_the_worst() -> None:
    space = SPACES["small"]
    algorithm = make_algorithm("evolution", space, seed=0, population_size=3, sample_size=2)
    proposals = [algorithm.propose() for _ in range(4)]
    for p, reward in zip(proposals, (0.9, 0.1, 0.2, 0.3)):
        algorithm.feedback(p, reward)
    assert [m.id for m in algorithm.population] == [1, 2, 3]  # the best (id 0) aged out
    assert [m.reward for m in algorithm.population] == [0.1, 0.2, 0.3]
    d = algorithm.diagnostics()
    assert d["population"] == 3 and d["population_best_reward"] == 0.3
    assert d["population_mean_reward"] == pytest.approx(0.2)


def test_random_until_something_was_fed_back() -> None:
    algorithm = make_algorithm("evolution", SPACES["small"], population_size=2, sample_size=1)
    # many outstanding, none fed back: nothing to mutate yet, so proposals stay random
    assert {algorithm.propose().origin for _ in range(5)} == {"random"}
    assert algorithm.diagnostics()["random_proposals"] == 5


def test_class_defaults_are_the_documented_ones() -> None:
    algorithm = RegularizedEvolution(SPACES["small"])
    assert (algorithm.config.population_size, algorithm.config.sample_size) == (20, None)
