"""Search overhead: how much of the trial slots' time the search spends on anything but trials.

    overhead = 1 - (sum of trial compute seconds) / (concurrent slots x wall seconds)

A trial's compute is the time its function ran on the worker (``worker_start`` to
``worker_end`` in the ledger's metrics: building the model, loading data, training, evaluating).
Everything else counts as overhead: Ray starting or reusing the worker, shipping the genotype,
the controller's propose/feedback, the ledger, checkpoints of the controller.

Two windows are reported. **Steady state** (the target, at most 5%): from the first moment every
slot is busy to the last moment every slot is busy, so the start of the search (Ray's start-up,
the first trials being placed) and its end (slots falling idle because no trials are left) are
left out. **Whole run**: from the driver's start to its end, everything included.

    uv run python benchmarks/search_overhead.py [--trials 12] [--concurrent 2] [--preset cpu-tiny]
        [--set proxy.KEY=VALUE ...] [--out DIR] [--json FILE]

With cpu-tiny trials of about a minute on a 2-core machine, 12 trials two at a time take about
seven minutes.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from nasfpn import config as config_io
from nasfpn.search import SearchConfig, read_ledger, run_search


def trial_intervals(records: list[dict]) -> list[tuple[float, float]]:
    """(worker start, worker end) of every trained trial; duplicates and errors ran nothing."""
    spans = []
    for r in records:
        metrics = r.get("metrics") or {}
        if "worker_start" in metrics and "worker_end" in metrics:
            spans.append((metrics["worker_start"], metrics["worker_end"]))
    return spans


def steady_state(spans: list[tuple[float, float]], slots: int) -> tuple[float, float, float]:
    """(window start, window end, busy slot-seconds inside it): the window runs from the first
    moment all ``slots`` are busy to the last moment they all are."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    busy, full = 0, []
    for t, step in events:
        if busy == slots and step < 0:
            full.append(t)  # the last instant of a fully busy stretch
        busy += step
        if busy == slots and step > 0:
            full.append(t)
    if len(full) < 2:
        raise ValueError(
            f"the slots were never all busy at once ({len(spans)} trials, {slots} slots): run "
            "more trials than slots, with trials long enough to overlap"
        )
    t0, t1 = full[0], full[-1]
    area = sum(max(0.0, min(e, t1) - max(s, t0)) for s, e in spans)
    return t0, t1, area


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--preset", default="cpu-tiny", help="proxy preset or YAML file")
    parser.add_argument("--algorithm", default="reinforce")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="search config override, e.g. proxy.epochs=1")  # fmt: skip
    parser.add_argument("--out", type=Path, help="search folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    base = {"trials": args.trials, "concurrent": args.concurrent, "num_cpus": args.concurrent,
            "proxy_preset": args.preset, "algorithm": args.algorithm}  # fmt: skip
    cfg = config_io.load(SearchConfig, None, args.set, base=base)
    out = args.out or Path(tempfile.mkdtemp(prefix="nasfpn-overhead-")) / "search"
    start = time.time()
    summary = run_search(cfg, out)
    wall = time.time() - start

    records = read_ledger(out)
    spans = trial_intervals(records)
    compute = sum(e - s for s, e in spans)
    t0, t1, area = steady_state(spans, args.concurrent)
    steady = 1 - area / (args.concurrent * (t1 - t0))
    whole = 1 - compute / (args.concurrent * wall)
    mean_trial = compute / len(spans)
    figures = {
        "trials": summary.trials,
        "trained": len(spans),
        "concurrent": args.concurrent,
        "mean_trial_seconds": mean_trial,
        "steady_window_seconds": t1 - t0,
        "steady_overhead": steady,
        "wall_seconds": wall,
        "whole_run_overhead": whole,
        "machine": platform.node(),
    }
    print(json.dumps(figures, indent=2))
    print(
        f"| {args.preset} | {summary.trials} ({len(spans)} trained) | {args.concurrent} | "
        f"{mean_trial:.1f} | {t1 - t0:.0f} | **{steady:.1%}** | {wall:.0f} | {whole:.1%} |"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
