"""Drawings of a genotype in the style of the paper's architecture figures (NAS-FPN Fig. 7, 8).

"Each dot represents a feature layer. Feature layers in the same row have identical resolution.
The resolution decreases in the bottom-up direction. [...] The inputs to a pyramid network are
marked with green circles and outputs are marked with red circles." Here the rows are the levels
(P3 at the bottom, P7 at the top), the inputs stand in the first column and merging cell ``k``
in column ``k + 1``, so the construction order reads from left to right. Each cell has an arrow
from both of its inputs and is labelled with its op; a dashed arrow marks an unconnected node
that an output cell absorbs (:meth:`Genotype.trace`).

:func:`layout` computes the picture as data (what the tests check); :func:`draw_genotype` draws it
on a Matplotlib Axes; :func:`save_drawing` writes a PNG or an SVG.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from nasfpn.space import Genotype

INPUT_COLOR = "#2ca02c"  # the paper's green inputs
OUTPUT_COLOR = "#d62728"  # and red outputs
CELL_COLOR = "#4c72b0"
OP_LABELS = {"sum": "sum", "global_pool": "GP"}
SUFFIXES = (".png", ".svg")


@dataclass(frozen=True)
class NodeSpot:
    """One dot: ``node`` index, its ``level``, where it stands, and what it is."""

    node: int
    level: int
    x: float
    y: float
    kind: str  # "input" or "cell"
    op: str | None  # the cell's op; None for an input
    is_output: bool

    @property
    def label(self) -> str:
        return f"P{self.level}" if self.kind == "input" else str(self.node)


@dataclass(frozen=True)
class Edge:
    """An arrow from node ``source`` to node ``target``: a cell ``input`` or an ``absorb``."""

    source: int
    target: int
    kind: str  # "input" or "absorb"


@dataclass(frozen=True)
class Layout:
    """A genotype's picture as data: one spot per node, one edge per input and absorbed node."""

    nodes: tuple[NodeSpot, ...]
    edges: tuple[Edge, ...]

    @property
    def outputs(self) -> tuple[NodeSpot, ...]:
        return tuple(n for n in self.nodes if n.is_output)


def as_genotype(genotype: Genotype | Mapping[str, Any]) -> Genotype:
    """A Genotype, or one from a genotype document (the ledger's ``genotype`` field)."""
    if isinstance(genotype, Genotype):
        return genotype.validate()
    if isinstance(genotype, Mapping):
        return Genotype.from_dict(genotype)
    raise TypeError(
        f"expected a Genotype or a genotype document (dict), got {type(genotype).__name__}; "
        "for a name or a file use nasfpn.space.get_genotype first"
    )


def layout(genotype: Genotype | Mapping[str, Any]) -> Layout:
    """Where every node stands (column = construction order, row = level) and the edges."""
    genotype = as_genotype(genotype)
    nodes = [
        NodeSpot(node=i, level=level, x=0.0, y=float(level), kind="input", op=None, is_output=False)
        for i, level in enumerate(genotype.levels)
    ]
    edges = []
    for k, plan in enumerate(genotype.trace()):
        cell = plan.cell
        nodes.append(NodeSpot(plan.node, cell.level, float(k + 1), float(cell.level), "cell",
                              cell.op, cell.is_output))  # fmt: skip
        edges += [Edge(cell.input_a, plan.node, "input"), Edge(cell.input_b, plan.node, "input")]
        edges += [Edge(j, plan.node, "absorb") for j in plan.absorbs]
    return Layout(tuple(nodes), tuple(edges))


