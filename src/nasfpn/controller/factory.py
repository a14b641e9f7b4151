"""``make_algorithm``: build a search algorithm by name, with checked options."""

from __future__ import annotations

from typing import Any

from nasfpn.controller.base import Algorithm
from nasfpn.controller.evolution import RegularizedEvolution
from nasfpn.controller.options import build_config
from nasfpn.controller.ppo import PPO
from nasfpn.controller.random_search import RandomSearch
from nasfpn.controller.reinforce import Reinforce
from nasfpn.space import SearchSpace

ALGORITHMS: dict[str, type[Algorithm]] = {
    "reinforce": Reinforce,
    "ppo": PPO,
    "random": RandomSearch,
    "evolution": RegularizedEvolution,
}
"""Every algorithm by name; each class's options are the fields of its ``Config`` dataclass."""


def make_algorithm(name: str, space: SearchSpace, seed: int = 0, **options: Any) -> Algorithm:
    """A fresh algorithm over ``space``, its randomness seeded by ``seed``.

    ``options`` are the fields of the algorithm's config dataclass (``ReinforceConfig``,
    ``PPOConfig``, ``EvolutionConfig``; random search has none). An unknown name or option
    raises ``ValueError`` listing the allowed ones; a bad value raises naming its range.

    >>> from nasfpn.space import SearchSpace
    >>> algorithm = make_algorithm("ppo", SearchSpace(), seed=0, batch_size=20)
    >>> proposal = algorithm.propose()
    >>> algorithm.feedback(proposal, 0.31)
    """
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; expected one of {', '.join(ALGORITHMS)}")
    cls = ALGORITHMS[name]
    config = build_config(cls.Config, options, name)
    return cls(space, seed=seed, config=config)


def algorithm_options(name: str) -> dict[str, Any]:
    """The options of algorithm ``name`` with their defaults."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; expected one of {', '.join(ALGORITHMS)}")
    import dataclasses

    return dataclasses.asdict(ALGORITHMS[name].Config())
