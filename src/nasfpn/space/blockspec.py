"""Import and export of tensorflow/tpu block specs.

tensorflow/tpu ``models/official/detection/modeling/architecture/nasfpn.py`` describes a pyramid
as ``NASFPN_BLOCK_SPECS``, a list of ``(block_level, combine_fn, (input_offset0, input_offset1),
is_output)``. Despite the name the offsets are absolute node indices (``feats[input0]``), the
same numbering as ours, and ``combine_fn`` is ``'sum'`` or ``'attention'`` (its name for global
pooling). The same list appears in the later ``official/vision`` NAS-FPN decoder.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nasfpn.space.genotype import OPS, Genotype, InvalidGenotypeError, MergingCell

BlockSpec = tuple[int, str, tuple[int, int], bool]

OP_NAMES: dict[str, dict[str, str]] = {
    "tpu": {"sum": "sum", "global_pool": "attention"},
    "nasfpn": {op: op for op in OPS},
}
"""Export names of our ops, per naming convention."""

_IMPORT_NAMES = {name: op for names in OP_NAMES.values() for op, name in names.items()}


def to_block_specs(genotype: Genotype, op_names: str = "tpu") -> list[BlockSpec]:
    """The block specs of a valid genotype, with tensorflow/tpu or our op names."""
    if op_names not in OP_NAMES:
        raise ValueError(f"op_names={op_names!r}: expected one of {sorted(OP_NAMES)}")
    names = OP_NAMES[op_names]
    genotype.validate()
    return [(c.level, names[c.op], (c.input_a, c.input_b), c.is_output) for c in genotype.cells]


def from_block_specs(specs: Iterable[Any], min_level: int = 3, max_level: int = 7) -> Genotype:
    """A validated genotype from block specs; ``combine_fn`` may use either naming."""
    cells = []
    for i, spec in enumerate(specs):
        try:
            level, combine_fn, (input_a, input_b), is_output = spec
        except (TypeError, ValueError) as err:
            raise InvalidGenotypeError(
                f"block spec {i}: {spec!r} is not (level, combine_fn, (input0, input1), is_output)"
            ) from err
        if not isinstance(combine_fn, str) or combine_fn not in _IMPORT_NAMES:
            raise InvalidGenotypeError(
                f"block spec {i}: combine_fn={combine_fn!r}; expected one of "
                f"{sorted(_IMPORT_NAMES)}"
            )
        cells.append(MergingCell(input_a, input_b, level, _IMPORT_NAMES[combine_fn], is_output))
    return Genotype(tuple(cells), min_level, max_level).validate()
