"""``nasfpn show``: draw an architecture as in the paper's figures (PNG or SVG)."""

from __future__ import annotations

import argparse
from pathlib import Path


def output_name(arch: str) -> str:
    """``<name>.png`` for a built-in name, ``<file stem>.png`` for a genotype file."""
    return f"{Path(arch).stem or 'genotype'}.png"


def run(args: argparse.Namespace) -> int:
    from nasfpn.analysis import save_drawing
    from nasfpn.space import get_genotype

    if str(args.arch).lower() == "fpn":
        raise ValueError(
            "'fpn' is the plain FPN neck, not a genotype of merging cells: there is nothing to "
            "draw; give a built-in name (nasfpn) or a genotype JSON file"
        )
    genotype = get_genotype(args.arch)
    out = Path(args.out) if args.out else Path.cwd() / output_name(args.arch)
    title = args.title if args.title is not None else f"{args.arch}  (key {genotype.key()})"
    save_drawing(genotype, out, title=title)
    print(out)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show",
        help="draw an architecture (PNG or SVG)",
        description="Draw ARCH in the style of the NAS-FPN paper's figures 7 and 8: levels as "
        "rows (P3 at the bottom), inputs on the left (green), one column per merging cell, "
        "output cells in red, each cell's op below it. Prints the file written.",
    )
    p.add_argument("arch", help="a built-in name (nasfpn) or a genotype JSON file")
    p.add_argument("--out", help="the image file; .png or .svg (default ./<name>.png)")
    p.add_argument("--title", help="the figure's title (default: ARCH and its key)")
    p.set_defaults(func=run)
