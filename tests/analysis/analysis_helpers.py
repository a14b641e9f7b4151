"""Hand-written search folders in the documented format (docs/search.md): no Ray, no training."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml

from nasfpn.space import SearchSpace

SPACE = SearchSpace()
T0 = 1_700_000_000.0


def actions(seed: int, space: SearchSpace = SPACE) -> list[int]:
    return space.sample(random.Random(seed))


def record(
    step: int,
    status: str = "ok",
    reward: float | None = 0.3,
    *,
    seed: int | None = None,
    trial_id: str | None = None,
    start: float = 0.0,
    seconds: float = 60.0,
    metrics: dict[str, Any] | None = None,
    error: str | None = None,
    duplicate_of: str | None = None,
    space: SearchSpace = SPACE,
) -> dict[str, Any]:
    """A ledger record as the searcher writes it; ``seed`` picks the architecture."""
    acts = actions(step if seed is None else seed, space)
    genotype = space.decode(acts)
    if metrics is None and status in ("ok", "early_stopped"):
        metrics = {"AP": reward, "AP50": 2 * reward, "AP75": reward / 2, "APs": 0.1, "APm": 0.2,
                   "APl": 0.3, "params": 1_000_000 + 1000 * step, "flops": 5e8 + 1e6 * step,
                   "train_seconds": seconds - 5, "eval_seconds": 5.0, "epochs": 1,
                   "iterations": 3}  # fmt: skip
    return {
        "trial_id": trial_id or f"t{step}",
        "controller_step": step,
        "origin": "policy",
        "actions": acts,
        "genotype": genotype.to_dict(),
        "key": genotype.key(),
        "reward": reward,
        "status": status,
        "error": error,
        "duplicate_of": duplicate_of,
        "metrics": metrics,
        "losses": {"loss_cls": 1.0, "loss_box": 0.5} if status == "ok" else {},
        "node": "vm",
        "start_time": T0 + start,
        "end_time": T0 + start + seconds,
        "config_hash": "abc123",
    }


def mixed_records() -> list[dict[str, Any]]:
    """Nine records with every status, a duplicate and a resume (controller steps 7, 6)."""
    first = record(0, reward=0.30, start=0, seconds=100)
    oom = "RuntimeError: CUDA <out of memory>"
    worker = "the trial's worker failed 3 times (Ray retried it)"
    return [
        first,
        record(1, reward=0.25, start=0, seconds=120),
        record(2, reward=0.40, start=100, seconds=100,
               metrics={"AP": 0.40, "params": 900_000, "flops": 6e8}),
        {**record(3, "duplicate", reward=0.30, seed=0, trial_id="dup-3", start=200, seconds=0),
         "metrics": {}, "duplicate_of": first["trial_id"]},
        record(4, "failed", reward=0.0, start=200, seconds=30, metrics=None, error=oom),
        record(5, "diverged", reward=0.0, start=230, seconds=40, metrics={"AP": None},
               error="the loss is not finite"),
        record(7, "error", reward=0.0, start=1000, seconds=10, metrics={}, error=worker),
        record(6, "early_stopped", reward=0.35, start=1000, seconds=50),
        record(8, reward=0.20, start=1100, seconds=100,
               metrics={"AP": 0.20, "params": 800_000, "flops": 4e8, "worker_start": 1.0}),
    ]  # fmt: skip


def reevaluation(of: dict[str, Any], reward: float, seed: int, start: float) -> dict[str, Any]:
    """An extra-seed run of the architecture of record ``of``, as the searcher writes it."""
    run = record(of["controller_step"], reward=reward, trial_id=f"r-{of['trial_id']}-{seed}",
                 start=start)  # fmt: skip
    return {**run, "key": of["key"], "genotype": of["genotype"], "actions": None,
            "origin": "reevaluation", "phase": "reevaluation", "seed": seed,
            "reevaluation_of": of["trial_id"], "precision": "bf16"}  # fmt: skip


def health_lines(n: int) -> list[dict[str, Any]]:
    """controller.jsonl lines; ``baseline`` is missing until the first update (line 3)."""
    lines = []
    for i in range(1, n + 1):
        line = {"ledger_records": i, "time": T0 + 10 * i, "proposals": float(i + 1),
                "unique_fraction": 1.0 / i, "policy_entropy": 40.0 - i}  # fmt: skip
        if i >= 3:
            line["baseline"] = 0.1 * i
        lines.append(line)
    return lines


def write_search(
    folder: Path,
    records: list[dict[str, Any]],
    *,
    health: list[dict[str, Any]] | None = None,
    config: dict[str, Any] | None = None,
    cut: str = "",
) -> Path:
    """A search folder: ledger.jsonl (plus ``cut``, a last line with no newline),
    controller.jsonl when ``health`` is given, search_config.yaml unless ``config`` is {}."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "ledger.jsonl").write_text(text + cut)
    if health is not None:
        (folder / "controller.jsonl").write_text("".join(json.dumps(h) + "\n" for h in health))
    if config is None:
        config = {"algorithm": "reinforce", "trials": 10, "cpus_per_trial": 2.0,
                  "gpus_per_trial": 0.5}  # fmt: skip
    if config:
        (folder / "search_config.yaml").write_text(yaml.safe_dump(config))
    return folder
