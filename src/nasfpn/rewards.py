"""An architecture's reward from the ledger records of its runs, and the ranking of a search.

One trial's reward is a noisy draw, and the best of many noisy draws is biased upward: the
search therefore ends by re-training its top architectures with more seeds (docs/search.md,
"Re-evaluation"), and every ranking it writes (``best_genotype.json``, ``top_k.json``) and
:func:`nasfpn.analysis.top_k` come from :func:`rank` here. Plain Python over record dicts: the
search driver (with Ray) and the analysis (without) share it.

A record is a ledger line (docs/search.md); the fields read here are ``key``, ``status``,
``reward``, ``duplicate_of``, ``phase`` (``search`` or ``reevaluation``; ``search`` when
absent), ``reward_source`` (``proxy`` or ``supernet``; ``proxy`` when absent), ``seed``,
``trial_id`` and ``controller_step``.

A one-shot search's samples are scored on shared weights (``reward_source: supernet``) and its
top architectures then trained stand-alone (``proxy``). The two measure different things (a
shared-weight score is lower, and ranks only roughly like stand-alone training: docs/oneshot.md),
so they are never averaged together: an architecture with stand-alone runs is ranked by them
alone, ahead of every architecture known only by its shared-weight score.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

SEARCH, REEVALUATION = "search", "reevaluation"
# an architecture's cost in a record's metrics (docs/cost.md): its latency, its costed FLOPs
LATENCY, FLOPS = "latency_ms", "cost_flops"
COSTS = (LATENCY, FLOPS)
PROXY, SUPERNET = "proxy", "supernet"  # where a reward came from (a record's reward_source)
# runs whose reward measures the architecture trained to the end of its schedule: `ok`, and
# `diverged` (its loss blew up: the recorded penalty is what that seed gave). Timeouts, errors
# and failures measure the machine, and ASHA's early stops a shorter schedule: they do not count.
SCORED = ("ok", "diverged")


def phase(record: Mapping[str, Any]) -> str:
    """``search`` (a controller sample) or ``reevaluation`` (an extra seed of a top one)."""
    value = record.get("phase")
    return REEVALUATION if value == REEVALUATION else SEARCH


def source(record: Mapping[str, Any]) -> str:
    """``proxy`` (a stand-alone proxy training) or ``supernet`` (a shared-weight score)."""
    return SUPERNET if record.get("reward_source") == SUPERNET else PROXY


def is_trained(record: Mapping[str, Any]) -> bool:
    """A record of a training run (not a replayed duplicate)."""
    dup = record.get("duplicate_of")
    return record.get("status") != "duplicate" and (dup is None or _missing(dup))


def mean_std(values: Iterable[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for a single value)."""
    values = list(values)
    if not values:
        raise ValueError("no reward to average: expected at least one run")
    std = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), std


def rank(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The architectures with at least one ``ok`` run, best first.

    Each entry: ``key``; ``rewards`` (the reward of each scored run of the source it is ranked
    by, ledger order), ``seeds`` (theirs), ``reward_mean`` (also as ``reward``), ``reward_std``
    (None for one run), ``evaluations`` (those runs), ``reward_source`` (``proxy`` when it has
    stand-alone runs, else ``supernet``), ``score`` (its shared-weight score, or None),
    ``reevaluated`` (whether re-evaluation runs are among them), ``samples`` (controller samples
    of the key, duplicates included), the first ``ok`` search run's ``trial_id``,
    ``controller_step`` and ``record`` (its 1-based ledger position) for the caller to join on,
    and ``measured_record``, the position of the first ``ok`` run of the ranked source (of its
    first run when its stand-alone runs all diverged).

    Order: architectures with stand-alone runs first; among them the re-evaluated ones first,
    by mean reward, then the others by mean reward; then those known by their shared-weight
    score alone, by score. Ties go to the earlier controller step. A re-evaluated mean is over
    ``1 + seeds`` runs, while a single run's reward is the optimistic draw that re-evaluation
    corrects, so the latter never overtakes the former.
    """
    runs: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    samples: dict[str, int] = {}
    for number, record in enumerate(records, start=1):
        key = record["key"]
        if phase(record) == SEARCH:
            samples[key] = samples.get(key, 0) + 1
        if is_trained(record) and record.get("status") in SCORED:
            runs.setdefault(key, []).append((number, record))
    entries = []
    for key, scored in runs.items():
        ok = [(n, r) for n, r in scored if r["status"] == "ok"]
        first = next(((n, r) for n, r in ok if phase(r) == SEARCH), ok[0] if ok else None)
        if first is None:
            continue  # diverged every time: no measured reward
        shared = [float(r["reward"]) for _, r in scored if source(r) == SUPERNET]
        # stand-alone runs where there are any (a diverged one's penalty counts, as always)
        used = [(n, r) for n, r in scored if source(r) == PROXY] or scored
        measured = next(((n, r) for n, r in used if r["status"] == "ok"), used[0])
        rewards = [float(r["reward"]) for _, r in used]
        mean, std = mean_std(rewards)
        number, record = first
        entries.append({
            "key": key,
            "reward": mean,
            "reward_mean": mean,
            "reward_std": std,
            "rewards": rewards,
            "seeds": [r.get("seed") for _, r in used],
            "evaluations": len(rewards),
            "reward_source": source(measured[1]),
            "score": statistics.fmean(shared) if shared else None,
            "reevaluated": any(phase(r) == REEVALUATION for _, r in used),
            "samples": samples.get(key, 0),
            "trial_id": record["trial_id"],
            "controller_step": record["controller_step"],
            "record": number,
            "measured_record": measured[0],
        })  # fmt: skip
    return sorted(entries, key=lambda e: (e["reward_source"] != PROXY, not e["reevaluated"],
                                          -e["reward_mean"], e["controller_step"]))  # fmt: skip


def top_search_keys(records: Iterable[Mapping[str, Any]], k: int) -> list[str]:
    """The ``k`` best architectures by their search-phase runs alone: the ones to re-evaluate.

    Re-evaluation runs are left out, so the choice is the same however many of them a resumed
    search has already finished.
    """
    searched = [r for r in records if phase(r) == SEARCH]
    return [entry["key"] for entry in rank(searched)[:k]]


def _missing(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
