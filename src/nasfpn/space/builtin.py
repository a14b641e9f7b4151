"""Architectures known by name, and :func:`get_genotype` to pick one by name or file."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from nasfpn.space.genotype import Genotype, MergingCell

# The cell behind the published 40.5 AP (docs/architecture.md, from tensorflow/tpu
# ``nasfpn.py`` ``nasfpn_block_specs``; mmdetection ``NASFPN`` hard-codes the same topology).
# Nodes 0..4 are P3..P7.
NASFPN = Genotype(
    cells=(
        MergingCell(1, 3, 4, "global_pool", False),  # node 5
        MergingCell(1, 5, 4, "sum", False),  # node 6
        MergingCell(0, 6, 3, "sum", True),  # node 7  -> P3
        MergingCell(6, 7, 4, "sum", True),  # node 8  -> P4
        MergingCell(7, 8, 5, "global_pool", True),  # node 9  -> P5, absorbs P5 (node 2)
        MergingCell(6, 9, 7, "global_pool", True),  # node 10 -> P7, absorbs P7 (node 4)
        MergingCell(9, 10, 6, "global_pool", True),  # node 11 -> P6
    )
)

BUILTIN: dict[str, Genotype] = {"nasfpn": NASFPN}


def get_genotype(name_or_path: str | PathLike[str]) -> Genotype:
    """A built-in genotype by name (case-insensitive), or one read from a genotype JSON file.

    The plain FPN neck is not a genotype; the model chooses it before calling this.
    """
    name = str(name_or_path)
    if name.lower() in BUILTIN:
        return BUILTIN[name.lower()]
    if Path(name).is_file():
        return Genotype.load(name)
    hint = ""
    if name.lower() == "fpn":
        hint = " ('fpn' is the plain FPN neck, not a genotype: select it as the model's neck)"
    raise ValueError(
        f"unknown genotype {name!r}: not a built-in ({', '.join(sorted(BUILTIN))}) and no file "
        f"of that name; give a built-in name or the path of a genotype JSON file written by "
        f"Genotype.save{hint}"
    )
