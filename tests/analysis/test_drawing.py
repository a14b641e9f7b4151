"""Drawings of genotypes: the layout as data, the artists drawn, PNG and SVG files."""

import pytest
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from nasfpn.analysis import Edge, draw_genotype, layout, save_drawing
from nasfpn.space import NASFPN, Genotype, MergingCell


def test_layout_of_the_published_cell() -> None:
    plan = layout(NASFPN)
    # 5 inputs P3..P7 in the first column, then cell k (node 5 + k) in column k + 1
    assert [(n.node, n.x, n.y) for n in plan.nodes[:5]] == [(i, 0, 3 + i) for i in range(5)]
    assert [n.label for n in plan.nodes[:5]] == ["P3", "P4", "P5", "P6", "P7"]
    cells = plan.nodes[5:]
    assert [(n.node, n.x, n.level) for n in cells] == [
        (5, 1, 4), (6, 2, 4), (7, 3, 3), (8, 4, 4), (9, 5, 5), (10, 6, 7), (11, 7, 6),
    ]  # fmt: skip
    assert [n.op for n in cells] == ["global_pool", "sum", "sum", "sum", "global_pool",
                                     "global_pool", "global_pool"]  # fmt: skip
    assert [n.node for n in plan.outputs] == [7, 8, 9, 10, 11]
    # two inputs per cell, plus P5 absorbed by node 9 and P7 by node 10 (docs/architecture.md)
    assert len(plan.edges) == 16
    assert [e for e in plan.edges if e.kind == "absorb"] == [Edge(2, 9, "absorb"),
                                                             Edge(4, 10, "absorb")]  # fmt: skip
    assert Edge(1, 5, "input") in plan.edges and Edge(3, 5, "input") in plan.edges


def test_drawing_has_a_dot_per_node_and_an_arrow_per_edge() -> None:
    ax = draw_genotype(NASFPN, title="NAS-FPN")
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 16
    assert sum(p.get_gid().startswith("absorb-") for p in arrows) == 2
    assert {p.get_gid() for p in arrows} >= {"edge-1-5", "edge-3-5", "absorb-2-9"}
    # an arrow that would run through a dot is bent: P4 -> node 6 passes node 5 on the P4 row
    bend = {p.get_gid(): p.get_connectionstyle().rad for p in arrows}
    assert bend["edge-1-6"] > 0 and bend["edge-7-9"] > 0  # 7 -> 9 passes node 8 (P4)
    assert bend["edge-1-5"] == 0 and bend["edge-6-8"] == 0 and bend["absorb-4-10"] == 0
    dots = [line for line in ax.get_lines() if (line.get_gid() or "").startswith("node-")]
    assert len(dots) == 12
    colors = {line.get_gid(): line.get_color() for line in dots}
    assert colors["node-0"] == "#2ca02c" and colors["node-11"] == "#d62728"  # green in, red out
    assert colors["node-5"] == "#4c72b0"
    ops = {t.get_gid(): t.get_text() for t in ax.texts if (t.get_gid() or "").startswith("op-")}
    assert ops == {"op-5": "GP", "op-6": "sum", "op-7": "sum", "op-8": "sum", "op-9": "GP",
                   "op-10": "GP", "op-11": "GP"}  # fmt: skip
    assert [t.get_text() for t in ax.get_yticklabels()] == ["P3", "P4", "P5", "P6", "P7"]
    assert ax.get_title() == "NAS-FPN"
    legend = [h.get_label() for h in ax.get_legend().legend_handles if isinstance(h, Line2D)]
    assert "output cell" in legend


def test_a_smaller_space_and_a_genotype_document() -> None:
    small = Genotype(
        cells=(MergingCell(0, 1, 4, "sum", False), MergingCell(2, 3, 3, "sum", True),
               MergingCell(3, 0, 5, "global_pool", True), MergingCell(4, 5, 4, "sum", True)),
        min_level=3, max_level=5,
    )  # fmt: skip
    plan = layout(small.to_dict())  # the ledger's genotype field
    assert len(plan.nodes) == 3 + 4 and len(plan.edges) == 2 * 4 + len(
        [j for p in small.trace() for j in p.absorbs]
    )
    ax = draw_genotype(small)
    assert len([p for p in ax.patches if isinstance(p, FancyArrowPatch)]) == len(plan.edges)


def test_png_and_svg_files(tmp_path) -> None:
    png = save_drawing(NASFPN, tmp_path / "arch.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = save_drawing(NASFPN, tmp_path / "arch.SVG", title="t")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert 'id="node-11"' in text and 'id="absorb-4-10"' in text


def test_bad_inputs_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"suffix '\.pdf'.*\.png, \.svg"):
        save_drawing(NASFPN, tmp_path / "arch.pdf")
    with pytest.raises(TypeError, match="get_genotype"):
        layout("nasfpn")
    broken = Genotype(cells=NASFPN.cells[:4])  # too few cells to build
    with pytest.raises(ValueError, match="needs at least 5"):
        draw_genotype(broken)
