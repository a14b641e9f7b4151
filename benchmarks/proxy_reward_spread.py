"""Does the proxy reward tell pyramids apart? Seed-to-seed spread against genotype-to-genotype,
and (with two precisions) whether bf16 autocast ranks pyramids like float32.

Runs proxy trials with a preset (default ``cpu-tiny``): the published NAS-FPN cell with
``--seeds`` training seeds, and ``--genotypes`` random genotypes of the search space
(``SearchSpace().sample(random.Random(k))`` for k = 0..N-1) with seed 0, once per precision of
``--amp`` (``amp=none`` is float32, ``amp=bf16`` bf16 autocast). Prints every trial (AP, AP50,
iterations, train/eval seconds, the precision it used), the mean, std and std/mean of each group
and, for two precisions, Kendall's tau between their genotype rankings and the shift of the
mean AP against the first precision's seed std.

    uv run python benchmarks/proxy_reward_spread.py [--seeds 5] [--genotypes 10]
        [--amp none,bf16] [--jobs 2] [--preset cpu-tiny] [--set key=value ...] [--json OUT]

Each trial is a ``nasfpn proxy-train --json`` process; ``--jobs`` of them run at once. A trial's
AP and iteration count do not depend on what runs beside it (the budget is steps; CPU training
is deterministic), so running two at a time changes the seconds, not the rewards.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from scipy.stats import kendalltau

from nasfpn.space import SearchSpace

NAMES = {"none": "fp32", "bf16": "bf16", "auto": "auto"}


def _trial(job: dict, preset: str, overrides: list[str]) -> dict:
    cmd = [sys.executable, "-m", "nasfpn", "proxy-train", job["arch"], "--config", preset,
           "--json", "--set", f"seed={job['seed']}", "--set", f"amp={job['amp']}"]  # fmt: skip
    for item in overrides:
        cmd += ["--set", item]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    row = {
        "name": job["name"], "seed": job["seed"], "amp": job["amp"],
        "precision": result["precision"], "status": result["status"], "AP": result["AP"],
        "AP50": result["AP50"], "iterations": result["iterations"],
        "train_seconds": result["train_seconds"], "eval_seconds": result["eval_seconds"],
        "wall_seconds": time.perf_counter() - start,
    }  # fmt: skip
    print(f"{row['name']:<12} seed {row['seed']}  {row['precision']:<5} {row['status']:<8} "
          f"AP {row['AP']:.4f}  AP50 {row['AP50']:.4f}  {row['iterations']:4d} it  "
          f"train {row['train_seconds']:5.1f} s  eval {row['eval_seconds']:4.1f} s  "
          f"wall {row['wall_seconds']:5.1f} s", flush=True)  # fmt: skip
    return row


def _stats(rows: list[dict]) -> dict:
    aps = [r["AP"] for r in rows]
    mean = statistics.fmean(aps) if aps else float("nan")
    std = statistics.stdev(aps) if len(aps) > 1 else 0.0
    nan = float("nan")
    return {"n": len(aps), "mean": mean, "std": std, "cv": std / mean if mean else nan,
            "min": min(aps, default=nan), "max": max(aps, default=nan)}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the published cell")
    parser.add_argument("--genotypes", type=int, default=10, help="random genotypes (seed 0)")
    parser.add_argument("--amp", default="none,bf16",
                        help="precisions, comma-separated: none (fp32), bf16, auto")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="trials at once")
    parser.add_argument("--preset", default="cpu-tiny", help="proxy preset or YAML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset key (repeatable)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    amps = args.amp.split(",")

    space = SearchSpace()
    folder = Path(tempfile.mkdtemp(prefix="reward-spread-"))
    jobs = []
    for amp in amps:
        jobs += [{"name": "nasfpn", "arch": "nasfpn", "seed": s, "amp": amp}
                 for s in range(args.seeds)]  # fmt: skip
        for k in range(args.genotypes):
            path = folder / f"random-{k}.json"
            space.decode(space.sample(random.Random(k))).save(path)
            jobs.append({"name": f"random-{k}", "arch": str(path), "seed": 0, "amp": amp})
    start = time.time()
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda job: _trial(job, args.preset, args.set), jobs))
    wall = time.time() - start

    groups = {}
    print("\n| precision | group | trials | mean AP | std | std/mean | min | max |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for amp in amps:
        mine = [r for r in rows if r["amp"] == amp]
        seeds = _stats([r for r in mine if r["name"] == "nasfpn"])
        genotypes = _stats([r for r in mine if r["name"] != "nasfpn"])
        groups[amp] = {
            "seeds": seeds,
            "genotypes": genotypes,
            "spread_ratio": genotypes["std"] / seeds["std"] if seeds["std"] else None,
        }
        for label, s in (("published cell, by seed", seeds), ("random genotypes", genotypes)):
            print(f"| {NAMES[amp]} | {label} | {s['n']} | {s['mean']:.4f} | {s['std']:.4f} | "
                  f"{s['cv']:.3f} | {s['min']:.4f} | {s['max']:.4f} |")  # fmt: skip
    out = {
        "preset": args.preset, "overrides": args.set, "jobs": args.jobs,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__,
                    "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "date": time.strftime("%Y-%m-%d", time.gmtime()), "wall_seconds": wall,
        "trials": rows, "groups": groups,
    }  # fmt: skip
    if len(amps) == 2:
        a, b = amps
        ap = {amp: [r["AP"] for r in rows if r["amp"] == amp and r["name"] != "nasfpn"]
              for amp in amps}  # fmt: skip
        tau = kendalltau(ap[a], ap[b]) if len(ap[a]) > 1 else None
        shift = statistics.fmean(r["AP"] for r in rows if r["amp"] == b) - statistics.fmean(
            r["AP"] for r in rows if r["amp"] == a
        )
        seed_std = groups[a]["seeds"]["std"]
        out["comparison"] = {
            "reference": a, "other": b,
            "kendall_tau": None if tau is None else float(tau.statistic),
            "kendall_p": None if tau is None else float(tau.pvalue),
            "mean_shift": shift, "reference_seed_std": seed_std,
            "shift_below_seed_std": abs(shift) < seed_std,
        }  # fmt: skip
        if tau is not None:
            print(f"\nKendall tau ({NAMES[a]} vs {NAMES[b]} ranking of the genotypes): "
                  f"{tau.statistic:.3f} (p {tau.pvalue:.2g})")  # fmt: skip
        print(f"mean AP shift {NAMES[b]} - {NAMES[a]} over all trials: {shift:+.4f} "
              f"(|shift| {'<' if abs(shift) < seed_std else '>='} the {NAMES[a]} seed std "
              f"{seed_std:.4f})")  # fmt: skip
    print(f"\n{len(rows)} trials, {args.jobs} at a time, in {wall / 60:.1f} min")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
