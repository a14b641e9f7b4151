"""Every algorithm: determinism, state round trips, out-of-order feedback, load errors."""

from __future__ import annotations

import io
import random

import pytest
import torch

from nasfpn.controller import ALGORITHMS, Algorithm, MatchLandscape, make_algorithm
from nasfpn.space import SearchSpace

SPACE = SearchSpace()
# small batches and population so that a short run crosses several updates / generations
OPTIONS = {
    "reinforce": {"batch_size": 4},
    "ppo": {"batch_size": 4},
    "random": {},
    "evolution": {"population_size": 6, "sample_size": 3},
}
REWARD = MatchLandscape(SPACE)


def _make(name: str, seed: int = 0) -> Algorithm:
    return make_algorithm(name, SPACE, seed=seed, **OPTIONS[name])


def _drive(algorithm: Algorithm, steps: int, order_seed: int = 0) -> list[tuple]:
    """Keep 3 proposals outstanding; feed back a random one of them each step."""
    order = random.Random(order_seed)
    running, seen = [], []
    for _ in range(steps):
        while len(running) < 3:
            p = algorithm.propose()
            running.append(p)
            seen.append((p.id, p.actions, p.logp, p.parent, p.origin))
        p = running.pop(order.randrange(len(running)))
        algorithm.feedback(p, REWARD(p.actions))
    return seen


def _save_load(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_same_seed_and_feedback_give_the_same_proposals(name: str) -> None:
    torch.manual_seed(0)
    random.seed(0)
    first = _drive(_make(name, seed=7), 30)
    torch.manual_seed(1)  # global RNG state must not matter
    random.seed(1)
    assert _drive(_make(name, seed=7), 30) == first
    assert _drive(_make(name, seed=8), 30) != first


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_state_saved_mid_run_continues_identically(name: str) -> None:
    algorithm = _make(name, seed=3)
    _drive(algorithm, 13)  # mid-batch / mid-generation, with proposals outstanding
    outstanding = algorithm.outstanding
    assert outstanding
    state = _save_load(algorithm.state_dict())  # through torch.save / weights_only load
    fresh = _make(name, seed=99)  # another seed: the state carries the RNG
    fresh.load_state_dict(state)
    assert fresh.outstanding == outstanding
    assert fresh.diagnostics() == pytest.approx(algorithm.diagnostics(), nan_ok=True)
    # both finish the outstanding proposals the same way, then keep proposing alike
    for p, q in zip(algorithm.outstanding, fresh.outstanding):
        algorithm.feedback(p, REWARD(p.actions))
        fresh.feedback(q, REWARD(q.actions))
    assert _drive(fresh, 20, order_seed=5) == _drive(algorithm, 20, order_seed=5)


def test_policy_state_holds_only_weights_only_types() -> None:
    algorithm = _make("ppo")
    _drive(algorithm, 9)
    allowed = (torch.Tensor, int, float, str, type(None), bool)

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                assert isinstance(k, str | int)
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)
        else:
            assert isinstance(value, allowed), type(value)

    walk(algorithm.state_dict())


@pytest.mark.parametrize("name", ["reinforce", "ppo"])
def test_policy_updates_every_batch_size_feedbacks(name: str) -> None:
    algorithm = make_algorithm(name, SPACE, seed=0, batch_size=5)
    proposals = [algorithm.propose() for _ in range(12)]
    for p in reversed(proposals[:9]):  # out of order
        algorithm.feedback(p, REWARD(p.actions))
    d = algorithm.diagnostics()
    assert d["updates"] == 1.0 and d["outstanding"] == 3.0
    for key in ("baseline", "advantage_mean", "advantage_std", "policy_entropy", "loss"):
        assert d[key] == d[key], key  # not NaN after an update
    if name == "ppo":
        assert 0.0 <= d["clip_fraction"] <= 1.0 and d["approx_kl"] == d["approx_kl"]


def test_policy_update_scores_the_stored_actions_not_new_samples() -> None:
    algorithm = make_algorithm("reinforce", SPACE, seed=0, batch_size=3)
    proposals = [algorithm.propose() for _ in range(3)]
    seen = []
    original = algorithm.policy.evaluate

    def spy(actions, masks):
        seen.append(actions.tolist())
        return original(actions, masks)

    algorithm.policy.evaluate = spy  # type: ignore[method-assign]
    for p in (proposals[2], proposals[0], proposals[1]):
        algorithm.feedback(p, 0.5)
    assert seen == [[list(proposals[i].actions) for i in (2, 0, 1)]]


def test_stale_samples_are_dropped_at_an_update() -> None:
    algorithm = make_algorithm("reinforce", SPACE, seed=0, batch_size=4)
    first = [algorithm.propose() for _ in range(4)]
    extra = algorithm.propose()  # the first of a second sampled batch
    for p in first:
        algorithm.feedback(p, REWARD(p.actions))
    # the second batch was sampled by the old policy: the next proposal comes from the new one
    nxt = algorithm.propose()
    logp, _ = algorithm.policy.evaluate(
        torch.tensor([nxt.actions]), algorithm.policy.masks([nxt.actions])
    )
    assert nxt.logp == pytest.approx(logp.item(), abs=1e-5)
    assert extra in algorithm.outstanding


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"algorithm": "ppo"}, "its algorithm is 'ppo'"),
        ({"config": {"batch_size": 99}}, "its config is"),
        ({"space": {"num_cells": 4}}, "its space is"),
        ({"format_version": 0}, "its format_version is 0"),
    ],
)
def test_loading_a_mismatched_state_is_refused(change: dict, match: str) -> None:
    algorithm = _make("reinforce")
    state = {**algorithm.state_dict(), **change}
    with pytest.raises(ValueError, match=match):
        _make("reinforce").load_state_dict(state)


def test_loading_something_that_is_not_a_state_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot load this state"):
        _make("random").load_state_dict([1, 2])  # type: ignore[arg-type]
