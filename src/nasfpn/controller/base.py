"""The interface every search algorithm shares: ``propose()`` a genotype, ``feedback()`` a reward.

A search algorithm has two verbs (Ray Tune's ``Searcher.suggest``/``on_trial_complete``,
pyglove's ``DNAGenerator.propose``/``feedback``). Here they are :meth:`Algorithm.propose` and
:meth:`Algorithm.feedback`, plus :meth:`Algorithm.discard` for a trial that produced no reward.
Many proposals may be outstanding at once and their feedback may arrive in any order, as it
does from a cluster of workers. This module knows nothing of Ray or of training.

The base class keeps the bookkeeping every algorithm needs (proposal ids, the outstanding
proposals, the unique architectures seen, checks on rewards) and its part of the state dict;
subclasses implement :meth:`Algorithm._propose`, :meth:`Algorithm._learn` and their own state.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from nasfpn.space import Genotype, SearchSpace

STATE_FORMAT_VERSION = 1
"""Bumped when the layout of :meth:`Algorithm.state_dict` changes incompatibly."""


class FeedbackError(ValueError):
    """A reward or a proposal that an algorithm cannot learn from (the message says why)."""


@dataclass(frozen=True)
class Proposal:
    """One architecture proposed by an algorithm, and what it needs to learn from it later.

    ``id`` is unique within one algorithm instance (a counter, kept across
    :meth:`Algorithm.state_dict` round trips). ``actions`` are the space's decisions,
    ``genotype`` is ``space.decode(actions)`` and ``key`` its canonical ``genotype.key()``.
    ``logp`` is the policy's log-probability of exactly these actions when they were sampled
    (policy methods; PPO's ``old_logp``), ``parent`` the id of the proposal that evolution
    mutated, and ``origin`` says how the proposal was made (``"policy"``, ``"random"`` or
    ``"mutation"``).
    """

    id: int
    actions: tuple[int, ...]
    genotype: Genotype
    key: str
    origin: str
    logp: float | None = None
    parent: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a state dict or a ledger (the genotype is implied by the actions)."""
        return {
            "id": self.id,
            "actions": list(self.actions),
            "key": self.key,
            "origin": self.origin,
            "logp": self.logp,
            "parent": self.parent,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any], space: SearchSpace) -> Proposal:
        """Rebuild a proposal from :meth:`to_dict` output; the genotype is decoded again."""
        actions = tuple(int(a) for a in doc["actions"])
        return cls(
            id=int(doc["id"]),
            actions=actions,
            genotype=space.decode(actions),
            key=str(doc["key"]),
            origin=str(doc["origin"]),
            logp=None if doc["logp"] is None else float(doc["logp"]),
            parent=None if doc["parent"] is None else int(doc["parent"]),
        )


