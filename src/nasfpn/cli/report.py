"""``nasfpn report``: one self-contained HTML page about a search."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from nasfpn.analysis import write_report

    path = write_report(args.dir, args.out, k=args.top_k)
    print(path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write an HTML report of a search",
        description="Write one self-contained HTML page about the search in DIR: the top "
        "architectures with their drawings, the reward, uniqueness, decision and Pareto "
        "curves, the controller's health, the failed trials and the search cost in CPU- and "
        "GPU-hours. Prints the file written.",
    )
    p.add_argument("dir", help="a search's output folder (the --out of `nasfpn search`)")
    p.add_argument("--out", help="the HTML file (default DIR/report.html)")
    p.add_argument("--top-k", type=int, default=5, help="architectures to list (default 5)")
    p.set_defaults(func=run)
