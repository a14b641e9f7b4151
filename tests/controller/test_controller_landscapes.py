"""Known-optimum reward functions: values by hand, determinism, random search's exact odds."""

from __future__ import annotations

import random

import pytest

from nasfpn.controller import MatchLandscape, NKLandscape, make_landscape
from nasfpn.space import NASFPN, SearchSpace

PAPER = SearchSpace()
SMALL = SearchSpace(min_level=3, max_level=5, num_cells=4, num_intermediate=1)
TINY = SearchSpace(min_level=3, max_level=4, num_cells=3, num_intermediate=1)


def test_match_targets_the_published_cell_in_the_paper_space() -> None:
    landscape = make_landscape("match", PAPER)
    target = PAPER.encode(NASFPN)
    assert landscape.target == tuple(target)
    assert landscape(target) == 1.0
    changed = list(target)
    changed[3] = 1 - changed[3]  # flip cell 0's op
    changed[27] = 1 - changed[27]  # and the last cell's
    assert landscape(changed) == 26 / 28
    assert "published NAS-FPN" in landscape.describe()


def test_match_targets_a_seeded_random_sequence_elsewhere() -> None:
    a, b = MatchLandscape(SMALL, seed=0), MatchLandscape(SMALL, seed=1)
    assert a.target == MatchLandscape(SMALL, seed=0).target != b.target
    assert a(a.target) == 1.0 and "random sequence" in a.describe()


def test_nk_is_deterministic_rugged_and_maximal_at_its_target() -> None:
    landscape = NKLandscape(PAPER, seed=4)
    again = NKLandscape(PAPER, seed=4)
    rng = random.Random(0)
    samples = [PAPER.sample(rng) for _ in range(300)]
    values = [landscape(s) for s in samples]
    assert values == [again(s) for s in samples]
    assert landscape(landscape.target) == 1.0
    assert all(0.0 <= v < 1.0 for v in values)
    assert 0.4 < sum(values) / len(values) < 0.6
    assert NKLandscape(PAPER, seed=5).target != landscape.target
    # partners lie in other cells; k=2 by default
    for i, group in enumerate(landscape.partners):
        assert group[0] == i and len(group) == 3
        assert all(PAPER.decisions[j].cell != PAPER.decisions[i].cell for j in group[1:])


def test_nk_contribution_depends_only_on_the_decision_and_its_partners() -> None:
    landscape = NKLandscape(SMALL, seed=0, k=1)
    actions = SMALL.sample(random.Random(1))
    i = 5
    group = set(landscape.partners[i])
    other = next(j for j in range(len(actions)) if j not in group and j % 4 == 3)  # an op
    changed = list(actions)
    changed[other] = 1 - changed[other]
    assert landscape.contribution(i, changed) == landscape.contribution(i, actions)
    assert landscape.contribution(i, landscape.target) == 1.0


@pytest.mark.parametrize("k", [-1, 13, 2.0, True])
def test_nk_k_out_of_range_is_refused(k: object) -> None:
    with pytest.raises(ValueError, match=r"k=.*expected an int from 0 to 12"):
        NKLandscape(SMALL, k=k)  # type: ignore[arg-type]


def test_unknown_landscape_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown landscape 'rugged'; expected one of match, nk"):
        make_landscape("rugged", PAPER)


def test_random_search_probability_equals_exhaustive_enumeration() -> None:
    landscape = MatchLandscape(TINY, seed=2)
    outcomes: list[tuple[float, float]] = []

    def walk(prefix: list[int], probability: float) -> None:
        if len(prefix) == len(TINY.decisions):
            outcomes.append((probability, landscape(prefix)))
            return
        legal = [j for j, ok in enumerate(TINY.legal(prefix)) if ok]
        for j in legal:
            walk([*prefix, j], probability / len(legal))

    walk([], 1.0)
    for threshold in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0):
        exact = sum(p for p, r in outcomes if r >= threshold)
        assert landscape.random_search_probability(threshold) == pytest.approx(exact, rel=1e-9)


def test_random_search_probability_agrees_with_sampling_in_the_paper_space() -> None:
    landscape = MatchLandscape(PAPER)
    rng = random.Random(0)
    n = 20000
    hits = sum(landscape(PAPER.sample(rng)) >= 0.5 for _ in range(n))
    p = landscape.random_search_probability(0.5)
    assert abs(hits / n - p) < 5 * (p * (1 - p) / n) ** 0.5
    assert landscape.random_search_probability(0.9) < 1e-12
