"""The NAS-FPN search space: genotypes, decisions, keys. Plain Python, no torch."""

from nasfpn.space.blockspec import OP_NAMES, BlockSpec, from_block_specs, to_block_specs
from nasfpn.space.builtin import BUILTIN, NASFPN, get_genotype
from nasfpn.space.genotype import (
    CELL_FIELDS,
    OPS,
    CellPlan,
    Genotype,
    InvalidGenotypeError,
    MergingCell,
)
from nasfpn.space.key import genotype_key
from nasfpn.space.search_space import GROUPS, KINDS, Decision, SearchSpace
from nasfpn.space.serialize import FORMAT_VERSION

__all__ = [
    "BUILTIN",
    "CELL_FIELDS",
    "FORMAT_VERSION",
    "GROUPS",
    "KINDS",
    "NASFPN",
    "OPS",
    "OP_NAMES",
    "BlockSpec",
    "CellPlan",
    "Decision",
    "Genotype",
    "InvalidGenotypeError",
    "MergingCell",
    "SearchSpace",
    "from_block_specs",
    "genotype_key",
    "get_genotype",
    "to_block_specs",
]
