"""Genotypes: a feature-pyramid architecture as plain data.

A genotype is the list of merging cells of one pyramid network (paper section 3, the
``block_specs`` of tensorflow/tpu ``nasfpn.py``). Nodes ``0 .. L-1`` are the input feature maps
``P{min_level} .. P{max_level}``; cell ``k`` appends node ``L + k``. Nothing here imports torch:
the model interprets a genotype with one generic loop (``nasfpn.model.neck``).
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Any

OPS: tuple[str, ...] = ("sum", "global_pool")
"""The binary ops of paper section 3 (tensorflow/tpu calls global pooling ``'attention'``)."""


class InvalidGenotypeError(ValueError):
    """A genotype (or an action sequence) that does not describe a buildable pyramid."""


@dataclass(frozen=True)
class MergingCell:
    """One merging cell: resize two earlier nodes to ``level``, combine them with ``op``.

    ``input_a`` and ``input_b`` are node indices (inputs first, then earlier cells).
    ``is_output`` marks a cell whose result is one of the pyramid's outputs.
    """

    input_a: int
    input_b: int
    level: int
    op: str
    is_output: bool


CELL_FIELDS: tuple[str, ...] = ("input_a", "input_b", "level", "op", "is_output")


@dataclass(frozen=True)
class CellPlan:
    """How the model builds one cell, derived from the genotype by :meth:`Genotype.trace`.

    ``absorbs`` lists earlier nodes at the same level that no later cell used; they are added to
    the op's result before ReLU-conv-BN (tensorflow/tpu ``nasfpn.py``, "add intermediate nodes
    that do not have any connections to the output"). Only output cells absorb.
    """

    node: int
    cell: MergingCell
    absorbs: tuple[int, ...]


@dataclass(frozen=True)
class Genotype:
    """A pyramid network: its merging cells and the levels of its input nodes."""

    cells: tuple[MergingCell, ...]
    min_level: int = 3
    max_level: int = 7

    def __post_init__(self) -> None:
        # Accept any sequence of cells (or 5-tuples) but store an immutable tuple of MergingCell.
        cells = tuple(c if isinstance(c, MergingCell) else MergingCell(*c) for c in self.cells)
        object.__setattr__(self, "cells", cells)

    @property
    def levels(self) -> tuple[int, ...]:
        """The pyramid levels of the inputs, which are also the levels of the outputs."""
        return tuple(range(self.min_level, self.max_level + 1))

    @property
    def num_inputs(self) -> int:
        return self.max_level - self.min_level + 1

    def node_levels(self) -> tuple[int, ...]:
        """The level of every node: the inputs, then one per cell."""
        return self.levels + tuple(c.level for c in self.cells)

    def trace(self) -> tuple[CellPlan, ...]:
        """Follow the construction order and say which unconnected nodes each cell absorbs.

        Mirrors the bookkeeping of tensorflow/tpu ``nasfpn.py``: a node's connection count goes
        up when a cell takes it as an input or absorbs it; when an output cell at level ``l`` is
        built, every earlier node at ``l`` whose count is still zero is absorbed.
        """
        levels = list(self.node_levels())
        used = [0] * len(levels)
        plans = []
        for k, cell in enumerate(self.cells):
            node = self.num_inputs + k
            used[cell.input_a] += 1
            used[cell.input_b] += 1
            absorbs: tuple[int, ...] = ()
            if cell.is_output:
                absorbs = tuple(j for j in range(node) if used[j] == 0 and levels[j] == cell.level)
                for j in absorbs:
                    used[j] += 1
            plans.append(CellPlan(node=node, cell=cell, absorbs=absorbs))
        return tuple(plans)

    def output_nodes(self) -> dict[int, int]:
        """``{level: node}`` of the pyramid's outputs, ordered from the finest level up."""
        found = {c.level: self.num_inputs + k for k, c in enumerate(self.cells) if c.is_output}
        return {level: found[level] for level in sorted(found)}

    def coarse_and_fine(self, k: int) -> tuple[int, int]:
        """The nodes playing the coarse and the fine role in cell ``k``'s ``global_pool``.

        tensorflow/tpu ``nasfpn.py`` (``node0_level >= node1_level``) and mmcv ``GlobalPoolingCell``
        both give the coarse role to the input at the higher level; at equal levels ``input_a``
        is the coarse one. For ``sum`` the roles do not matter.
        """
        cell = self.cells[k]
        levels = self.node_levels()
        if levels[cell.input_a] >= levels[cell.input_b]:
            return cell.input_a, cell.input_b
        return cell.input_b, cell.input_a

    def validate(self) -> Genotype:
        """Check that the genotype builds; return it unchanged, or raise InvalidGenotypeError.

        Rules: cells refer only to earlier nodes, merge two different nodes (paper section 3,
        "without replacement"), output levels and ops from the space; the last ``L`` cells and
        only they are output cells (tensorflow/tpu ``nasfpn.py`` takes the last ``L`` nodes as
        the outputs) and they produce each level once. Under these rules every node reaches an
        output: a node nobody uses is absorbed by the output cell at its level (:meth:`trace`).
        """
        _check_level_range(self.min_level, self.max_level)
        num_levels, num_cells = self.num_inputs, len(self.cells)
        span = f"P{self.min_level}..P{self.max_level}"
        if num_cells < num_levels:
            raise InvalidGenotypeError(
                f"the genotype has {num_cells} cells but needs at least {num_levels}: the last "
                f"{num_levels} cells are the output cells, one per level {span}"
            )
        output_of_level: dict[int, int] = {}
        for k, cell in enumerate(self.cells):
            node = num_levels + k
            where = f"cell {k} (node {node})"
            for field in ("input_a", "input_b"):
                value = getattr(cell, field)
                if not _is_int(value) or not 0 <= value < node:
                    raise InvalidGenotypeError(
                        f"{where}: {field}={value!r} must be an earlier node, an int in "
                        f"0..{node - 1} (nodes 0..{num_levels - 1} are the inputs {span}, "
                        f"node {num_levels}+j is cell j)"
                    )
            if cell.input_b == cell.input_a:
                raise InvalidGenotypeError(
                    f"{where}: input_b={cell.input_b} equals input_a; a cell merges two "
                    "different nodes (paper section 3), so choose another node for input_b"
                )
            if not _is_int(cell.level) or not self.min_level <= cell.level <= self.max_level:
                raise InvalidGenotypeError(
                    f"{where}: level={cell.level!r} must be an int in "
                    f"{self.min_level}..{self.max_level} (the pyramid levels {span})"
                )
            if not isinstance(cell.op, str) or cell.op not in OPS:
                raise InvalidGenotypeError(f"{where}: op={cell.op!r} must be one of {OPS}")
            if not isinstance(cell.is_output, bool):
                raise InvalidGenotypeError(
                    f"{where}: is_output={cell.is_output!r} must be a bool (true or false)"
                )
            if cell.is_output != (k >= num_cells - num_levels):
                raise InvalidGenotypeError(
                    f"{where}: is_output={cell.is_output}, but exactly the last {num_levels} of "
                    f"the {num_cells} cells must be output cells (tensorflow/tpu nasfpn.py takes "
                    f"the last {num_levels} nodes as the outputs)"
                )
            if cell.is_output:
                if cell.level in output_of_level:
                    raise InvalidGenotypeError(
                        f"{where}: level={cell.level} is already the output level of cell "
                        f"{output_of_level[cell.level]}; the output cells must produce each of "
                        f"the levels {span} exactly once"
                    )
                output_of_level[cell.level] = k
        return self

    def key(self) -> str:
        """A canonical hash: equal exactly when two genotypes build the same network.

        See :func:`nasfpn.space.key.genotype_key` for what counts as the same network.
        """
        from nasfpn.space.key import genotype_key

        return genotype_key(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``format_version``, the levels and one object per cell."""
        from nasfpn.space.serialize import genotype_to_dict

        return genotype_to_dict(self)

    @classmethod
    def from_dict(cls, doc: Any) -> Genotype:
        """Read :meth:`to_dict` output, bare or wrapped under a ``"genotype"`` key."""
        from nasfpn.space.serialize import genotype_from_dict

        return genotype_from_dict(doc)

    def to_json(self, /, **provenance: Any) -> str:
        """Human-readable JSON, one line per cell; see :func:`nasfpn.space.serialize.to_json`."""
        from nasfpn.space.serialize import to_json

        return to_json(self, **provenance)

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        """Read :meth:`to_json` output (or any document :meth:`from_dict` accepts)."""
        from nasfpn.space.serialize import from_json

        return from_json(text)

    def save(self, path: str | PathLike[str], /, **provenance: Any) -> None:
        """Write :meth:`to_json` to ``path``; keyword arguments are stored as provenance."""
        from nasfpn.space.serialize import save

        save(self, path, **provenance)

    @classmethod
    def load(cls, path: str | PathLike[str]) -> Genotype:
        """Read a file written by :meth:`save`, bare or with provenance."""
        from nasfpn.space.serialize import load

        return load(path)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_level_range(min_level: object, max_level: object) -> None:
    if not (_is_int(min_level) and _is_int(max_level) and 0 <= min_level < max_level):
        raise InvalidGenotypeError(
            f"min_level={min_level!r}, max_level={max_level!r}: expected ints with "
            "0 <= min_level < max_level (3 and 7 for the inputs P3..P7)"
        )
