"""Reward functions with a known optimum, to measure a search algorithm without training.

A landscape maps a complete action sequence to a reward in ``[0, 1]`` whose maximum, 1.0, is
reached exactly at its ``target`` sequence:

- ``match``: the fraction of decisions equal to the target's. Smooth and separable: every
  decision counts on its own. The target is the published NAS-FPN cell (``space.encode(NASFPN)``)
  when the space holds it (the paper's space does), else a random sequence drawn from ``seed``.
- ``nk``: an NK landscape (Kauffman & Weinberger 1989) with a planted optimum. Decision ``i``
  contributes a value that depends on its own action and on the actions of ``k`` partner
  decisions in *other cells*; the contribution tables are uniform random in ``[0, 1)`` except
  that the target's combination scores 1.0. The reward is the mean contribution. Interactions
  between cells make it rugged: with ``k = 2`` a random sequence scores 0.51 +- 0.06 and a
  hill climber that changes one decision at a time stops at local optima of 0.78-0.88.

Both are plain Python and deterministic given ``seed`` and the space.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence

from nasfpn.space import NASFPN, SearchSpace


class Landscape:
    """A reward function over action sequences of ``space``, maximal (1.0) at ``target``."""

    name: str = ""

    def __init__(self, space: SearchSpace, target: Sequence[int]) -> None:
        self.space = space
        self.target = tuple(space.encode(space.decode(target)))
        self.optimum = 1.0

    def __call__(self, actions: Sequence[int]) -> float:
        raise NotImplementedError

    def describe(self) -> str:
        """One line for reports."""
        return self.name


class MatchLandscape(Landscape):
    """Reward = the fraction of decisions whose action equals the target's."""

    name = "match"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.published = space.contains(NASFPN)
        # a string seed: an algorithm seeded with the same int must not sample the target
        rng = random.Random(f"match-landscape-{seed}")
        target = space.encode(NASFPN) if self.published else space.sample(rng)
        super().__init__(space, target)

    def __call__(self, actions: Sequence[int]) -> float:
        return sum(a == t for a, t in zip(actions, self.target, strict=True)) / len(self.target)

    def describe(self) -> str:
        what = "the published NAS-FPN cell" if self.published else "a random sequence"
        return f"match: fraction of the {len(self.target)} decisions equal to {what}'s"

    def random_search_probability(self, threshold: float) -> float:
        """The exact probability that one random-search sample scores ``>= threshold``.

        Random search draws each decision uniformly among its legal choices
        (:meth:`SearchSpace.sample`); a dynamic programme over (matches so far, output levels
        taken, whether ``input_a`` took the target's ``input_b``) sums over all sequences.
        ``1 / p`` is then random search's expected number of samples to reach the threshold,
        which the benchmark can only bound from below by its budget.
        """
        space, target = self.space, self.target
        need = math.ceil(threshold * len(target) - 1e-9)
        # (matches, bitmask of output levels taken, input_a == target's input_b) -> probability
        states: dict[tuple[int, int, bool], float] = {(0, 0, False): 1.0}
        for d in space.decisions:
            nxt: dict[tuple[int, int, bool], float] = defaultdict(float)
            goal = target[d.index]
            for (m, taken, a_is_goal_b), p in states.items():
                if d.kind == "input_a":  # the target's input_b differs from its input_a
                    n = d.num_choices  # 1/n: the goal; 1/n: the target's input_b; the rest
                    nxt[(m + 1, taken, False)] += p / n
                    nxt[(m, taken, True)] += p / n
                    nxt[(m, taken, False)] += p * (n - 2) / n
                elif d.kind == "input_b":
                    hit = 0.0 if a_is_goal_b else 1 / (d.num_choices - 1)
                    nxt[(m + 1, taken, False)] += p * hit
                    nxt[(m, taken, False)] += p * (1 - hit)
                elif d.kind == "level" and space.is_output_cell(d.cell):
                    free = [j for j in range(d.num_choices) if not taken >> j & 1]
                    for j in free:
                        nxt[(m + (j == goal), taken | 1 << j, False)] += p / len(free)
                else:  # an intermediate level or an op: the target's choice is always legal
                    n = len(space.intermediate_levels) if d.kind == "level" else len(space.ops)
                    nxt[(m + 1, taken, False)] += p / n
                    nxt[(m, taken, False)] += p * (n - 1) / n
            states = nxt
        return sum(p for (m, _, _), p in states.items() if m >= need)


class NKLandscape(Landscape):
    """Mean of per-decision contributions, each depending on ``k`` decisions of other cells.

    A contribution table would have up to ``11 ** (k + 1)`` entries, so each entry is instead
    a hash of (decision, combination of actions) mapped to ``[0, 1)`` (splitmix64): the same
    numbers every time, for any ``k``, without storing them.
    """

    name = "nk"

    def __init__(self, space: SearchSpace, seed: int = 0, k: int = 2) -> None:
        rng = random.Random(f"nk-landscape-{seed}")
        super().__init__(space, space.sample(rng))
        decisions = space.decisions
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(decisions) - 4:
            raise ValueError(
                f"k={k!r}: expected an int from 0 to {len(decisions) - 4} (the decisions "
                "outside one cell); k=2 is the default"
            )
        self.k = k
        self.partners: list[tuple[int, ...]] = []
        self.salts: list[int] = []
        for d in decisions:
            others = [e.index for e in decisions if e.cell != d.cell]
            self.partners.append((d.index, *sorted(rng.sample(others, k))))
            self.salts.append(rng.getrandbits(64))
        self.planted = [self._index(g, self.target) for g in self.partners]

    def _index(self, group: Sequence[int], actions: Sequence[int]) -> int:
        """The combination of the group's actions as one mixed-radix number."""
        index = 0
        for j in group:
            index = index * self.space.decisions[j].num_choices + actions[j]
        return index

    def contribution(self, i: int, actions: Sequence[int]) -> float:
        """Decision ``i``'s value: 1.0 for the target's combination, else uniform in [0, 1)."""
        index = self._index(self.partners[i], actions)
        if index == self.planted[i]:
            return 1.0
        return _splitmix64(self.salts[i] ^ index) / 2.0**64

    def __call__(self, actions: Sequence[int]) -> float:
        return sum(self.contribution(i, actions) for i in range(len(self.partners))) / len(
            self.partners
        )

    def describe(self) -> str:
        return (
            f"nk: NK landscape, each of {len(self.partners)} decisions interacting with {self.k} "
            "decisions of other cells, optimum 1.0 planted at a random sequence"
        )


def _splitmix64(x: int) -> int:
    """A 64-bit integer hash with good avalanche (Steele et al. 2014, SplittableRandom)."""
    mask = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return x ^ (x >> 31)


LANDSCAPES: dict[str, Callable[..., Landscape]] = {"match": MatchLandscape, "nk": NKLandscape}
"""Every landscape by name: ``LANDSCAPES[name](space, seed)``."""


def make_landscape(name: str, space: SearchSpace, seed: int = 0) -> Landscape:
    """The landscape ``name`` over ``space``; ``seed`` draws its random parts."""
    if name not in LANDSCAPES:
        raise ValueError(f"unknown landscape {name!r}; expected one of {', '.join(LANDSCAPES)}")
    return LANDSCAPES[name](space, seed)
