"""How well do shared-weight scores rank pyramids? Kendall tau of supernet scores against a
fidelity study's retrain AP and stand-alone proxy AP, for each supernet folder and BN setting.

    uv run python benchmarks/supernet_fidelity.py SUPERNET_DIR [SUPERNET_DIR ...]
        [--study FIDELITY_DIR ...] [--no-recorded] [--bn-batches 8,0] [--threads 1] [--json OUT]

Each architecture of the reference set is scored on each supernet (``Scorer``, one process)
with each ``--bn-batches`` value. The reference: the 10 architectures of benchmarks/README.md,
"Proxy fidelity" (``reference_set(FidelityConfig())``) with the proxy and retrain APs recorded
there (2026-12-01, the cpu-tiny proxy and retrain recipe on the embedded set; left out with
``--no-recorded``), plus the complete architectures of each ``--study`` (a `nasfpn fidelity`
folder of the same proxy and retrain settings; an architecture already listed keeps its first
figures). Prints one row per architecture and, per supernet and setting,
tau-b with its 95% percentile bootstrap interval (2,000 resamples of the architectures, seed 0)
against each side, and the seconds a candidate took.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from nasfpn.analysis.fidelity import fidelity_table, load_fidelity, load_reference
from nasfpn.fidelity.config import FidelityConfig
from nasfpn.fidelity.study import reference_set
from nasfpn.space.serialize import genotype_from_dict
from nasfpn.supernet import Scorer, read_summary

# benchmarks/README.md, "Proxy fidelity": name -> (proxy AP, mean of 2 seeds; retrain AP)
RECORDED = {
    "nasfpn": (0.2470, 0.3982), "random-0": (0.1554, 0.2984), "random-1": (0.0638, 0.0939),
    "random-2": (0.1103, 0.1997), "random-3": (0.1921, 0.2863), "random-4": (0.2698, 0.3964),
    "random-5": (0.2591, 0.3832), "random-6": (0.1060, 0.1294), "random-7": (0.1112, 0.2062),
    "random-8": (0.2542, 0.3559),
}  # fmt: skip


def reference(studies: list[Path], recorded: bool = True) -> list[dict]:
    """``[{name, genotype, proxy_ap, retrain_ap}]`` of the complete architectures."""
    rows = []
    if recorded:
        rows = [{"name": r["name"], "genotype": genotype_from_dict(r["genotype"]),
                 "proxy_ap": RECORDED[r["name"]][0], "retrain_ap": RECORDED[r["name"]][1]}
                for r in reference_set(FidelityConfig())]  # fmt: skip
    for study in studies:
        ref = load_reference(study)
        table = fidelity_table(load_fidelity(study), ref).set_index("key")
        for r in ref:
            row = table.loc[r["key"]]
            if row["complete"]:
                rows.append({"name": r["name"], "genotype": genotype_from_dict(r["genotype"]),
                             "proxy_ap": float(row["proxy_ap"]),
                             "retrain_ap": float(row["retrain_ap"])})  # fmt: skip
    seen, unique = set(), []
    for row in rows:
        if row["genotype"].key() not in seen:
            seen.add(row["genotype"].key())
            unique.append(row)
    return unique


def tau_with_interval(x: np.ndarray, y: np.ndarray, resamples: int = 2000) -> dict:
    rng = np.random.default_rng(0)
    taus = []
    for _ in range(resamples):
        pick = rng.integers(0, len(x), len(x))
        if len(set(x[pick])) > 1 and len(set(y[pick])) > 1:
            taus.append(float(kendalltau(x[pick], y[pick]).statistic))
    low, high = np.quantile(taus, [0.025, 0.975])
    return {"tau": float(kendalltau(x, y).statistic), "low": float(low), "high": float(high)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("supernets", nargs="+", type=Path)
    parser.add_argument(
        "--study",
        type=Path,
        action="append",
        default=[],
        help="a `nasfpn fidelity` folder whose architectures join (repeatable)",
    )
    parser.add_argument(
        "--no-recorded", action="store_true", help="leave out the 10 recorded architectures"
    )
    parser.add_argument("--bn-batches", default="8,0", help="comma-separated values (8,0)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write every score and figure here")
    args = parser.parse_args()
    ref = reference(args.study, recorded=not args.no_recorded)
    proxy = np.array([r["proxy_ap"] for r in ref])
    retrain = np.array([r["retrain_ap"] for r in ref])
    results = []
    for folder in args.supernets:
        steps = read_summary(folder)["steps"]
        for bn in (int(b) for b in args.bn_batches.split(",")):
            scorer = Scorer(folder, bn_batches=bn, threads=args.threads)
            scores = [scorer.score(r["genotype"], r["name"]) for r in ref]
            ap = np.array([s.AP for s in scores])
            entry = {"supernet": str(folder), "steps": steps, "bn_batches": bn,
                     "machine": scorer.describe(),
                     "vs_retrain": tau_with_interval(ap, retrain),
                     "vs_proxy": tau_with_interval(ap, proxy),
                     "seconds_median": statistics.median(s.seconds for s in scores),
                     "scores": {s.arch: s.AP for s in scores}}  # fmt: skip
            results.append(entry)
            print(f"{folder} ({steps} steps), bn_batches {bn}: n={len(ref)}")
            for r, s in zip(ref, scores):
                print(f"  {r['name']:<12} shared {s.AP:.4f}  proxy {r['proxy_ap']:.4f}  "
                      f"retrain {r['retrain_ap']:.4f}  {s.seconds:.2f} s")  # fmt: skip
            for side in ("vs_retrain", "vs_proxy"):
                t = entry[side]
                print(f"  tau {side}: {t['tau']:.3f} [{t['low']:.2f}, {t['high']:.2f}]")
            print(f"  median {entry['seconds_median']:.2f} s a candidate", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
