"""The propose/feedback contract every algorithm shares: rewards, proposals, bookkeeping."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from nasfpn.controller import (
    ALGORITHMS,
    FeedbackError,
    Proposal,
    RandomSearch,
    check_reward,
    make_algorithm,
)
from nasfpn.space import SearchSpace

SPACE = SearchSpace()
SMALL = SearchSpace(min_level=3, max_level=5, num_cells=4, num_intermediate=1)


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf, "0.3", True, b"1", [0.3]])
def test_rewards_that_are_not_finite_numbers_are_refused(bad: object) -> None:
    algorithm = make_algorithm("random", SPACE)
    proposal = algorithm.propose()
    with pytest.raises(FeedbackError, match=r"expected a finite real number.*discard"):
        algorithm.feedback(proposal, bad)  # type: ignore[arg-type]
    # the algorithm is unchanged: the proposal is still outstanding and can be fed back
    assert algorithm.outstanding == (proposal,)
    algorithm.feedback(proposal, 0.25)
    assert algorithm.diagnostics()["feedbacks"] == 1.0


def test_a_failing_conversion_is_refused() -> None:
    class Broken:
        def __float__(self) -> float:
            raise ValueError("no number here")

    with pytest.raises(FeedbackError, match="Broken"):
        check_reward(Broken())


@pytest.mark.parametrize(
    "good", [0, 1, 0.5, -2.0, np.float32(0.25), np.int64(1), torch.tensor(0.5), torch.tensor([3])]
)
def test_numpy_and_tensor_rewards_are_accepted(good: object) -> None:
    assert check_reward(good) == float(good)  # type: ignore[arg-type]


def test_error_messages_name_the_proposal_and_the_value() -> None:
    algorithm = make_algorithm("random", SPACE)
    proposal = algorithm.propose()
    with pytest.raises(FeedbackError, match=r"reward nan for proposal id=0"):
        algorithm.feedback(proposal, math.nan)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_feedback_twice_is_refused(name: str) -> None:
    algorithm = make_algorithm(name, SMALL, batch_size=2) if name in ("reinforce", "ppo") else (
        make_algorithm(name, SMALL))  # fmt: skip
    proposal = algorithm.propose()
    algorithm.feedback(proposal, 0.5)
    with pytest.raises(FeedbackError, match="already given"):
        algorithm.feedback(proposal, 0.5)
    with pytest.raises(FeedbackError, match="already given"):
        algorithm.discard(proposal)


def test_proposals_of_another_algorithm_are_refused() -> None:
    mine, other = make_algorithm("random", SPACE, seed=0), make_algorithm("random", SPACE, seed=1)
    mine.propose()
    foreign = other.propose()  # the same id (0) but other actions
    with pytest.raises(FeedbackError, match="another algorithm instance"):
        mine.feedback(foreign, 0.1)
    other.propose()
    never = other.propose()  # id 2: mine never proposed it
    with pytest.raises(FeedbackError, match="never proposed"):
        mine.feedback(never, 0.1)
    with pytest.raises(FeedbackError, match="not a Proposal"):
        mine.feedback("proposal 0", 0.1)  # type: ignore[arg-type]
    with pytest.raises(FeedbackError, match="not a Proposal"):
        mine.feedback(None, 0.1)  # type: ignore[arg-type]


def test_proposal_fields_and_dict_round_trip() -> None:
    algorithm = make_algorithm("reinforce", SPACE, seed=0)
    first, second = algorithm.propose(), algorithm.propose()
    assert (first.id, second.id) == (0, 1)
    assert first.genotype == SPACE.decode(first.actions)
    assert first.key == first.genotype.key()
    assert first.origin == "policy" and first.parent is None
    assert isinstance(first.logp, float) and first.logp < 0
    assert Proposal.from_dict(first.to_dict(), SPACE) == first


def test_out_of_order_feedback_and_discard() -> None:
    algorithm = make_algorithm("evolution", SPACE, seed=0, population_size=4, sample_size=2)
    proposals = [algorithm.propose() for _ in range(6)]
    assert [p.id for p in algorithm.outstanding] == [0, 1, 2, 3, 4, 5]
    for i in (4, 1, 5, 0):
        algorithm.feedback(proposals[i], i / 10)
    algorithm.discard(proposals[3])
    assert [p.id for p in algorithm.outstanding] == [2]
    assert [m.id for m in algorithm.population] == [4, 1, 5, 0]  # join in feedback order
    d = algorithm.diagnostics()
    assert (d["feedbacks"], d["discarded"], d["outstanding"], d["proposals"]) == (4, 1, 1, 6)
    assert d["best_reward"] == 0.5


def test_diagnostics_before_and_after_feedback() -> None:
    algorithm = make_algorithm("random", SPACE, seed=0)
    d = algorithm.diagnostics()
    assert d["proposals"] == 0 and math.isnan(d["unique_fraction"]) and math.isnan(d["best_reward"])
    for _ in range(5):
        algorithm.feedback(algorithm.propose(), 0.5)
    d = algorithm.diagnostics()
    assert d["unique"] == 5 and d["unique_fraction"] == 1.0
    assert all(isinstance(v, float) for v in d.values())


def test_unique_fraction_counts_networks_not_sequences() -> None:
    class Repeats(RandomSearch):
        """Proposes one network as two sequences: the inputs of a sum cell swapped."""

        def _propose(self):
            actions = SPACE.sample(random.Random(0))
            actions[3] = SPACE.ops.index("sum")
            if self._next_id % 2:
                actions[0], actions[1] = actions[1], actions[0]
            return actions, {"origin": "random"}

    algorithm = Repeats(SPACE)
    a, b = algorithm.propose(), algorithm.propose()
    assert a.actions != b.actions and a.key == b.key
    assert algorithm.diagnostics()["unique_fraction"] == 0.5


def test_constructor_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="SearchSpace"):
        RandomSearch("paper")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed="):
        RandomSearch(SPACE, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed="):
        RandomSearch(SPACE, seed=True)
