"""Architectures evaluated an hour: a one-shot search against stand-alone proxy trials.

Interleaved A B A B (``--rounds``): A is a proxy search (`nasfpn search`, ``--proxy-trials``
stand-alone `cpu-tiny` trials, ``--concurrent`` at a time, no re-evaluation); B a one-shot search
(`nasfpn search --reward supernet --supernet DIR`, ``--oneshot-trials`` samples scored on the
given weights by ``--concurrent`` scoring actors, then one stand-alone re-evaluation). Both use
random search, so that every sample is a new architecture. The rate of each is its search-phase
records over the time from the first record's start to the last one's end (Ray's start and the
scoring actors' loading before it left out, counted separately as ``startup``).

    uv run python benchmarks/oneshot_throughput.py SUPERNET_DIR [--rounds 2]
        [--proxy-trials 4] [--oneshot-trials 200] [--concurrent 2] [--out DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nasfpn.search import read_ledger
from nasfpn.train_loop import cpu_has_bf16, cpu_model


def search(out: Path, trials: int, concurrent: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "nasfpn", "search", "--out", str(out), "--algorithm", "random",
           "--trials", str(trials), "--set", f"concurrent={concurrent}", *extra]  # fmt: skip
    start = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    records = [r for r in read_ledger(out) if r.get("phase", "search") == "search"]
    first = min(r["start_time"] for r in records)
    last = max(r["end_time"] for r in records)
    return {"records": len(records), "seconds": last - first, "startup": first - start,
            "per_hour": len(records) / (last - first) * 3600,
            "statuses": sorted({r["status"] for r in records})}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("supernet", type=Path, help="a finished cpu-tiny supernet folder")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--proxy-trials", type=int, default=4)
    parser.add_argument("--oneshot-trials", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="nasfpn-throughput-"))
    runs: dict[str, list[dict]] = {"proxy": [], "oneshot": []}
    for i in range(args.rounds):  # A B A B
        runs["proxy"].append(search(out / f"proxy-{i}", args.proxy_trials, args.concurrent,
                                    ["--set", "reevaluate_top=0"]))  # fmt: skip
        print(f"proxy   {i}: {runs['proxy'][-1]}", flush=True)
        runs["oneshot"].append(search(out / f"oneshot-{i}", args.oneshot_trials, args.concurrent,
                                      ["--reward", "supernet", "--supernet",
                                       str(args.supernet.resolve()),
                                       "--set", "reevaluate_top=1"]))  # fmt: skip
        print(f"oneshot {i}: {runs['oneshot'][-1]}", flush=True)
    rate = {k: statistics.median(r["per_hour"] for r in v) for k, v in runs.items()}
    result = {"machine": cpu_model(), "bf16": cpu_has_bf16(), "concurrent": args.concurrent,
              "runs": runs, "per_hour": rate,
              "oneshot_over_proxy": rate["oneshot"] / rate["proxy"]}  # fmt: skip
    print(f"{result['machine']} (native bf16: {result['bf16']}), {args.concurrent} at a time: "
          f"stand-alone {rate['proxy']:.0f} an hour, one-shot {rate['oneshot']:.0f} an hour "
          f"({result['oneshot_over_proxy']:.1f}x)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
