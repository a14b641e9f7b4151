"""Export a search's result: ``best_genotype.json`` and ``top_k.json``, with provenance."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

from nasfpn.space import Genotype, SearchSpace

BEST_FILE = "best_genotype.json"
TOP_K_FILE = "top_k.json"


def rank(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Architectures trained to the end, best mean reward first (duplicates replay, not add)."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r["status"] == "ok" and r.get("duplicate_of") is None:
            by_key.setdefault(r["key"], []).append(r)
    entries = []
    for key, runs in by_key.items():
        first = runs[0]
        entries.append({
            "key": key,
            "reward": statistics.fmean(r["reward"] for r in runs),
            "evaluations": len(runs),
            "samples": sum(r["key"] == key for r in records),
            "trial_id": first["trial_id"],
            "controller_step": first["controller_step"],
            "metrics": first["metrics"],
            "config_hash": first.get("config_hash", ""),
            "genotype": first["genotype"],
        })  # fmt: skip
    return sorted(entries, key=lambda e: (-e["reward"], e["controller_step"]))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def export_results(
    out: Path, records: list[dict[str, Any]], space: SearchSpace, top_k: int, config_hash: str
) -> dict[str, Any] | None:
    """Write the best genotype and the top-k list; returns the best entry (None if no trial
    finished). ``nasfpn retrain`` and ``nasfpn inspect`` read ``best_genotype.json`` as it is."""
    ranked = rank(records)
    _write(out / TOP_K_FILE, json.dumps({"search": str(out), "top_k": ranked[:top_k]}, indent=2))
    if not ranked:
        return None
    best = ranked[0]
    genotype = Genotype.from_dict(best["genotype"])
    provenance = {
        "reward": best["reward"],
        "metric": "AP on the proxy reward split",
        "trial_id": best["trial_id"],
        "controller_step": best["controller_step"],
        "key": best["key"],
        "config_hash": config_hash,
        "search": str(out),
    }
    tmp = out / f".{BEST_FILE}.tmp"
    genotype.save(tmp, **provenance)
    os.replace(tmp, out / BEST_FILE)
    return best
