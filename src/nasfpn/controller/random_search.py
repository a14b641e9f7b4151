"""Random search: every proposal uniform over the legal choices of each decision in turn.

The baseline every NAS method must beat (Li & Talwalkar 2019; Real et al. 2019 section 4).
Each decision is drawn uniformly among its legal choices given the earlier ones
(:meth:`nasfpn.space.SearchSpace.sample`), so architectures are not exactly uniform over the
space, which is how a controller with a flat policy would sample too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from nasfpn.controller.base import Algorithm, Proposal, python_rng_state, set_python_rng_state
from nasfpn.space import SearchSpace


@dataclass(frozen=True)
class RandomConfig:
    """Random search has no options."""


class RandomSearch(Algorithm):
    """Propose uniformly random legal action sequences; feedback changes nothing."""

    name: ClassVar[str] = "random"
    Config: ClassVar[type] = RandomConfig

    def __init__(self, space: SearchSpace, seed: int = 0, config: RandomConfig | None = None):
        super().__init__(space, seed, config if config is not None else RandomConfig())
        self._rng = random.Random(seed)

    def _propose(self) -> tuple[Sequence[int], dict[str, Any]]:
        return self.space.sample(self._rng), {"origin": "random"}

    def _learn(self, proposal: Proposal, reward: float) -> None:
        pass

    def _state(self) -> dict[str, Any]:
        return {"rng": python_rng_state(self._rng)}

    def _load_state(self, state: dict[str, Any]) -> None:
        set_python_rng_state(self._rng, state["rng"])
