"""The LSTM policy: legal samples, exact log-probabilities, no global RNG."""

from __future__ import annotations

import math
import random

import pytest
import torch

from nasfpn.controller import LSTMPolicy
from nasfpn.space import SearchSpace

SPACES = {
    "paper": SearchSpace(),
    "small": SearchSpace(min_level=3, max_level=5, num_cells=4, num_intermediate=1),
    "sum_only": SearchSpace(
        min_level=2, max_level=4, num_cells=3, num_intermediate=0, ops=("sum",)
    ),
    "large": SearchSpace(num_cells=10, num_intermediate=5),
}


def _policy(space: SearchSpace, seed: int = 0, **kwargs) -> LSTMPolicy:
    return LSTMPolicy(
        space, hidden_size=16, generator=torch.Generator().manual_seed(seed), **kwargs
    )


@pytest.mark.parametrize("name", sorted(SPACES))
def test_thousands_of_samples_are_all_legal(name: str) -> None:
    space = SPACES[name]
    # a sharp policy (no tanh, low temperature) pushes mass towards illegal choices if masking
    # were wrong
    policy = _policy(space, temperature=0.05, tanh_constant=None)
    samples = policy.sample(2000, torch.Generator().manual_seed(1))
    assert samples.actions.shape == (2000, len(space.decisions))
    for actions in samples.actions.tolist():
        space.decode(actions)  # raises InvalidGenotypeError on any illegal action
    assert torch.isfinite(samples.logp).all()


@pytest.mark.parametrize("name", ["paper", "small"])
def test_recorded_log_probs_equal_a_recomputation(name: str) -> None:
    space = SPACES[name]
    policy = _policy(space, tanh_constant=2.5)
    samples = policy.sample(64, torch.Generator().manual_seed(2))
    logp, entropy = policy.evaluate(samples.actions, samples.masks)
    torch.testing.assert_close(logp, samples.logp, atol=1e-5, rtol=0)
    torch.testing.assert_close(entropy, samples.entropy, atol=1e-5, rtol=0)
    # masks recomputed from the actions alone are those seen while sampling
    assert torch.equal(policy.masks(samples.actions.tolist()), samples.masks)


def test_log_prob_is_the_sum_of_hand_computed_step_probabilities() -> None:
    space = SPACES["small"]
    policy = _policy(space, temperature=1.5, tanh_constant=2.0)
    actions = torch.tensor([space.sample(random.Random(3))])
    masks = policy.masks(actions.tolist())
    # step by step, by hand: LSTM over the embedded previous actions, logits, mask, softmax
    x, state, expected = policy.start + policy.position[0], None, 0.0
    for t, group in enumerate(policy.groups):
        out, state = policy.lstm(x.unsqueeze(0), state)
        logits = policy.heads[group](out[0])[0]
        logits = torch.nn.functional.pad(logits, (0, policy.width - len(logits)))
        logits = 2.0 * torch.tanh((logits + policy.decision_bias[t]) / 1.5)
        legal = masks[0, t]
        probs = torch.softmax(logits[legal], dim=0)
        expected += math.log(probs[legal[: actions[0, t] + 1].sum() - 1].item())
        x = policy.embed[group](actions[:, t]) + policy.position[min(t + 1, len(policy.groups) - 1)]
    logp, _ = policy.evaluate(actions, masks)
    assert logp.item() == pytest.approx(expected, abs=1e-5)


def test_illegal_choices_have_zero_probability_and_entropy_counts_legal_ones() -> None:
    space = SPACES["paper"]
    policy = _policy(space, tanh_constant=None)
    h = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(3, policy.width, dtype=torch.bool)
    mask[:, :2] = True  # two legal choices
    lp = policy.log_probs(h, 0, mask)
    assert torch.all(lp[:, 2:] == -math.inf)
    torch.testing.assert_close(lp[:, :2].exp().sum(1), torch.ones(3))
    uniform = _policy(space, init_range=0.0)  # all weights zero: a uniform policy
    samples = uniform.sample(1, torch.Generator().manual_seed(0))
    widths = samples.masks[0].sum(1).double()
    assert samples.entropy.item() == pytest.approx(widths.log().sum().item(), rel=1e-5)
    assert samples.logp.item() == pytest.approx(-widths.log().sum().item(), rel=1e-5)


def test_sampling_uses_only_the_given_generator() -> None:
    policy = _policy(SPACES["small"])
    torch.manual_seed(0)
    a = policy.sample(8, torch.Generator().manual_seed(5)).actions
    torch.manual_seed(123)  # the global RNG does not matter
    b = policy.sample(8, torch.Generator().manual_seed(5)).actions
    assert torch.equal(a, b)
    assert not torch.equal(a, policy.sample(8, torch.Generator().manual_seed(6)).actions)
    # initialisation too comes from the generator alone
    torch.manual_seed(99)
    same = _policy(SPACES["small"])
    for p, q in zip(policy.parameters(), same.parameters()):
        assert torch.equal(p, q)


def test_gradients_flow_and_are_finite_with_masks() -> None:
    space = SPACES["paper"]
    policy = _policy(space, tanh_constant=5.0)
    samples = policy.sample(16, torch.Generator().manual_seed(0))
    logp, entropy = policy.evaluate(samples.actions, samples.masks)
    (logp.mean() + entropy.mean()).backward()
    grads = [p.grad for p in policy.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_position_and_decision_bias_can_be_turned_off() -> None:
    policy = _policy(SPACES["small"], position=False, decision_bias=False)
    assert not policy.position.requires_grad and not policy.decision_bias.requires_grad
    assert not policy.position.any() and not policy.decision_bias.any()
