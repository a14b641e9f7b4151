"""Does the search find better pyramids than random search? Full searches on the real proxy.

For each algorithm, a whole `nasfpn search` on the embedded set with the same trial budget and
seed (the `cpu-tiny` proxy, its top 3 re-evaluated with one more seed); then the winners (the top
``--retrain-top`` of each search by mean reward), the published NAS-FPN cell and the FPN
baseline are retrained with the `cpu-tiny` retrain recipe. Reported per algorithm: the best
re-evaluated proxy AP, the mean reward of the last quarter of its trials against the first,
its unique architectures, and the retrain AP of its winners against the published cell and
FPN; a figure of reward against trials, one line per algorithm.

    uv run python benchmarks/search_quality.py --out runs/search-quality [--trials 100]
        [--algorithms random,reinforce,evolution] [--seed 0] [--retrain-top 3] [--json OUT]
        [--oneshot-seeds 0,1 [--oneshot-trials 300] [--oneshot-set KEY=VALUE ...]]

``--oneshot-seeds`` adds one-shot searches (docs/oneshot.md), one per seed: `nasfpn search
--reward supernet` with evolution, which trains its own shared weights (the supernet's path
seed and the search's seed both the given one), scores ``--oneshot-trials`` samples on them,
trains its top 3 stand-alone twice each (so that its best re-evaluated proxy AP is a two-run
mean, like the others'), and has its top ``--retrain-top`` retrained like the others. Its
compute counts the shared weights' training (its wall seconds), the scoring and the stand-alone
runs (the busy time of its ledger) and its retrainings.

Resumable: every step is a `nasfpn` command whose folder persists under ``--out``; run the same
command again after a crash (or to span sessions) and it continues each search with
`nasfpn search --resume` and each retraining with `nasfpn retrain --resume`, redoing nothing.
One seed per algorithm is weak evidence: the spread between seeds is not measured by one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from matplotlib.figure import Figure

from nasfpn.analysis import load_ledger, top_k
from nasfpn.space import NASFPN, Genotype

NASFPN_CMD = [sys.executable, "-m", "nasfpn"]
RETRAIN_SECONDS: dict[str, float] = {}  # retraining name -> its training + evaluation seconds


def _run(cmd: list[str], log: Path) -> None:
    """Run one nasfpn command, its output appended to ``log``; stop on failure."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {done.returncode}); see {log}")


def search(out: Path, algorithm: str, trials: int, seed: int, extra: list[str],
           name: str | None = None) -> Path:  # fmt: skip
    folder = out / (name or f"search-{algorithm}")
    if (folder / "search_config.yaml").is_file():
        cmd = [*NASFPN_CMD, "search", "--resume", str(folder), "--trials", str(trials)]
    else:
        cmd = [*NASFPN_CMD, "search", "--out", str(folder), "--algorithm", algorithm,
               "--trials", str(trials), "--seed", str(seed),
               "--set", "reevaluate_top=3"]  # fmt: skip
        for item in extra:
            cmd += ["--set", item]
    _run(cmd, out / "commands.log")
    return folder


def oneshot(out: Path, seed: int, trials: int, extra: list[str]) -> Path:
    """A one-shot search (see the module's docstring), resumable like the others."""
    settings = ["reward=supernet", "reevaluate_seeds=2", f"supernet_options={{seed: {seed}}}",
                *extra]  # fmt: skip
    return search(out, "evolution", trials, seed, settings, name=f"search-oneshot-s{seed}")