class Algorithm(ABC):
    """A search algorithm over a :class:`~nasfpn.space.SearchSpace`.

    Construct one with :func:`nasfpn.controller.make_algorithm`. All randomness comes from
    generators seeded by ``seed`` (never the global RNG), so the same seed and the same calls
    (proposals, feedback in the same order) give the same proposals, and an algorithm loaded
    from :meth:`state_dict` continues exactly as the saved one would have.
    """

    name: ClassVar[str]
    """The name :func:`~nasfpn.controller.make_algorithm` knows the algorithm by."""
    Config: ClassVar[type]
    """The options dataclass; ``make_algorithm``'s keyword arguments are its fields."""

    def __init__(self, space: SearchSpace, seed: int, config: Any) -> None:
        if not isinstance(space, SearchSpace):
            raise TypeError(
                f"space={space!r}: expected a nasfpn.space.SearchSpace, e.g. SearchSpace() for "
                "the paper's space"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed={seed!r}: expected an int, e.g. seed=0")
        self.space = space
        self.seed = seed
        self.config = config
        self._next_id = 0
        self._outstanding: dict[int, Proposal] = {}
        self._keys: set[str] = set()
        self._num_feedback = 0
        self._num_discarded = 0
        self._best_reward = -math.inf

    # -- the two verbs -------------------------------------------------------------------------

    def propose(self) -> Proposal:
        """The next architecture to evaluate; it stays outstanding until its feedback."""
        actions, extras = self._propose()
        actions = tuple(actions)
        genotype = self.space.decode(actions)
        proposal = Proposal(self._next_id, actions, genotype, genotype.key(), **extras)
        self._next_id += 1
        self._outstanding[proposal.id] = proposal
        self._keys.add(proposal.key)
        return proposal

    def feedback(self, proposal: Proposal, reward: float) -> None:
        """Learn from the reward of an outstanding proposal (any order, once each).

        Raises :class:`FeedbackError` for a reward that is not a finite real number (None,
        NaN, inf, a string) and for a proposal that is not outstanding; the algorithm is
        unchanged then.
        """
        value = check_reward(reward, proposal)
        self._take(proposal)
        self._num_feedback += 1
        self._best_reward = max(self._best_reward, value)
        self._learn(proposal, value)

    def discard(self, proposal: Proposal) -> None:
        """Forget an outstanding proposal without learning from it (its trial failed)."""
        self._take(proposal)
        self._num_discarded += 1

    @property
    def num_proposals(self) -> int:
        """How many proposals were made so far (the next proposal's ``id``)."""
        return self._next_id

    @property
    def outstanding(self) -> tuple[Proposal, ...]:
        """The proposals still waiting for feedback, oldest first (kept by :meth:`state_dict`)."""
        return tuple(self._outstanding[i] for i in sorted(self._outstanding))

    # -- health figures ------------------------------------------------------------------------

    def diagnostics(self) -> dict[str, float]:
        """Health figures for the ledger and the plots; NaN where there is no value yet.

        Every algorithm reports ``proposals``, ``feedbacks``, ``discarded``, ``outstanding``,
        ``unique`` (distinct ``genotype.key()`` among the proposals), ``unique_fraction``
        (``unique / proposals``) and ``best_reward``; subclasses add their own.
        """
        proposals = self._next_id
        return {
            "proposals": float(proposals),
            "feedbacks": float(self._num_feedback),
            "discarded": float(self._num_discarded),
            "outstanding": float(len(self._outstanding)),
            "unique": float(len(self._keys)),
            "unique_fraction": len(self._keys) / proposals if proposals else math.nan,
            "best_reward": self._best_reward if self._num_feedback else math.nan,
            **self._diagnostics(),
        }

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the search elsewhere, as plain data.

        Only tensors, Python numbers, strings, None, lists and dicts: it is saved with
        ``torch.save`` and read back with ``torch.load(..., weights_only=True)``. (It is not
        JSON: a policy's weights and torch RNG state are tensors.) The outstanding proposals
        are part of it, so a resumed search can still feed back the trials in flight.
        """
        return {
            "format_version": STATE_FORMAT_VERSION,
            "algorithm": self.name,
            "space": space_to_dict(self.space),
            "config": dataclasses.asdict(self.config),
            "seed": self.seed,
            "next_id": self._next_id,
            "outstanding": [p.to_dict() for p in self.outstanding],
            "keys": sorted(self._keys),
            "num_feedback": self._num_feedback,
            "num_discarded": self._num_discarded,
            "best_reward": self._best_reward,
            "algorithm_state": self._state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` of an algorithm with the same name, space and config.

        Raises ``ValueError`` naming the mismatch when the state was saved by another
        algorithm, for another space or with other options; build the algorithm with the
        saved ones (``state["algorithm"]``, ``state["config"]``) to load it.
        """
        expected = {
            "format_version": STATE_FORMAT_VERSION,
            "algorithm": self.name,
            "space": space_to_dict(self.space),
            "config": dataclasses.asdict(self.config),
        }
        for field, value in expected.items():
            saved = state.get(field) if isinstance(state, dict) else None
            if saved != value:
                raise ValueError(
                    f"cannot load this state: its {field} is {saved!r}, this algorithm's is "
                    f"{value!r}; build the algorithm with make_algorithm(state['algorithm'], "
                    "space, **state['config']) over the same space, then load the state"
                )
        self.seed = int(state["seed"])
        self._next_id = int(state["next_id"])
        proposals = [Proposal.from_dict(doc, self.space) for doc in state["outstanding"]]
        self._outstanding = {p.id: p for p in proposals}
        self._keys = set(state["keys"])
        self._num_feedback = int(state["num_feedback"])
        self._num_discarded = int(state["num_discarded"])
        self._best_reward = float(state["best_reward"])
        self._load_state(state["algorithm_state"])

    # -- what subclasses implement -------------------------------------------------------------

    @abstractmethod
    def _propose(self) -> tuple[Sequence[int], dict[str, Any]]:
        """The next legal action sequence and the :class:`Proposal` fields besides the ids."""

    @abstractmethod
    def _learn(self, proposal: Proposal, reward: float) -> None:
        """Use one checked reward of one proposal that was outstanding."""

    def _diagnostics(self) -> dict[str, float]:
        return {}

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        pass

    # -- helpers -------------------------------------------------------------------------------

    def _take(self, proposal: Proposal) -> None:
        """Remove ``proposal`` from the outstanding ones, or raise saying why it is not there."""
        pid = getattr(proposal, "id", None)
        mine = self._outstanding.get(pid) if isinstance(pid, int) else None
        if mine is None:
            if not isinstance(proposal, Proposal):
                why = "it is not a Proposal; pass the object propose() returned"
            elif 0 <= proposal.id < self._next_id:
                why = "its feedback was already given (or it was discarded); give it once"
            else:
                why = "this algorithm never proposed it; feed back this algorithm's proposals"
            raise FeedbackError(f"proposal {_describe(proposal)} is not outstanding: {why}")
        if mine.actions != proposal.actions:
            raise FeedbackError(
                f"proposal {_describe(proposal)} does not match outstanding proposal "
                f"{mine.id} (actions {list(mine.actions)}); it comes from another algorithm "
                "instance: feed back this algorithm's proposals"
            )
        del self._outstanding[mine.id]


def check_reward(reward: object, proposal: object = None) -> float:
    """``reward`` as a float, or :class:`FeedbackError` when it is not a finite real number."""
    value: float | None = None
    if not isinstance(reward, bool | str | bytes) and (
        isinstance(reward, numbers.Real) or hasattr(reward, "__float__")
    ):
        try:
            value = float(reward)  # numpy scalars and one-element tensors too
        except (TypeError, ValueError):
            value = None
    if value is None or not math.isfinite(value):
        raise FeedbackError(
            f"reward {reward!r} for proposal {_describe(proposal)}: expected a finite real "
            "number (the trial's metric, e.g. its AP); a trial that produced no reward should "
            "be discarded with algorithm.discard(proposal), not fed back"
        )
    return value


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """The fields of a search space as plain data (for state dicts and reports)."""
    return {
        "min_level": space.min_level,
        "max_level": space.max_level,
        "num_cells": space.num_cells,
        "num_intermediate": space.num_intermediate,
        "intermediate_levels": list(space.intermediate_levels or ()),
        "ops": list(space.ops),
    }


def python_rng_state(rng: random.Random) -> list[Any]:
    """``rng.getstate()`` as nested lists of ints (``torch.load(weights_only=True)`` safe)."""
    version, internal, gauss_next = rng.getstate()
    return [version, list(internal), gauss_next]


def set_python_rng_state(rng: random.Random, state: Sequence[Any]) -> None:
    """Inverse of :func:`python_rng_state`."""
    version, internal, gauss_next = state
    rng.setstate((int(version), tuple(int(x) for x in internal), gauss_next))


def _describe(proposal: object) -> str:
    pid = getattr(proposal, "id", None)
    return f"id={pid}" if pid is not None else repr(proposal)
