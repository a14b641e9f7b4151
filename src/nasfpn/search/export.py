"""Export a search's result: ``best_genotype.json`` and ``top_k.json``, with provenance.

Both are ranked by :func:`nasfpn.rewards.rank`: by the mean reward over each architecture's
runs, the re-evaluated ones first (docs/search.md, "Re-evaluation").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nasfpn import rewards
from nasfpn.cost import pareto_front
from nasfpn.rewards import COSTS
from nasfpn.space import Genotype, SearchSpace

BEST_FILE = "best_genotype.json"
TOP_K_FILE = "top_k.json"


def rank(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`nasfpn.rewards.rank` with each entry's ``genotype`` and ``config_hash`` (of its
    first ``ok`` run) and ``metrics`` (of the first ``ok`` run it is ranked by: a stand-alone
    one where there is one)."""
    entries = rewards.rank(records)
    for entry in entries:
        first = records[entry["record"] - 1]
        measured = records[entry["measured_record"] - 1]
        entry.update(metrics=measured["metrics"], config_hash=first.get("config_hash", ""),
                     genotype=first["genotype"])  # fmt: skip
    return entries


METRIC = {
    rewards.PROXY: "AP on the proxy reward split (mean over the architecture's stand-alone runs)",
    rewards.SUPERNET: "AP on the proxy reward split on shared weights (its supernet score: no "
    "stand-alone run of it finished)",
}


PARETO_FILE = "pareto.json"


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
        "reward": best["reward_mean"],
        "reward_mean": best["reward_mean"],
        "reward_std": best["reward_std"],
        "rewards": best["rewards"],
        "seeds": best["seeds"],
        "evaluations": best["evaluations"],
        "metric": METRIC[best["reward_source"]],
        "reward_source": best["reward_source"],
        "score": best["score"],
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


def architecture_costs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per costed architecture: its mean stand-alone AP (over its ``ok`` proxy runs) and its
    measured cost (``latency_ms``, ``cost_flops``), in the order first seen."""
    costs: dict[str, dict[str, Any]] = {}
    aps: dict[str, list[float]] = {}
    for record in records:
        metrics = record.get("metrics") or {}
        key = record.get("key")
        if all(metrics.get(name) is not None for name in COSTS):
            costs.setdefault(key, {"key": key, "genotype": record.get("genotype"),
                                   **{name: metrics[name] for name in COSTS}})  # fmt: skip
        if (record.get("status") == "ok" and metrics.get("AP") is not None
                and record.get("reward_source", "proxy") == "proxy"):  # fmt: skip
            aps.setdefault(key, []).append(float(metrics["AP"]))
    out = []
    for key, entry in costs.items():
        if aps.get(key):
            out.append({**entry, "AP": sum(aps[key]) / len(aps[key]), "runs": len(aps[key])})
    return out


def export_pareto(out: Path, records: list[dict[str, Any]]) -> None:
    """Write ``pareto.json``: the architectures no other beats on both mean AP and cost, one
    front for latency and one for FLOPs (docs/cost.md)."""
    archs = architecture_costs(records)
    fronts = {}
    for cost in COSTS:
        members = pareto_front([(a[cost], a["AP"]) for a in archs])
        fronts[cost] = [archs[i] for i in members]
    doc = {"search": str(out), "architectures": len(archs), "fronts": fronts}
    _write(out / PARETO_FILE, json.dumps(doc, indent=2))
