"""``nasfpn bench-search``: samples a search algorithm needs on a landscape with a known optimum."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nasfpn.cli.output import emit_json

ALL = "all"
SPACE_FIELDS = ("min_level", "max_level", "num_cells", "num_intermediate")


def run(args: argparse.Namespace) -> int:
    # torch is imported here, not at the top, so that `nasfpn --help` stays instant
    import torch

    from nasfpn.controller import ALGORITHMS, LANDSCAPES, MatchLandscape
    from nasfpn.controller.bench import format_table, run_bench
    from nasfpn.space import SearchSpace

    torch.set_num_threads(args.threads)
    algorithms = _names(args.algorithm, list(ALGORITHMS), "--algorithm")
    landscapes = _names(args.landscape, list(LANDSCAPES), "--landscape")
    thresholds = _floats(args.thresholds)
    options = dict(_pair(kv, "--option") for kv in args.option)
    space = SearchSpace(**_space_fields(args.space))
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    results = [
        run_bench(
            algorithm,
            landscape,
            samples=args.samples,
            seeds=args.seeds,
            space=space,
            thresholds=thresholds,
            workers=args.workers,
            options=options,
            progress=progress,
            noise=noise,
            relative_noise=args.relative_noise,
        )
        for noise in _floats(args.noise, "--noise", "0,0.05")
        for landscape in landscapes
        for algorithm in algorithms
    ]
    # random search's exact cost on the match landscape, which its budget only bounds
    match = MatchLandscape(space)
    random_cost = {t: 1 / max(match.random_search_probability(t), 1e-300) for t in thresholds}
    seconds = sum(r.seconds for r in results)
    if args.json:
        doc = {
            "results": [r.to_dict() for r in results],
            "random_search_expected_samples_on_match": {str(t): n for t, n in random_cost.items()},
            "seconds": seconds,
        }
        emit_json(doc, indent=2)
        return 0
    noise = ""
    if any(r.noise for r in results):
        noise = f"; noise {args.noise}{' x spread' if args.relative_noise else ''}"
    print(
        f"space: {len(space.decisions)} decisions (P{space.min_level}-P{space.max_level}, "
        f"{space.num_cells} cells, {space.num_intermediate} intermediate); budget "
        f"{args.samples:,} samples; seeds {args.seeds}; workers {args.workers}{noise}"
    )
    for name in landscapes:
        print(f"  {next(r for r in results if r.landscape == name).landscape_description}")
    print()
    print(format_table(results))
    print()
    print(
        "random search's expected samples on match (exact, 1/p): "
        + ", ".join(f"{t:g}: {n:.3g}" for t, n in random_cost.items())
    )
    print(f"total time: {seconds:.0f} s")
    return 0


def _names(value: str, known: list[str], flag: str) -> list[str]:
    names = known if value == ALL else [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise ValueError(
            f"{flag} {value!r}: expected a comma-separated list of {', '.join(known)}, or {ALL}"
        )
    return names


def _floats(
    value: str, flag: str = "--thresholds", example: str = "0.5,0.7,0.8,0.9"
) -> list[float]:
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        raise ValueError(
            f"{flag} {value!r}: expected comma-separated numbers, e.g. {example}"
        ) from None


def _pair(text: str, flag: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{flag} {text!r}: expected KEY=VALUE, e.g. {flag} lr=0.01")
    return key.strip(), parse_value(value.strip())


def parse_value(text: str) -> Any:
    """``none``/``null`` -> None, ``true``/``false`` -> bool, then int, float, else the text."""
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _space_fields(pairs: list[str]) -> dict[str, Any]:
    fields = dict(_pair(kv, "--space") for kv in pairs)
    unknown = sorted(set(fields) - set(SPACE_FIELDS))
    if unknown:
        raise ValueError(
            f"--space {', '.join(unknown)}: unknown field(s); expected {', '.join(SPACE_FIELDS)}"
        )
    return fields


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench-search",
        help="measure search algorithms on reward landscapes with a known optimum",
        description=(
            "Run ALGORITHM on LANDSCAPE for SEEDS seeds and report, per reward threshold, the "
            "samples needed to reach it (mean, std, median over seeds; a seed that never "
            "reaches it counts as the budget, so the mean is then a lower bound). No training."
        ),
    )
    p.add_argument(
        "--algorithm",
        default=ALL,
        help="reinforce, ppo, random, evolution, a comma-separated list, or all (default)",
    )
    p.add_argument("--landscape", default=ALL, help="match, nk, a list, or all (default)")
    p.add_argument("--samples", type=int, default=5000, help="budget per seed (default 5000)")
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..K-1 (default 10)")
    p.add_argument(
        "--thresholds", default="0.5,0.7,0.8,0.9", help="rewards to reach (default 0.5,0.7,0.8,0.9)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="proposals outstanding at once; a random one finishes next (default 1)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an algorithm option, e.g. --option lr=0.01 (repeatable; unknown keys are errors)",
    )
    p.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"a search-space field ({', '.join(SPACE_FIELDS)}); default: the paper's space",
    )
    p.add_argument(
        "--noise",
        default="0",
        metavar="STD[,STD...]",
        help="Gaussian noise (std) added to every reward the algorithm sees, seeded; thresholds "
        "are judged without it; a list runs each level (default 0: none)",
    )
    p.add_argument(
        "--relative-noise",
        action="store_true",
        help="--noise is a fraction of the spread (std) of the landscape's rewards over random "
        "architectures, as a proxy's seed std is against its genotype spread",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no per-seed progress on stderr")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