def draw_genotype(
    genotype: Genotype | Mapping[str, Any], ax: Axes | None = None, title: str | None = None
) -> Axes:
    """Draw a genotype on ``ax`` (a new Figure if None); returns the Axes.

    Every artist has a ``gid``: ``node-<i>`` for a dot, ``edge-<a>-<b>`` or ``absorb-<a>-<b>``
    for an arrow, ``op-<i>`` for an op label (SVG files keep them as element ids).
    """
    plan = layout(genotype)
    if ax is None:
        columns = max(n.x for n in plan.nodes) + 1
        ax = Figure(figsize=(1.1 * columns + 1.6, 4.2), layout="constrained").add_subplot()
    spots = {n.node: n for n in plan.nodes}
    for edge in plan.edges:
        a, b = spots[edge.source], spots[edge.target]
        # an arrow that would run through a dot between its ends is bent, by about the same
        # height whatever its length
        bend = 0.5 / (b.x - a.x) if _passes_a_dot(a, b, plan.nodes) else 0.0
        absorb = edge.kind == "absorb"
        arrow = FancyArrowPatch(
            (a.x, a.y), (b.x, b.y),
            connectionstyle=f"arc3,rad={bend}",
            arrowstyle="-|>", mutation_scale=11, shrinkA=9, shrinkB=9,
            color="0.55" if absorb else "0.25", linestyle="--" if absorb else "-",
            linewidth=1.0, zorder=1,
        )  # fmt: skip
        arrow.set_gid(f"{edge.kind if absorb else 'edge'}-{edge.source}-{edge.target}")
        ax.add_patch(arrow)
    for n in plan.nodes:
        color = INPUT_COLOR if n.kind == "input" else OUTPUT_COLOR if n.is_output else CELL_COLOR
        (dot,) = ax.plot(n.x, n.y, "o", markersize=17, color=color, markeredgecolor="white",
                         zorder=2)  # fmt: skip
        dot.set_gid(f"node-{n.node}")
        ax.text(n.x, n.y, n.label, ha="center", va="center", color="white", fontsize=7.5,
                fontweight="bold", zorder=3)  # fmt: skip
        if n.op is not None:
            name = OP_LABELS.get(n.op, n.op)
            box = {"facecolor": "white", "edgecolor": "none", "pad": 0.4}
            label = ax.text(n.x, n.y - 0.3, name, ha="center", va="top", fontsize=7.5,
                            color="0.2", zorder=3, bbox=box)  # fmt: skip
            label.set_gid(f"op-{n.node}")
    levels = sorted({n.level for n in plan.nodes})
    ax.set_yticks(levels, [f"P{lv}" for lv in levels])
    columns = sorted({n.x for n in plan.nodes})
    ax.set_xticks(columns, ["inputs", *(f"cell {int(x) - 1}" for x in columns[1:])],
                  fontsize=7)  # fmt: skip
    ax.set_xlim(-0.6, columns[-1] + 0.9)
    ax.set_ylim(levels[0] - 0.7, levels[-1] + 0.6)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_axisbelow(True)  # the row lines under the arrows that run along them
    ax.grid(axis="y", color="0.93")
    legend = [
        Line2D([], [], marker="o", linestyle="", color=INPUT_COLOR, label="input"),
        Line2D([], [], marker="o", linestyle="", color=CELL_COLOR, label="intermediate cell"),
        Line2D([], [], marker="o", linestyle="", color=OUTPUT_COLOR, label="output cell"),
        Line2D([], [], color="0.55", linestyle="--", label="absorbed (unconnected) node"),
    ]
    ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
              frameon=False, title="GP = global pooling", title_fontsize=7)  # fmt: skip
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def _passes_a_dot(a: NodeSpot, b: NodeSpot, nodes: tuple[NodeSpot, ...]) -> bool:
    """Whether the straight line from ``a`` to ``b`` runs through another node's dot."""
    for n in nodes:
        if a.x < n.x < b.x:
            y = a.y + (b.y - a.y) * (n.x - a.x) / (b.x - a.x)  # the line's height at n's column
            if abs(y - n.y) < 0.3:
                return True
    return False


def save_drawing(
    genotype: Genotype | Mapping[str, Any], path: str | PathLike[str], title: str | None = None
) -> Path:
    """Draw a genotype into ``path``; the suffix chooses the format (``.png`` or ``.svg``)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(
            f"{str(path)!r}: cannot tell the image format from the suffix {path.suffix!r}; "
            f"use one of {', '.join(SUFFIXES)}"
        )
    ax = draw_genotype(genotype, title=title)
    ax.figure.savefig(path, dpi=150)
    return path
