"""``nasfpn retrain``: train an architecture at full scale (docs/retrain.md).

The same command runs in a single process, under ``torchrun`` (one process per GPU) and, with
``--ray-workers``, on a Ray cluster through Ray Train; each process calls
:func:`nasfpn.retrain.retrain`.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from nasfpn.cli.output import emit_json


def _default_out(arch: str) -> Path:
    # deterministic, so that every torchrun process agrees on it
    return Path("runs") / f"retrain-{Path(arch).stem}"


def run(args: argparse.Namespace) -> int:
    from nasfpn.model import resolve_arch
    from nasfpn.retrain import (
        build_model,
        load_retrain_config,
        model_summary,
        resolved_config,
        retrain,
    )
    from nasfpn.retrain.run import CONFIG_FILE, data_num_classes

    out = Path(args.out) if args.out else _default_out(args.arch)
    overrides = list(args.set or [])
    if args.data is not None:
        overrides.append(f"data.root={args.data}")
    if args.resume and (out / CONFIG_FILE).is_file():
        if args.config is not None:
            raise ValueError(
                f"--resume continues with the run's own {out / CONFIG_FILE}; drop --config "
                f"{args.config} (change single keys with --set)"
            )
        cfg = load_retrain_config(out / CONFIG_FILE, overrides)
    else:
        cfg = load_retrain_config(args.config or "cpu-tiny", overrides)
    genotype = resolve_arch(args.arch)
    if args.ray_workers is not None and args.ray_workers < 1:
        raise ValueError(f"--ray-workers {args.ray_workers} must be 1 or more")

    if args.dry_run:
        world = args.ray_workers or int(os.environ.get("WORLD_SIZE", "1"))
        # the summary needs no weights: build from scratch, and say whether the file is there
        bare = replace(cfg, model=replace(cfg.model, pretrained=None))
        note = None
        if cfg.model.num_classes is None:
            categories, source = data_num_classes(cfg)
            if categories is None:  # the recipe's data is not on this machine
                categories = 80
                note = f"80 (COCO's) for this summary: the data is not readable here ({source})"
            else:
                note = f"{categories}, the categories of {source}"
            bare = replace(bare, model=replace(bare.model, num_classes=categories))
        summary = model_summary(build_model(genotype, bare), cfg, genotype)
        if cfg.model.pretrained is not None:
            summary["pretrained_file_exists"] = Path(cfg.model.pretrained).is_file()
        doc = {"arch": str(args.arch), "out": str(out), **resolved_config(cfg, world),
               "model_summary": summary}  # fmt: skip
        if note is not None:
            doc["num_classes_from_data"] = note
        if genotype is not None:
            doc["genotype"] = genotype.to_dict()
        if args.json:
            emit_json(doc, indent=2)
        else:
            import yaml

            print(yaml.safe_dump(doc, sort_keys=False, width=100), end="")
        return 0

    if args.ray_workers is not None:
        from nasfpn.retrain.ray_train import launch  # imports Ray: only on this path

        summary = launch(genotype, cfg, out, resume=args.resume, workers=args.ray_workers,
                         address=args.address, use_gpu=args.ray_gpu)  # fmt: skip
    else:
        if args.address is not None:
            raise ValueError("--address joins a Ray cluster: give it with --ray-workers N")
        summary = retrain(genotype, cfg, out, resume=args.resume)
    if args.json and int(os.environ.get("RANK", "0")) == 0:
        emit_json(summary)
    if summary["status"] != "ok":
        # one line on every process: under torchrun the processes agree on the status and
        # the reason (nasfpn.train_loop.train), so each says the same. One write, newline
        # included: print's separate write of the newline lets the lines of processes that
        # share a terminal run into each other
        line = f"nasfpn retrain: error: training {summary['status']}: {summary['reason']}\n"
        sys.stderr.write(line)
        sys.stderr.flush()
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "retrain",
        help="train an architecture at full scale (one process, torchrun, or Ray Train)",
        description="Train ARCH with a retraining recipe, checkpointing every epoch and "
        "evaluating on val. Without --data it uses the embedded synthetic set. Run it under "
        "`torchrun --nproc-per-node N -m nasfpn retrain ...` for several GPUs, or with "
        "--ray-workers N on a Ray cluster.",
    )
    p.add_argument("arch", help="a genotype JSON file, a built-in name (nasfpn), or fpn")
    p.add_argument(
        "--config",
        help="a preset (cpu-tiny, r50_nasfpn_crop640_50e, r50_fpn_crop640_50e) or a YAML file "
        "(default cpu-tiny)",
    )
    p.add_argument("--data", help="a COCO-style data root (default: the embedded synthetic set)")
    p.add_argument("--out", help="output folder (default runs/retrain-<arch>)")
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in --out"
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set optim.lr=0.04 (repeatable)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved configuration and the model summary, and train nothing",
    )
    p.add_argument("--json", action="store_true", help="print JSON (dry run, or the summary)")
    p.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help="train with N Ray Train workers (one process each) instead of in this process",
    )
    p.add_argument("--address", help="the Ray cluster to join (default: start one locally)")
    p.add_argument("--ray-gpu", action="store_true", help="give every Ray worker one GPU")
    p.set_defaults(func=run)
