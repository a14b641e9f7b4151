"""Regularized (aging) evolution (Real et al. 2019, "Regularized Evolution for Image Classifier
Architecture Search", algorithm 1).

The first ``population_size`` proposals are random. After that each proposal is a mutant of a
tournament winner: sample ``sample_size`` members of the population uniformly without
replacement, take the one with the highest reward, and :func:`mutate` one of its decisions.
Every architecture that gets feedback joins the population and, once it is full, the *oldest*
member (the earliest fed back) leaves, whatever its reward: aging, the "regularized" part.
With many proposals outstanding, parents are drawn from the members fed back so far.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from nasfpn.controller.base import Algorithm, Proposal, python_rng_state, set_python_rng_state
from nasfpn.controller.options import check_number
from nasfpn.space import SearchSpace


@dataclass(frozen=True)
class EvolutionConfig:
    """Regularized-evolution options; the defaults were tuned on ``nasfpn bench-search``.

    - ``population_size``: P, the members kept (and the number of initial random proposals);
    - ``sample_size``: S, the tournament size, at most P; None means P (the tournament then
      always picks the best living member, which aging still removes in time).
    """

    population_size: int = 20
    sample_size: int | None = None

    def __post_init__(self) -> None:
        check_number(self, "population_size", int, low=2)
        check_number(self, "sample_size", int, low=1, high=self.population_size, optional=True)


@dataclass(frozen=True)
class Member:
    """One member of the population: a proposal's id, its actions and its reward."""

    id: int
    actions: tuple[int, ...]
    reward: float


def mutate(space: SearchSpace, actions: Sequence[int], rng: random.Random) -> list[int]:
    """Change exactly one decision of ``actions`` to another legal choice.

    The decision is drawn uniformly among those that have another legal choice given the
    decisions before them, and its new action uniformly among those other choices (Real et al.
    2019 mutate one hidden-state input or one op). A later decision that the change made illegal
    is re-legalised: it takes the action the mutated decision gave up if that is legal now,
    else a uniformly random legal one. In the paper's space this is always a swap: an output
    cell that moves to a level a later output cell had hands that cell its old level, and an
    ``input_a`` that moves onto its cell's ``input_b`` hands ``input_b`` its old node.
    """
    child = [int(a) for a in actions]
    space.decode(child)  # raises InvalidGenotypeError naming the first illegal action
    masks = [space.legal(child[:t]) for t in range(len(child))]
    candidates = [t for t, mask in enumerate(masks) if sum(mask) > 1]
    t = rng.choice(candidates)
    old = child[t]
    child[t] = rng.choice([j for j, ok in enumerate(masks[t]) if ok and j != old])
    for u in range(t + 1, len(child)):
        mask = space.legal(child[:u])
        if not mask[child[u]]:
            legal = [j for j, ok in enumerate(mask) if ok]
            child[u] = old if old in legal else rng.choice(legal)
    return child


class RegularizedEvolution(Algorithm):
    """Aging evolution with tournament selection and one-decision mutations."""

    name: ClassVar[str] = "evolution"
    Config: ClassVar[type] = EvolutionConfig
    config: EvolutionConfig

    def __init__(self, space: SearchSpace, seed: int = 0, config: EvolutionConfig | None = None):
        super().__init__(space, seed, config if config is not None else EvolutionConfig())
        self._rng = random.Random(seed)
        self._population: deque[Member] = deque()
        self._num_random = 0
        self._num_mutations = 0

    @property
    def population(self) -> tuple[Member, ...]:
        """The current members, oldest first."""
        return tuple(self._population)

    def _propose(self) -> tuple[Sequence[int], dict[str, Any]]:
        if self._num_random < self.config.population_size or not self._population:
            self._num_random += 1
            return self.space.sample(self._rng), {"origin": "random"}
        size = min(self.config.sample_size or self.config.population_size, len(self._population))
        contenders = self._rng.sample(range(len(self._population)), size)
        parent = max((self._population[i] for i in contenders), key=lambda m: m.reward)
        self._num_mutations += 1
        child = mutate(self.space, parent.actions, self._rng)
        return child, {"origin": "mutation", "parent": parent.id}

    def _learn(self, proposal: Proposal, reward: float) -> None:
        self._population.append(Member(proposal.id, proposal.actions, reward))
        if len(self._population) > self.config.population_size:
            self._population.popleft()  # the oldest dies, not the worst

    def _diagnostics(self) -> dict[str, float]:
        rewards = [m.reward for m in self._population]
        return {
            "population": float(len(rewards)),
            "population_mean_reward": sum(rewards) / len(rewards) if rewards else math.nan,
            "population_best_reward": max(rewards) if rewards else math.nan,
            "random_proposals": float(self._num_random),
            "mutations": float(self._num_mutations),
        }

    def _state(self) -> dict[str, Any]:
        return {
            "rng": python_rng_state(self._rng),
            "population": [[m.id, list(m.actions), m.reward] for m in self._population],
            "num_random": self._num_random,
            "num_mutations": self._num_mutations,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        set_python_rng_state(self._rng, state["rng"])
        self._population = deque(
            Member(int(i), tuple(int(a) for a in acts), float(r))
            for i, acts, r in state["population"]
        )
        self._num_random = int(state["num_random"])
        self._num_mutations = int(state["num_mutations"])