def retrain(out: Path, name: str, arch: str, extra: list[str]) -> float:
    """The retrain AP on val of ``arch`` (a genotype file, a built-in name or fpn); its
    training and evaluation seconds are added to ``RETRAIN_SECONDS``."""
    folder = out / "retrain" / name
    metrics = folder / "metrics.json"
    if not (metrics.is_file() and json.loads(metrics.read_text()).get("status") == "ok"):
        cmd = [*NASFPN_CMD, "retrain", arch, "--out", str(folder), "--resume"]
        for item in extra:
            cmd += ["--set", item]
        _run(cmd, out / "commands.log")
    done = json.loads(metrics.read_text())
    RETRAIN_SECONDS[name] = float(done["train_seconds"]) + float(done["eval_seconds"])
    return float(done["final"]["AP"])


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of ``(start, end)`` intervals: the time something was running,
    without the gaps between sessions of a run that spans several."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def summary_of(folder: Path) -> dict:
    """What one search shows: its curve's quarters, unique architectures, its best."""
    df = load_ledger(folder)
    searched = df[df["phase"] == "search"]
    learnt = searched[searched["status"].isin(("ok", "duplicate", "diverged", "early_stopped"))]
    quarter = max(len(searched) // 4, 1)
    first = learnt[learnt["record"] <= searched["record"].iloc[quarter - 1]]["reward"]
    last = learnt[learnt["record"] > searched["record"].iloc[-quarter - 1]]["reward"]
    best = top_k(df, 5)
    trained = df[df["status"] != "duplicate"]
    supernet = folder / "supernet" / "supernet.json"
    weights = json.loads(supernet.read_text())["seconds"] if supernet.is_file() else 0.0
    return {
        "search_seconds": busy_seconds(list(zip(trained["start_time"], trained["end_time"])))
        + weights,
        "supernet_seconds": weights,
        "trials": len(searched),
        "unique": int(searched["key"].nunique()),
        "first_quarter_mean": float(first.mean()),
        "last_quarter_mean": float(last.mean()),
        "best_key": best["key"].iloc[0],
        "best_reward_mean": float(best["reward"].iloc[0]),
        "best_rewards": list(best["rewards"].iloc[0]),
        "rewards": searched["reward"].tolist(),
        "top": best[["key", "reward", "evaluations", "genotype"]].to_dict("records"),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/search-quality"))
    parser.add_argument("--trials", type=int, default=100, help="trials per search")
    parser.add_argument("--algorithms", default="random,reinforce,evolution")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain-top", type=int, default=3, help="winners retrained per search")
    parser.add_argument("--search-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a search key for every search (e.g. proxy.epochs=1)")  # fmt: skip
    parser.add_argument("--retrain-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a retrain key for every retraining (e.g. epochs=1)")  # fmt: skip
    parser.add_argument("--oneshot-seeds", default="", help="one-shot searches, e.g. 0,1")
    parser.add_argument("--oneshot-trials", type=int, default=300,
                        help="architectures each one-shot search scores")  # fmt: skip
    parser.add_argument("--oneshot-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a search key for the one-shot searches")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.time()

    results = {}
    for algorithm in [a for a in args.algorithms.split(",") if a]:
        folder = search(args.out, algorithm, args.trials, args.seed, args.search_set)
        results[algorithm] = summary_of(folder)
        print(f"{algorithm}: {results[algorithm]['trials']} trials, best "
              f"{results[algorithm]['best_reward_mean']:.4f}", flush=True)  # fmt: skip
    for seed in [int(s) for s in args.oneshot_seeds.split(",") if s]:
        folder = oneshot(args.out, seed, args.oneshot_trials,
                         [*args.search_set, *args.oneshot_set])  # fmt: skip
        name = f"oneshot-s{seed}"
        results[name] = summary_of(folder)
        print(f"{name}: {results[name]['trials']} scored, best stand-alone "
              f"{results[name]['best_reward_mean']:.4f}", flush=True)  # fmt: skip
    baselines = {
        "nasfpn": retrain(args.out, "nasfpn", "nasfpn", args.retrain_set),
        "fpn": retrain(args.out, "fpn", "fpn", args.retrain_set),
    }
    for res in results.values():
        res["retrained"] = []
        for rank, entry in enumerate(res["top"][: args.retrain_top], start=1):
            if entry["key"] == NASFPN.key():
                ap = baselines["nasfpn"]
            else:
                path = args.out / "retrain" / f"{entry['key']}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                Genotype.from_dict(entry["genotype"]).save(path)
                ap = retrain(args.out, entry["key"], str(path), args.retrain_set)
            res["retrained"].append({"rank": rank, "key": entry["key"], "retrain_ap": ap,
                                     "proxy_reward": entry["reward"]})  # fmt: skip

    print("\n| algorithm | trials | unique | best re-evaluated proxy AP | mean reward, first "
          "quarter | last quarter | retrain AP of its top "
          f"{args.retrain_top} | best of them |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for algorithm, res in results.items():
        aps = [r["retrain_ap"] for r in res["retrained"]]
        print(f"| {algorithm} | {res['trials']} | {res['unique']} | {res['best_reward_mean']:.4f} "
              f"| {res['first_quarter_mean']:.4f} | {res['last_quarter_mean']:.4f} | "
              f"{', '.join(f'{a:.4f}' for a in aps)} | {max(aps):.4f} |")  # fmt: skip
    print(f"\nretrain AP: published NAS-FPN cell {baselines['nasfpn']:.4f}, "
          f"FPN {baselines['fpn']:.4f}")  # fmt: skip
    print("\n| search | compute: search (of it shared weights) | its retrainings | total |")
    print("|---|---:|---:|---:|")
    for name, res in results.items():
        retrained = sum(RETRAIN_SECONDS.get(r["key"], 0.0) for r in res["retrained"]
                        if r["key"] != NASFPN.key())  # fmt: skip
        res["compute_seconds"] = res["search_seconds"] + retrained
        print(f"| {name} | {res['search_seconds'] / 60:.1f} min "
              f"({res['supernet_seconds'] / 60:.1f}) | {retrained / 60:.1f} min | "
              f"{res['compute_seconds'] / 60:.1f} min |")  # fmt: skip

    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for algorithm, res in results.items():
        rewards = res["rewards"]
        window = max(len(rewards) // 10, 1)
        smooth = [statistics.fmean(rewards[max(0, i - window + 1) : i + 1])
                  for i in range(len(rewards))]  # fmt: skip
        kind = ", shared-weight scores" if algorithm.startswith("oneshot") else ""
        ax.plot(range(1, len(rewards) + 1), smooth,
                label=f"{algorithm} (moving mean {window}{kind})")  # fmt: skip
    ax.set_xlabel("trials")
    ax.set_ylabel("reward (proxy AP, or shared-weight score)")
    ax.set_title("search reward against trials")
    ax.legend(fontsize=7)
    fig.savefig(args.out / "search_quality.png", dpi=100)
    for res in results.values():
        del res["top"]
    compute = sum(r["search_seconds"] for r in results.values()) + sum(RETRAIN_SECONDS.values())
    out = {"trials": args.trials, "seed": args.seed, "baselines": baselines,
           "results": results, "retrain_seconds": RETRAIN_SECONDS,
           "compute_seconds": compute, "this_run_seconds": time.time() - start}  # fmt: skip
    print(
        f"figure: {args.out / 'search_quality.png'}; searches and retrainings ran "
        f"{compute / 3600:.2f} h in all (this invocation {out['this_run_seconds'] / 60:.1f} min)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
