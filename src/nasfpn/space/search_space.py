"""The search space as a sequence of decisions a controller walks (paper section 3).

Each merging cell takes four decisions, in this order:

- ``input_a``: a node index among the ``L + k`` candidates of cell ``k`` (``L`` input levels);
- ``input_b``: likewise, any candidate but ``input_a`` (chosen without replacement);
- ``level``: the action is ``level - min_level``; every level decision has ``L`` choices and
  the illegal ones are masked, so one softmax of width ``L`` serves every cell and an action
  always means the same level. Intermediate cells may only pick ``intermediate_levels``
  (P4..P7 by default: the paper forbids P3); output cells may not pick a level an earlier output
  cell took, so together they produce a permutation of the levels;
- ``op``: an index into ``ops``.

The first ``num_intermediate`` cells are intermediate, the rest are the output cells.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from nasfpn.space.genotype import OPS, Genotype, InvalidGenotypeError, MergingCell

KINDS: tuple[str, ...] = ("input_a", "input_b", "level", "op")
GROUPS: dict[str, str] = {"input_a": "input", "input_b": "input", "level": "level", "op": "op"}


@dataclass(frozen=True)
class Decision:
    """One step of the sequence: decision ``index`` sets ``kind`` of cell ``cell``."""

    index: int
    cell: int
    kind: str
    num_choices: int

    @property
    def group(self) -> str:
        """``"input"``, ``"level"`` or ``"op"``: decisions of one group can share a softmax."""
        return GROUPS[self.kind]


@dataclass(frozen=True)
class SearchSpace:
    """The NAS-FPN search space; the defaults are the paper's (section 3, docs section 1).

    ``intermediate_levels=None`` means every level but the finest.
    """

    min_level: int = 3
    max_level: int = 7
    num_cells: int = 7
    num_intermediate: int = 2
    intermediate_levels: tuple[int, ...] | None = None
    ops: tuple[str, ...] = OPS

    def __post_init__(self) -> None:
        if not (_is_int(self.min_level) and _is_int(self.max_level)) or not (
            0 <= self.min_level < self.max_level
        ):
            raise ValueError(
                f"min_level={self.min_level!r}, max_level={self.max_level!r}: expected ints with "
                "0 <= min_level < max_level; the paper uses min_level=3, max_level=7 (P3..P7)"
            )
        if not _is_int(self.num_intermediate) or self.num_intermediate < 0:
            raise ValueError(
                f"num_intermediate={self.num_intermediate!r}: expected an int >= 0 "
                "(the paper uses 2)"
            )
        num_levels = len(self.levels)
        if not _is_int(self.num_cells) or self.num_cells - self.num_intermediate != num_levels:
            raise ValueError(
                f"num_cells={self.num_cells!r} with num_intermediate={self.num_intermediate}: "
                f"the output cells (num_cells - num_intermediate) must produce the {num_levels} "
                f"levels P{self.min_level}..P{self.max_level} one each; set "
                f"num_cells={self.num_intermediate + num_levels}"
            )
        levels = _as_tuple(
            self.levels[1:] if self.intermediate_levels is None else self.intermediate_levels
        )
        if (
            not levels
            or any(not _is_int(lv) or lv not in self.levels for lv in levels)
            or len(set(levels)) < len(levels)
        ):
            raise ValueError(
                f"intermediate_levels={self.intermediate_levels!r}: expected distinct levels "
                f"from {self.levels}, at least one; leave it None for all but the finest"
            )
        object.__setattr__(self, "intermediate_levels", levels)
        ops = _as_tuple(self.ops)
        if not ops or any(op not in OPS for op in ops) or len(set(ops)) < len(ops):
            raise ValueError(f"ops={self.ops!r}: expected distinct ops from {OPS}, at least one")
        object.__setattr__(self, "ops", ops)

    @property
    def levels(self) -> tuple[int, ...]:
        """All pyramid levels: of the inputs, of the outputs, and the level actions' meaning."""
        return tuple(range(self.min_level, self.max_level + 1))

    @cached_property
    def decisions(self) -> tuple[Decision, ...]:
        """Four decisions per cell, in the order ``input_a, input_b, level, op``."""
        num_levels = len(self.levels)
        widths = {"level": num_levels, "op": len(self.ops)}
        return tuple(
            Decision(4 * k + i, k, kind, widths.get(kind, num_levels + k))
            for k in range(self.num_cells)
            for i, kind in enumerate(KINDS)
        )

    def max_choices(self, kind: str) -> int:
        """The widest softmax a controller needs for a kind (``input_a`` ...) or group."""
        widths = [d.num_choices for d in self.decisions if kind in (d.kind, d.group)]
        if not widths:
            names = (*KINDS, *sorted(set(GROUPS.values()) - set(KINDS)))
            raise ValueError(f"kind={kind!r}: expected one of {names}")
        return max(widths)

    def is_output_cell(self, k: int) -> bool:
        """Whether cell ``k`` is an output cell (the intermediate cells come first)."""
        return k >= self.num_intermediate

    def legal(self, prefix: Sequence[int]) -> tuple[bool, ...]:
        """The legal-choice mask of the decision after ``prefix`` (which must be legal)."""
        actions = self._check(prefix, partial=True)
        if len(actions) == len(self.decisions):
            raise ValueError(
                f"all {len(actions)} decisions are made; there is no next decision to mask"
            )
        return self._mask(len(actions), actions)

    def decode(self, actions: Sequence[int]) -> Genotype:
        """The genotype of a complete, legal action sequence."""
        acts = self._check(actions, partial=False)
        cells = []
        for k in range(self.num_cells):
            a, b, level, op = acts[4 * k : 4 * k + 4]
            cell = MergingCell(a, b, self.min_level + level, self.ops[op], self.is_output_cell(k))
            cells.append(cell)
        return Genotype(tuple(cells), self.min_level, self.max_level).validate()

    def encode(self, genotype: Genotype) -> list[int]:
        """The action sequence of a genotype of this space (inverse of :meth:`decode`)."""
        self.validate(genotype)
        return [
            action
            for c in genotype.cells
            for action in (c.input_a, c.input_b, c.level - self.min_level, self.ops.index(c.op))
        ]

    def validate(self, genotype: Genotype) -> Genotype:
        """:meth:`Genotype.validate` plus this space's rules; return the genotype."""
        genotype.validate()
        if (genotype.min_level, genotype.max_level) != (self.min_level, self.max_level):
            raise InvalidGenotypeError(
                f"the genotype has levels P{genotype.min_level}..P{genotype.max_level}, this "
                f"space P{self.min_level}..P{self.max_level}"
            )
        if len(genotype.cells) != self.num_cells:
            raise InvalidGenotypeError(
                f"the genotype has {len(genotype.cells)} cells, this space {self.num_cells}"
            )
        for k, cell in enumerate(genotype.cells):
            if not cell.is_output and cell.level not in self.intermediate_levels:
                raise InvalidGenotypeError(
                    f"cell {k}: level={cell.level} is not open to intermediate cells in this "
                    f"space; allowed: {self.intermediate_levels} (paper section 3: not P3)"
                )
            if cell.op not in self.ops:
                raise InvalidGenotypeError(
                    f"cell {k}: op={cell.op!r} is not in this space's ops {self.ops}"
                )
        return genotype

    def contains(self, genotype: Genotype) -> bool:
        """Whether :meth:`validate` accepts the genotype."""
        try:
            self.validate(genotype)
        except InvalidGenotypeError:
            return False
        return True

    def sample(self, rng: random.Random) -> list[int]:
        """A legal action sequence, uniform over the legal choices at each step."""
        actions: list[int] = []
        for d in self.decisions:
            mask = self._mask(d.index, actions)
            actions.append(rng.choice([j for j, ok in enumerate(mask) if ok]))
        return actions

    def size(self, ordered: bool = True) -> int:
        """The number of legal sequences; with ``ordered=False`` input pairs are unordered.

        Unordered is the paper's count of about 1.93e15 (docs section 1); it still counts
        networks that are equal for other reasons (use :meth:`Genotype.key` for those).
        """
        count = 1
        for k in range(self.num_cells):
            n = len(self.levels) + k
            count *= n * (n - 1) if ordered else n * (n - 1) // 2
            if self.is_output_cell(k):
                count *= len(self.levels) - (k - self.num_intermediate)
            else:
                count *= len(self.intermediate_levels)
            count *= len(self.ops)
        return count

    def _mask(self, index: int, actions: Sequence[int]) -> tuple[bool, ...]:
        d = self.decisions[index]
        if d.kind == "input_b":
            return tuple(j != actions[index - 1] for j in range(d.num_choices))
        if d.kind == "level":
            if self.is_output_cell(d.cell):
                taken = {actions[4 * k + 2] for k in range(self.num_intermediate, d.cell)}
                return tuple(j not in taken for j in range(d.num_choices))
            return tuple(level in self.intermediate_levels for level in self.levels)
        return (True,) * d.num_choices

    def _check(self, actions: Sequence[int], partial: bool) -> list[int]:
        """Return the actions as ints, or raise naming the first illegal one."""
        total = len(self.decisions)
        if len(actions) > total or (not partial and len(actions) != total):
            raise InvalidGenotypeError(
                f"expected {total} actions (4 per cell x {self.num_cells} cells: "
                f"{', '.join(KINDS)}), got {len(actions)}"
            )
        checked: list[int] = []
        for i, action in enumerate(actions):
            mask = self._mask(i, checked)
            value = _as_int(action)
            if value is None or not 0 <= value < len(mask) or not mask[value]:
                d = self.decisions[i]
                legal = [j for j, ok in enumerate(mask) if ok]
                raise InvalidGenotypeError(
                    f"decision {i} (cell {d.cell}, {d.kind}): action {action!r} is not legal; "
                    f"legal actions: {legal} ({self._meaning(d, checked)})"
                )
            checked.append(value)
        return checked

    def _meaning(self, d: Decision, actions: Sequence[int]) -> str:
        if d.kind == "input_a":
            return "node indices"
        if d.kind == "input_b":
            return f"node indices other than input_a={actions[d.index - 1]}"
        if d.kind == "level":
            which = "an output cell takes a level no earlier output cell took"
            if not self.is_output_cell(d.cell):
                which = f"intermediate cells choose among {self.intermediate_levels}"
            return f"action = level - {self.min_level}; {which}"
        return f"indices into ops {self.ops}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_tuple(values: object) -> tuple:
    """A tuple of a list or tuple; ``()`` for anything else, which the callers then refuse."""
    return tuple(values) if isinstance(values, list | tuple) else ()


def _as_int(value: object) -> int | None:
    """Accept Python, numpy or 0-d tensor integers from a controller; refuse bools."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None
