"""``nasfpn proxy-train``: proxy trials of an architecture, and their reward (with ``--seeds N``,
its noise: each run's AP and their mean, std and std/mean)."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from typing import Any

from nasfpn.cli.output import emit_json


def seed_spread(aps: list[float]) -> dict[str, float | None]:
    """Mean, sample standard deviation and std/mean of rewards (None where undefined)."""
    mean = statistics.fmean(aps)
    std = statistics.stdev(aps) if len(aps) > 1 else None
    cv = std / mean if std is not None and mean > 0 else None
    return {"mean": mean, "std": std, "cv": cv}


def run(args: argparse.Namespace) -> int:
    from nasfpn.model.build import resolve_arch
    from nasfpn.proxy_train import load_proxy_config
    from nasfpn.proxy_train import run as proxy_run

    if args.seeds is not None and args.seeds < 1:
        raise ValueError(
            f"--seeds {args.seeds}: expected the number of training seeds, at least 1 (e.g. "
            "--seeds 5 trains seeds seed..seed+4)"
        )
    overrides = list(args.set or [])
    if args.data is not None:
        overrides.append(f"data={args.data}")
    cfg = load_proxy_config(args.config, overrides)
    genotype = resolve_arch(args.arch)
    if genotype is None:
        raise ValueError("the proxy task searches NAS-FPN cells: give a genotype, not 'fpn'")

    seeds = [cfg.seed + i for i in range(args.seeds or 1)]
    results = []
    for seed in seeds:
        # progress lines go to stdout, or to stderr with --json (nasfpn.cli.output)
        if args.seeds is not None:
            print(f"seed {seed} ({len(results) + 1} of {len(seeds)})", flush=True)

        def progress(entry: dict) -> None:
            print(f"epoch {entry['epoch']:>3}  AP {entry['AP']:.4f}  AP50 {entry['AP50']:.4f}"
                  f"  ({entry['train_seconds']:.0f} s)", flush=True)  # fmt: skip

        result = proxy_run(genotype, replace(cfg, seed=seed), report=progress)
        results.append(result)
        if not args.json:
            _print_result(result)
    head: dict[str, Any] = {"arch": str(args.arch), "key": genotype.key()}
    if args.seeds is None:  # one trial: its result as it is
        if args.json:
            emit_json({**head, **results[0].to_dict()})
        return 0 if results[0].status == "ok" else 1

    ok = [r for r in results if r.status == "ok"]
    spread = seed_spread([r.AP for r in ok]) if ok else {"mean": None, "std": None, "cv": None}
    if args.json:
        emit_json({**head, "seeds": seeds, **spread, "ok": len(ok),
                   "runs": [r.to_dict() for r in results]})  # fmt: skip
    else:
        print()
        print("seed  status    AP      AP50    iterations  train s")
        for r in results:
            print(f"{r.seed:>4}  {r.status:<8}  {r.AP:.4f}  {r.AP50:.4f}  {r.iterations:>10}  "
                  f"{r.train_seconds:7.1f}")  # fmt: skip
        if ok:
            std = "-" if spread["std"] is None else f"{spread['std']:.4f}"
            cv = "-" if spread["cv"] is None else f"{spread['cv']:.3f}"
            print(f"AP over {len(ok)} of {len(results)} seeds: mean {spread['mean']:.4f}  "
                  f"std {std}  std/mean {cv}")  # fmt: skip
        else:
            print("no run ended ok: no reward to summarise")
    return 0 if len(ok) == len(results) else 1


def _print_result(result) -> None:
    print(f"status: {result.status}" + (f" ({result.reason.splitlines()[0]})"
                                        if result.reason else ""))  # fmt: skip
    print("  ".join(f"{m} {getattr(result, m):.4f}"
                    for m in ("AP", "AP50", "AP75", "APs", "APm", "APl")))  # fmt: skip
    print(f"params {result.params:,}  flops {result.flops / 1e9:.2f} G  "
          f"train {result.train_seconds:.1f} s  eval {result.eval_seconds:.1f} s  "
          f"epochs {result.epochs}  iterations {result.iterations}  "
          f"precision {result.precision}")  # fmt: skip
    gpu = f", GPU {result.gpu_model}" if result.gpu_model else ""
    print(f"ran on: CPU {result.cpu_model}{gpu}; config_hash {result.config_hash}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "proxy-train",
        help="train one architecture on the proxy task and print its AP reward",
        description="Train ARCH on the proxy task and score it on the reward split. Without "
        "--data it uses the embedded synthetic set, generated and cached on first use. With "
        "--seeds N it trains N seeds (seed, seed+1, ...) and reports the reward's noise.",
    )
    p.add_argument("arch", help="a built-in name (nasfpn) or a genotype JSON file")
    p.add_argument(
        "--config",
        default="cpu-tiny",
        help="a proxy preset (cpu-tiny, paper: nasfpn config list) or a YAML file "
        "(default cpu-tiny)",
    )
    p.add_argument("--data", help="a COCO-style data root (default: the embedded synthetic set)")
    p.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="train N seeds, one after another, and report each AP with mean, std, std/mean",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set epochs=2 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)
