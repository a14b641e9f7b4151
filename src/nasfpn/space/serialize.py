"""Genotypes as JSON files a person can read and a search can annotate.

A bare document::

    {
      "format_version": 1,
      "min_level": 3,
      "max_level": 7,
      "cells": [
        {"node": 5, "input_a": 1, "input_b": 3, "level": 4, "op": "global_pool", ...},
        ...
      ]
    }

``"node"`` is only a reading aid (the node the cell creates); it is checked when present.
A search may wrap the genotype and add provenance: ``{"format_version": 1, "genotype": {...},
"reward": 0.31, "trial_id": "..."}``. Unknown keys are allowed at the top of a document
(provenance), nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from nasfpn.space.genotype import CELL_FIELDS, Genotype, InvalidGenotypeError, MergingCell

FORMAT_VERSION = 1
_GENOTYPE_KEYS = ("min_level", "max_level", "cells")
_RESERVED = ("format_version", "genotype")


def genotype_to_dict(genotype: Genotype) -> dict[str, Any]:
    """The bare document of a valid genotype."""
    genotype.validate()
    cells = [
        {"node": genotype.num_inputs + k} | {field: getattr(c, field) for field in CELL_FIELDS}
        for k, c in enumerate(genotype.cells)
    ]
    return {
        "format_version": FORMAT_VERSION,
        "min_level": genotype.min_level,
        "max_level": genotype.max_level,
        "cells": cells,
    }


def genotype_from_dict(doc: Any) -> Genotype:
    """Read a bare document, or one with the genotype under ``"genotype"``; validate it."""
    if not isinstance(doc, Mapping):
        raise InvalidGenotypeError(
            f"a genotype document must be a JSON object, got {type(doc).__name__}"
        )
    _check_version(doc.get("format_version"), "the document")
    body = doc
    if "genotype" in doc:
        body = doc["genotype"]
        if not isinstance(body, Mapping):
            raise InvalidGenotypeError(
                f'"genotype" must be a JSON object, got {type(body).__name__}'
            )
        if "format_version" in body:
            _check_version(body["format_version"], '"genotype"')
        unknown = sorted(set(body) - {"format_version", *_GENOTYPE_KEYS})
        if unknown:
            raise InvalidGenotypeError(
                f'unknown keys {unknown} in "genotype"; expected {list(_GENOTYPE_KEYS)} '
                "(put provenance at the top of the document)"
            )
    missing = [key for key in _GENOTYPE_KEYS if key not in body]
    if missing:
        raise InvalidGenotypeError(
            f"the genotype lacks {missing}; expected the keys {list(_GENOTYPE_KEYS)}"
        )
    if not isinstance(body["cells"], list):
        raise InvalidGenotypeError(f'"cells" must be a list, got {type(body["cells"]).__name__}')
    cells = [_cell_from_dict(k, c) for k, c in enumerate(body["cells"])]
    genotype = Genotype(tuple(cells), body["min_level"], body["max_level"]).validate()
    for k, c in enumerate(body["cells"]):
        if "node" in c and c["node"] != genotype.num_inputs + k:
            raise InvalidGenotypeError(
                f"cell {k}: node={c['node']!r}, but cell {k} creates node "
                f'{genotype.num_inputs + k}; fix or drop the reading aid "node"'
            )
    return genotype


def to_json(genotype: Genotype, /, **provenance: Any) -> str:
    """Indented JSON with one line per cell; with provenance, the genotype goes under
    ``"genotype"`` and the provenance keys beside it."""
    doc = genotype_to_dict(genotype)
    if provenance:
        clash = sorted(set(provenance) & set(_RESERVED))
        if clash:
            raise ValueError(f"provenance keys {clash} are reserved; rename them")
        body = {key: doc[key] for key in _GENOTYPE_KEYS}
        doc = {"format_version": FORMAT_VERSION, "genotype": body, **provenance}
    return _format(doc, "") + "\n"


def from_json(text: str) -> Genotype:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidGenotypeError(f"not valid JSON: {err}") from err
    return genotype_from_dict(doc)


def save(genotype: Genotype, path: str | PathLike[str], /, **provenance: Any) -> None:
    Path(path).write_text(to_json(genotype, **provenance))


def load(path: str | PathLike[str]) -> Genotype:
    """Read a genotype file; errors in its content name the file."""
    text = Path(path).read_text()
    try:
        return from_json(text)
    except InvalidGenotypeError as err:
        raise InvalidGenotypeError(f"{path}: {err}") from err


def _check_version(version: Any, where: str) -> None:
    if version is None:
        raise InvalidGenotypeError(
            f'{where} has no "format_version"; expected "format_version": {FORMAT_VERSION}'
        )
    if isinstance(version, bool) or not isinstance(version, int) or version != FORMAT_VERSION:
        raise InvalidGenotypeError(
            f"{where} has format_version={version!r}; this nasfpn reads format_version "
            f"{FORMAT_VERSION} only (write it with this version's Genotype.save)"
        )


def _cell_from_dict(k: int, doc: Any) -> MergingCell:
    if not isinstance(doc, Mapping):
        raise InvalidGenotypeError(f"cell {k} must be a JSON object, got {type(doc).__name__}")
    missing = [field for field in CELL_FIELDS if field not in doc]
    unknown = sorted(set(doc) - {"node", *CELL_FIELDS})
    if missing or unknown:
        raise InvalidGenotypeError(
            f"cell {k}: missing keys {missing}, unknown keys {unknown}; expected "
            f'{list(CELL_FIELDS)} and optionally "node"'
        )
    return MergingCell(*(doc[field] for field in CELL_FIELDS))


def _format(doc: Mapping[str, Any], indent: str) -> str:
    """JSON with nested objects indented and each cell on one line."""
    lines = []
    for key, value in doc.items():
        if key == "cells":
            rows = ",\n".join(f"{indent}    {json.dumps(cell)}" for cell in value)
            text = f"[\n{rows}\n{indent}  ]"
        elif key == "genotype":
            text = _format(value, indent + "  ")
        else:
            text = json.dumps(value)
        lines.append(f"{indent}  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + f"\n{indent}}}"
