"""``nasfpn proxy-train``: one proxy trial of an architecture, and its reward."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from nasfpn.model.build import resolve_arch
    from nasfpn.proxy_train import load_proxy_config
    from nasfpn.proxy_train import run as proxy_run

    overrides = list(args.set or [])
    if args.data is not None:
        overrides.append(f"data={args.data}")
    cfg = load_proxy_config(args.config, overrides)
    genotype = resolve_arch(args.arch)
    if genotype is None:
        raise ValueError("the proxy task searches NAS-FPN cells: give a genotype, not 'fpn'")

    def progress(entry: dict) -> None:
        if not args.json:
            print(f"epoch {entry['epoch']:>3}  AP {entry['AP']:.4f}  AP50 {entry['AP50']:.4f}  "
                  f"({entry['train_seconds']:.0f} s)", flush=True)  # fmt: skip

    result = proxy_run(genotype, cfg, report=progress)
    if args.json:
        print(json.dumps({"arch": str(args.arch), "key": genotype.key(), **result.to_dict()}))
    else:
        print(f"status: {result.status}" + (f" ({result.reason.splitlines()[0]})"
                                            if result.reason else ""))  # fmt: skip
        print("  ".join(f"{m} {getattr(result, m):.4f}"
                        for m in ("AP", "AP50", "AP75", "APs", "APm", "APl")))  # fmt: skip
        print(f"params {result.params:,}  flops {result.flops / 1e9:.2f} G  "
              f"train {result.train_seconds:.1f} s  eval {result.eval_seconds:.1f} s  "
              f"epochs {result.epochs}  iterations {result.iterations}")  # fmt: skip
    return 0 if result.status == "ok" else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "proxy-train",
        help="train one architecture on the proxy task and print its AP reward",
        description="Train ARCH on the proxy task and score it on the reward split. Without "
        "--data it uses the embedded synthetic set, generated and cached on first use.",
    )
    p.add_argument("arch", help="a built-in name (nasfpn) or a genotype JSON file")
    p.add_argument(
        "--config",
        default="cpu-tiny",
        help="a preset (cpu-tiny, paper) or a YAML file (default cpu-tiny)",
    )
    p.add_argument("--data", help="a COCO-style data root (default: the embedded synthetic set)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set epochs=2 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)
