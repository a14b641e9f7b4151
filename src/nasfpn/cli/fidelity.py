"""``nasfpn fidelity``: the rank correlation between the proxy and full training."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO

from nasfpn.cli.output import emit_json


@contextmanager
def _stderr_copy() -> Iterator[IO[str]]:
    """Standard error through a copy of its file descriptor, which keeps reaching the console
    while library_output_to points descriptor 2 at DIR/ray.log; the stream itself when it has
    no descriptor (pytest's capsys), which that redirection leaves alone too."""
    try:
        stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    except (AttributeError, OSError, ValueError):
        yield sys.stderr
        return
    try:
        yield stream
    finally:
        stream.close()


def run(args: argparse.Namespace) -> int:
    with _stderr_copy() as stderr:
        # with --json, stdout holds the one JSON document and everything else goes to stderr
        return _run(args, partial(print, file=stderr) if args.json else print)


def _run(args: argparse.Namespace, log) -> int:
    from nasfpn.console import library_output_to
    from nasfpn.fidelity import load_fidelity_config, run_fidelity

    # what Ray prints goes to DIR/ray.log, as the search's does (--verbose: on the console)
    ray_output = None if args.verbose else library_output_to
    if args.resume:
        options = ("genotypes", "include", "from_search", "top", "seeds", "proxy", "retrain",
                   "set", "out", "reuse", "supernet")  # fmt: skip
        given = [name for name in options if getattr(args, name) is not None]
        if given:
            raise ValueError(
                f"--resume continues a study with its saved configuration and folder; "
                f"--{given[0].replace('_', '-')} cannot be given with it (only --address, "
                "--verbose and --json)"
            )
        summary = run_fidelity(None, args.resume, resume=True, address=args.address, log=log,
                               ray_output=ray_output)  # fmt: skip
        out = Path(args.resume)
    else:
        overrides = list(args.set or [])
        for name in ("genotypes", "top", "seeds", "address"):
            if getattr(args, name) is not None:
                overrides.append(f"{name}={getattr(args, name)}")
        if args.include:
            overrides.append(f"include={json.dumps(args.include.split(','))}")
        if args.from_search:
            overrides.append(f"from_search={args.from_search}")
        if args.reuse:
            overrides.append(f"reuse_from={Path(args.reuse).resolve()}")
        if args.supernet:
            overrides.append(f"supernet={Path(args.supernet).resolve()}")
        if args.proxy:
            overrides.append(f"proxy_preset={args.proxy}")
        if args.retrain:
            overrides.append(f"retrain_preset={args.retrain}")
        cfg = load_fidelity_config(None, overrides)
        default = (Path(args.from_search) / "fidelity" if args.from_search
                   else Path(f"runs/fidelity-{time.strftime('%Y%m%d-%H%M%S')}"))  # fmt: skip
        out = Path(args.out) if args.out else default
        summary = run_fidelity(cfg, out, log=log, ray_output=ray_output)
    if args.json:
        emit_json(summary)
    else:
        _print_summary(summary, out)
    return 0 if summary["complete"] == summary["genotypes"] else 1


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_summary(summary: dict, out: Path) -> None:
    print()
    shared = summary.get("supernet") is not None
    extra = f" {'shared AP':>9}" if shared else ""
    print(f"{'architecture':<14} {'key':<16} {'proxy AP':>8} {'std':>7} {'runs':>4} "
          f"{'retrain AP':>10} {'proxy rank':>10} {'retrain rank':>12}{extra}")  # fmt: skip
    for r in summary["rows"]:
        extra = f" {_fmt(r.get('supernet_ap')):>9}" if shared else ""
        print(f"{r['name']:<14} {r['key']:<16} {_fmt(r['proxy_ap']):>8} "
              f"{_fmt(r['proxy_std']):>7} {r['proxy_runs']:>4} {_fmt(r['retrain_ap']):>10} "
              f"{r['proxy_rank'] or '-':>10} {r['retrain_rank'] or '-':>12}{extra}")  # fmt: skip
    print()
    if summary["kendall_tau"] is None:
        print(f"rank correlation: not defined yet ({summary['complete']} of "
              f"{summary['genotypes']} architectures have both results)")  # fmt: skip
    else:
        ci = summary["tau_ci"]
        interval = f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "-"
        print(f"Kendall tau-b {summary['kendall_tau']:.3f} (p {summary['kendall_p']:.2g}, "
              f"95% bootstrap interval {interval}); Spearman rho {summary['spearman']:.3f}; "
              f"n {summary['n']}")  # fmt: skip
        epochs = ", ".join(f"epoch {e['epoch']}: {_fmt(e['tau'], 2)}"
                           for e in summary["tau_by_epoch"])  # fmt: skip
        if epochs:
            print(f"tau of the proxy AP after each epoch against the retrain AP: {epochs}")
        verdict = "meets" if summary["kendall_tau"] >= 0.65 else "falls short of"
        print(f"the proxy {verdict} the 0.65 fidelity goal (docs/fidelity.md)")
    shared = summary.get("supernet")
    if shared:
        for side, name in (("vs_retrain", "retrain AP"), ("vs_proxy", "proxy AP")):
            t = shared[side]
            if t["kendall_tau"] is None:
                print(f"shared-weight score against {name}: not defined ({t['n']} pairs)")
                continue
            ci = t["tau_ci"]
            interval = f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "-"
            print(f"shared-weight score against {name}: Kendall tau-b {t['kendall_tau']:.3f} "
                  f"(p {t['kendall_p']:.2g}, interval {interval}); n {t['n']}")  # fmt: skip
    print(f"results: {out / 'fidelity.json'}, figure: {out / 'fidelity.png'}, "
          f"ledger: {out / 'fidelity.jsonl'}")  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fidelity",
        help="measure how well the proxy ranks architectures like full retraining does",
        description="Train a reference set of architectures with the proxy (several seeds) and "
        "with the retrain recipe, as jobs on Ray, and report the rank correlation between the "
        "two: Kendall tau-b with its p-value and bootstrap interval, Spearman rho, and tau by "
        "proxy epoch. With no arguments: the published cell and 9 random genotypes, cpu-tiny "
        "against cpu-tiny, on the embedded synthetic set.",
    )
    p.add_argument("--genotypes", type=int, metavar="N", help="random genotypes (default 9)")
    p.add_argument("--include", metavar="ARCH,...", help="more architectures: built-in names or "
                   "genotype JSON files, comma-separated")  # fmt: skip
    p.add_argument("--from-search", metavar="DIR", help="add the best of this finished search")
    p.add_argument("--top", type=int, metavar="K", help="how many of --from-search (default 3)")
    p.add_argument("--seeds", type=int, metavar="S", help="proxy seeds per architecture (2)")
    p.add_argument("--proxy", metavar="PRESET|FILE", help="proxy preset (default cpu-tiny)")
    p.add_argument("--retrain", metavar="PRESET|FILE", help="retrain preset (default cpu-tiny)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a key: proxy.KEY=V, retrain.KEY=V (retrain.optim.lr=...), or the study's "
        "own (seed, concurrent, cpus_per_trial, ...); repeatable",
    )
    p.add_argument("--out", help="output folder (default DIR/fidelity with --from-search, else "
                   "runs/fidelity-<date>-<time>)")  # fmt: skip
    p.add_argument("--resume", metavar="DIR", help="continue the study in DIR")
    p.add_argument("--reuse", metavar="DIR", help="take the jobs an earlier study in DIR "
                   "finished with the same configuration (e.g. its retrainings, when only the "
                   "proxy changed) instead of running them again")  # fmt: skip
    p.add_argument("--supernet", metavar="DIR", help="also score each architecture on the "
                   "shared weights of this finished `nasfpn supernet train` folder, and report "
                   "how the scores rank (with --reuse: no training; docs/oneshot.md)")  # fmt: skip
    p.add_argument("--address", help="join an existing Ray cluster (e.g. 10.0.0.1:6379)")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show Ray's own messages on the console (default: DIR/ray.log)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)
