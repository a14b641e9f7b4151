"""Learning on a toy reward within seconds: the mean reward rises clearly."""

from __future__ import annotations

import statistics

import pytest

from nasfpn.controller import MatchLandscape, make_algorithm
from nasfpn.space import SearchSpace

SMALL = SearchSpace(min_level=3, max_level=5, num_cells=4, num_intermediate=1)


@pytest.mark.parametrize("name", ["reinforce", "ppo", "evolution"])
def test_mean_reward_rises_on_the_match_landscape(name: str) -> None:
    reward = MatchLandscape(SMALL, seed=0)  # 16 decisions
    algorithm = make_algorithm(name, SMALL, seed=0)
    rewards = []
    for _ in range(400):
        proposal = algorithm.propose()
        rewards.append(reward(proposal.actions))
        algorithm.feedback(proposal, rewards[-1])
    # the first 20 are (nearly) random; random search averages 0.35 here
    first, last = statistics.fmean(rewards[:20]), statistics.fmean(rewards[-100:])
    assert first < 0.45 and last > 0.7 and last > first + 0.3, (first, last)
    assert max(rewards) >= 13 / 16


def test_random_search_does_not_learn() -> None:
    reward = MatchLandscape(SMALL, seed=0)
    algorithm = make_algorithm("random", SMALL, seed=0)
    rewards = []
    for _ in range(400):
        proposal = algorithm.propose()
        rewards.append(reward(proposal.actions))
        algorithm.feedback(proposal, rewards[-1])
    assert abs(statistics.fmean(rewards[:200]) - statistics.fmean(rewards[200:])) < 0.05


@pytest.mark.parametrize("name", ["reinforce", "ppo"])
def test_policy_entropy_falls_as_the_policy_learns(name: str) -> None:
    reward = MatchLandscape(SMALL, seed=0)
    algorithm = make_algorithm(name, SMALL, seed=0)
    algorithm.propose()
    start = algorithm.diagnostics()["policy_entropy"]
    for _ in range(300):
        proposal = algorithm.propose()
        algorithm.feedback(proposal, reward(proposal.actions))
    d = algorithm.diagnostics()
    assert d["policy_entropy"] < 0.6 * start
    assert d["updates"] >= 29 and d["unique_fraction"] < 1.0
