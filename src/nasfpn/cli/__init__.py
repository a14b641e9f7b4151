"""The ``nasfpn`` command line: one module per subcommand, each with ``register(subparsers)``.

Subcommands import torch (and Ray) inside their ``run`` function, so that ``nasfpn --help``
stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nasfpn import __version__
from nasfpn.cli import (
    bench_search,
    config,
    data,
    evaluate,
    fidelity,
    inspect,
    predict,
    proxy_train,
    report,
    retrain,
    search,
    show,
    supernet,
)
from nasfpn.cli.output import json_stdout

# each module adds its subcommand; one line per module, in the order `nasfpn --help` lists them
SUBCOMMANDS = [
    inspect,
    data,
    evaluate,
    proxy_train,
    search,
    supernet,
    fidelity,
    bench_search,
    show,
    report,
    retrain,
    predict,
    config,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nasfpn",
        description="Neural architecture search of feature pyramids (NAS-FPN), end to end.",
    )
    parser.add_argument("--version", action="version", version=f"nasfpn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "json", False):
        with json_stdout():  # stdout holds the one JSON document; the rest goes to stderr
            return _run(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        # errors a user can cause carry the bad value and the fix; no traceback for them
        print(f"nasfpn {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
