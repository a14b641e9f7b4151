"""``nasfpn search``: the end-to-end architecture search on Ray Tune."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nasfpn.search import SearchConfig


def run(args: argparse.Namespace) -> int:
    from nasfpn.search import BEST_FILE, LEDGER_FILE, TOP_K_FILE, load_search_config, run_search
    from nasfpn.search.driver import CONFIG_FILE

    overrides = list(args.set or [])
    for name in ("algorithm", "trials", "seed", "address", "reward", "supernet"):
        value = getattr(args, name)
        if name == "supernet" and value is not None:
            value = Path(value).resolve()  # the saved configuration must work from anywhere
        if value is not None:
            overrides.append(f"{name}={value}")
    if args.resume:
        given = (args.config, args.set, args.algorithm, args.out, args.reward, args.supernet)
        if any(given) or args.seed is not None:
            raise ValueError(
                "--resume continues a search with its saved configuration and folder; only "
                "--trials, --address and --verbose may be given with it"
            )
        summary = run_search(None, args.resume, resume=True, trials=args.trials,
                             address=args.address, verbose=args.verbose)  # fmt: skip
        saved = load_search_config(Path(args.resume) / CONFIG_FILE)
    else:
        cfg = load_search_config(args.config, overrides)
        out = Path(args.out or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}")
        summary = run_search(cfg, out, verbose=args.verbose)
        saved = cfg
    print()
    extra = f" and {summary.reevaluations} re-evaluation runs" if summary.reevaluations else ""
    print(f"search finished: {summary.trials} trials{extra} in {summary.seconds / 60:.1f} min")
    if summary.best is None:
        print("no trial finished successfully: see the ledger for the errors")
    else:
        best = summary.best
        cells = ", ".join(
            f"P{c['level']}={c['op']}({c['input_a']},{c['input_b']})"
            for c in best["genotype"]["cells"]
        )
        runs = ", ".join(f"{r:.4f}" for r in best["rewards"])
        spread = f" +- {best['reward_std']:.4f}" if best["reward_std"] is not None else ""
        score = best.get("score")
        if best.get("reward_source") == "supernet":  # no stand-alone run of it finished
            kind, shared = "shared-weight score", ""
        else:
            kind = "stand-alone run" if score is not None else "run"
            shared = f"; shared-weight score {score:.4f}" if score is not None else ""
        plural = "s" if best["evaluations"] > 1 else ""
        objective = saved.objective
        what = f"{objective.metric} objective ({objective.form})" if objective.active else "AP"
        print(f"best architecture: key {best['key']}, {what} {best['reward_mean']:.4f}{spread} "
              f"over {best['evaluations']} {kind}{plural} ({runs}; trial {best['trial_id']}, "
              f"controller step {best['controller_step']}{shared})")  # fmt: skip
        print(f"  cells: {cells}")
        print(f"  exported genotype: {summary.out / BEST_FILE}  (top k: {TOP_K_FILE})")
    print(f"  ledger:            {summary.out / LEDGER_FILE}")
    print(f"  TensorBoard:       tensorboard --logdir {summary.out}")
    print(f"  report:            nasfpn report {summary.out}")
    model, retrain = _model_options(saved)
    print(f"  inspect the best:  nasfpn inspect {summary.out / BEST_FILE}{model}")
    print(f"  retrain the best:  nasfpn retrain {summary.out / BEST_FILE}{retrain}")
    return 0 if summary.best is not None else 1


def _model_options(cfg: SearchConfig) -> tuple[str, str]:
    """The options that make `inspect` and `retrain` build the search's kind of detector: the
    proxy's backbone and separable convs where they are not the defaults (the mobile presets),
    and the retrain preset named like the proxy preset, if there is one."""
    from nasfpn.config import preset_names
    from nasfpn.retrain.config import DEFAULT_PRESET

    proxy = cfg.proxy_config()
    inspect = ""
    if proxy.backbone == "mobilenet_v2" or proxy.separable:
        inspect = f" --backbone {proxy.backbone} --repeats {proxy.repeats} --width {proxy.width}"
        inspect += " --separable" if proxy.separable else ""
    named = cfg.proxy_preset in preset_names("retrain") and cfg.proxy_preset != DEFAULT_PRESET
    return inspect, f" --config {cfg.proxy_preset}" if named else ""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="search feature-pyramid architectures (with no arguments: a small CPU search)",
        description="Run the NAS-FPN search on Ray Tune: a controller proposes architectures, "
        "Ray workers proxy-train them and return AP as the reward. With no arguments it runs a "
        "small search on the embedded synthetic set on this machine.",
    )
    p.add_argument(
        "--config",
        help="a search preset (default, paper: nasfpn config list) or a YAML file (default: "
        "the built-in small search)",
    )
    p.add_argument("--out", help="output folder (default runs/search-<date>-<time>)")
    p.add_argument("--algorithm", choices=["evolution", "reinforce", "ppo", "random"],
                   help="search algorithm (default: evolution; the paper used ppo)")  # fmt: skip
    p.add_argument("--trials", type=int, help="controller samples to evaluate")
    p.add_argument(
        "--reward",
        choices=["proxy", "supernet"],
        help="where a sample's reward comes from: a stand-alone proxy training (proxy, the "
        "default) or a score on shared weights (supernet; the top architectures are then "
        "trained stand-alone: docs/oneshot.md)",
    )
    p.add_argument(
        "--supernet",
        metavar="DIR",
        help="with --reward supernet: a finished `nasfpn supernet train` folder of this space "
        "and proxy task (default: the search trains one into OUT/supernet)",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--address", help="join an existing Ray cluster (e.g. 10.0.0.1:6379)")
    p.add_argument("--resume", metavar="DIR", help="continue the search in DIR")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show Ray's and Tune's own messages on the console (default: DIR/ray.log)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set proxy.epochs=2 (repeatable)",
    )
    p.set_defaults(func=run)
