"""Does the proxy reward tell pyramids apart? Seed-to-seed spread against genotype-to-genotype.

Runs proxy trials (``nasfpn.proxy_train.run``) with a preset (default ``cpu-tiny``): the
published NAS-FPN cell with ``--seeds`` training seeds, and ``--genotypes`` random genotypes of
the search space (``SearchSpace().sample(random.Random(k))`` for k = 0..N-1) with seed 0. Prints
every trial (AP, AP50, iterations, train/eval seconds) and the mean and standard deviation of
the AP of each group. If the genotypes' spread is not larger than the seeds', one trial's reward
cannot rank pyramids.

    uv run python benchmarks/proxy_reward_spread.py [--seeds 3] [--genotypes 3]
        [--preset cpu-tiny] [--set key=value ...] [--json OUT]

Trials run one after another in this process; with ``cpu-tiny`` each takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path

import torch

from nasfpn.proxy_train import load_proxy_config, run
from nasfpn.space import NASFPN, SearchSpace


def _trial(name: str, genotype, preset: str, overrides: list[str]) -> dict:
    cfg = load_proxy_config(preset, overrides)
    start = time.perf_counter()
    result = run(genotype, cfg)
    row = {
        "name": name,
        "seed": cfg.seed,
        "status": result.status,
        "AP": result.AP,
        "AP50": result.AP50,
        "iterations": result.iterations,
        "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds,
        "wall_seconds": time.perf_counter() - start,
    }
    print(
        f"{name:<14} seed {cfg.seed}  {result.status:<8} AP {result.AP:.4f}  "
        f"AP50 {result.AP50:.4f}  {result.iterations:4d} it  train {result.train_seconds:5.1f} s"
        f"  eval {result.eval_seconds:4.1f} s  wall {row['wall_seconds']:5.1f} s",
        flush=True,
    )
    return row


def _stats(rows: list[dict]) -> dict:
    aps = [r["AP"] for r in rows]
    return {
        "n": len(aps),
        "mean": statistics.fmean(aps) if aps else float("nan"),
        "std": statistics.stdev(aps) if len(aps) > 1 else 0.0,
        "min": min(aps, default=float("nan")),
        "max": max(aps, default=float("nan")),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the published cell")
    parser.add_argument("--genotypes", type=int, default=3, help="random genotypes (seed 0)")
    parser.add_argument("--preset", default="cpu-tiny", help="proxy preset or YAML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset key (repeatable)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)

    rows_seeds = [
        _trial("nasfpn", NASFPN, args.preset, [*args.set, f"seed={s}"]) for s in range(args.seeds)
    ]
    space = SearchSpace()
    rows_random = []
    for k in range(args.genotypes):
        genotype = space.decode(space.sample(random.Random(k)))
        rows_random.append(_trial(f"random-{k}", genotype, args.preset, [*args.set, "seed=0"]))
    seeds, genotypes = _stats(rows_seeds), _stats(rows_random)
    print()
    print("| group | trials | mean AP | std | min | max |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s in (("published cell, by seed", seeds), ("random genotypes, seed 0", genotypes)):
        print(f"| {name} | {s['n']} | {s['mean']:.4f} | {s['std']:.4f} | {s['min']:.4f} | "
              f"{s['max']:.4f} |")  # fmt: skip
    wider = genotypes["std"] > seeds["std"]
    print(
        f"\nspread across genotypes ({genotypes['std']:.4f}) "
        f"{'exceeds' if wider else 'does not exceed'} spread across seeds ({seeds['std']:.4f})"
    )
    out = {
        "preset": args.preset,
        "overrides": args.set,
        "machine": {"platform": platform.platform(), "torch": torch.__version__},
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "seeds": {"trials": rows_seeds, **seeds},
        "genotypes": {"trials": rows_random, **genotypes},
        "genotype_spread_exceeds_seed_spread": wider,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
