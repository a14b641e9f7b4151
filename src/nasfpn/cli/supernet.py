"""``nasfpn supernet``: train shared weights for the whole search space (``train``), and score
architectures on them (``eval``). docs/oneshot.md."""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from pathlib import Path

from nasfpn.cli.output import emit_json


def _default_out() -> Path:
    return Path("runs") / f"supernet-{datetime.now():%Y%m%d-%H%M%S}"


def run_train(args: argparse.Namespace) -> int:
    from nasfpn.supernet import load_supernet_config, train_supernet
    from nasfpn.supernet.train import progress_printer

    if args.resume is not None:
        if args.config is not None or args.set or args.out is not None:
            raise ValueError(
                "--resume DIR continues the run with the configuration saved in DIR; drop "
                "--config, --set and --out"
            )
        out, cfg = Path(args.resume), None
        if not (out / "supernet_config.yaml").is_file():
            raise FileNotFoundError(
                f"--resume {out}: not a supernet folder (no supernet_config.yaml); start one "
                "with `nasfpn supernet train --out DIR`"
            )
    else:
        out = Path(args.out) if args.out is not None else _default_out()
        cfg = load_supernet_config(args.config or "cpu-tiny", args.set or [])
    progress = progress_printer(args.every)

    resume = args.resume is not None
    if args.ray_workers is not None:
        summary = _train_on_ray_train(args, cfg, out, resume)
    elif args.ray_gpu:
        raise ValueError("--ray-gpu gives each Ray Train worker a GPU; add --ray-workers N")
    elif args.address is not None:
        summary = _train_on_cluster(args.address, cfg, out, resume, args.every)
    else:
        main = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 alone prints
        if main:
            world = os.environ.get("WORLD_SIZE", "1")
            print(f"supernet: {out}" + (f" ({world} processes)" if world != "1" else ""),
                  flush=True)  # fmt: skip
        summary = train_supernet(cfg, out, resume=resume, progress=progress)
        if not main:
            return 0 if summary.status == "ok" else 1
    if args.json:
        emit_json({"out": str(out), **summary.to_dict()})
    else:
        loss = f"{summary.final_loss:.4f}" if summary.final_loss is not None else "-"
        print(f"{summary.status}: {summary.steps} steps in {summary.seconds / 60:.1f} min "
              f"({summary.precision}), last loss {loss}")  # fmt: skip
        if summary.reason:
            print(f"  {summary.reason}")
        print(f"score architectures:  nasfpn supernet eval {out} nasfpn")
    return 0 if summary.status == "ok" else 1


def _train_on_ray_train(args: argparse.Namespace, cfg, out: Path, resume: bool):
    """The training on ``--ray-workers`` Ray Train processes (one DDP group), on the cluster at
    ``--address`` or on a local Ray."""
    from nasfpn.ray_setup import check_address
    from nasfpn.supernet import SupernetSummary
    from nasfpn.supernet.train import new_folder_problem

    if args.ray_workers < 1:
        raise ValueError(f"--ray-workers {args.ray_workers} must be 1 or more")
    if not resume and (problem := new_folder_problem(out)) is not None:
        raise ValueError(problem)
    check_address(args.address)  # a cluster that cannot be joined: one line, nothing written
    from nasfpn.supernet.remote import train_on_ray_train

    where = args.address or "a local Ray"
    print(f"supernet: {out} ({args.ray_workers} Ray Train workers on {where}"
          f"{', a GPU each' if args.ray_gpu else ''})", flush=True)  # fmt: skip
    summary = train_on_ray_train(cfg, out, resume=resume, workers=args.ray_workers,
                                 address=args.address, use_gpu=args.ray_gpu,
                                 every=args.every)  # fmt: skip
    return SupernetSummary(**summary)


def _train_on_cluster(address: str, cfg, out: Path, resume: bool, every: float):
    """The training as a Ray task on the cluster at ``address``: on a GPU when the cluster has
    one and the proxy's device allows it. ``out`` must be on storage the cluster's nodes and
    this machine share."""
    import ray

    from nasfpn.ray_setup import check_address, init_ray
    from nasfpn.supernet import SupernetSummary
    from nasfpn.supernet.remote import train_remote
    from nasfpn.supernet.train import load_folder_config

    check_address(address)  # a cluster that cannot be joined: one line, nothing written
    init_ray(address)
    settings = cfg if cfg is not None else load_folder_config(out)
    proxy = settings.proxy_config()
    gpus = 1 if proxy.device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1 else 0
    cpus = settings.threads or proxy.threads or 1
    print(f"supernet: {out} (a Ray task on {address}: {cpus} CPUs, {gpus} GPU)", flush=True)

    def waiting(seconds: float) -> None:
        print(f"  training on the cluster ({seconds / 60:.1f} min)", flush=True)

    return SupernetSummary(**train_remote(cfg, out, resume=resume, cpus=cpus, gpus=gpus,
                                          wait=waiting, every=max(every, 30.0)))  # fmt: skip


def run_eval(args: argparse.Namespace) -> int:
    from nasfpn.supernet import score

    options = {"bn_batches": args.bn_batches, "threads": args.threads}
    results = score(args.folder, args.arch, **options)
    if args.json:
        emit_json({"supernet": str(args.folder), "results": [r.to_dict() for r in results]})
        return 0
    width = max(len(r.arch) for r in results)
    print(f"{'arch':<{width}}  key               AP      AP50    seconds")
    for r in results:
        print(f"{r.arch:<{width}}  {r.key}  {r.AP:.4f}  {r.AP50:.4f}  {r.seconds:7.2f}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "supernet",
        help="shared weights for the whole space: train them, score architectures on them",
        description="One-shot architecture evaluation (docs/oneshot.md): `train` trains one "
        "RetinaNet whose neck runs every genotype of the search space, a sampled path per "
        "step; `eval` scores architectures on those weights (COCO AP on the proxy's reward "
        "split, batch-norm statistics recomputed per architecture).",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    about = ("Train shared weights for a proxy task's search space: in this process, under "
             "`torchrun --nproc-per-node N -m nasfpn supernet train ...` (several GPUs), with "
             "--ray-workers N (Ray Train), or as one Ray task with --address.")  # fmt: skip
    t = verbs.add_parser("train", help="train the shared weights", description=about)
    t.add_argument("--config", help="a supernet preset (cpu-tiny, paper) or a YAML file "
                   "(default: cpu-tiny; `nasfpn config list`)")  # fmt: skip
    t.add_argument("--out", help="the output folder (default: runs/supernet-<time>)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a key (steps=500, proxy.lr=0.001, bn_batches=4)")  # fmt: skip
    t.add_argument("--resume", metavar="DIR", help="continue the training in DIR exactly")
    t.add_argument("--address", metavar="HOST:PORT",
                   help="train as a task on this Ray cluster (a GPU node when it has one), or "
                   "with --ray-workers on its Ray Train workers; --out must be on storage the "
                   "nodes share")  # fmt: skip
    t.add_argument("--ray-workers", type=int, metavar="N",
                   help="train on N Ray Train processes, one DDP group (with --address: on "
                   "that cluster)")  # fmt: skip
    t.add_argument("--ray-gpu", action="store_true", help="give every Ray Train worker one GPU")
    t.add_argument("--every", type=float, default=10.0, metavar="SECONDS",
                   help="seconds between progress lines (default 10)")  # fmt: skip
    t.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    t.set_defaults(func=run_train)
    e = verbs.add_parser("eval", help="score architectures on trained shared weights",
                         description="Each architecture's AP on the reward split, on the "
                         "shared weights of a finished supernet folder.")  # fmt: skip
    e.add_argument("folder", type=Path, metavar="DIR", help="a finished supernet folder")
    e.add_argument("arch", nargs="+", metavar="ARCH",
                   help="a built-in genotype name or a genotype JSON file")  # fmt: skip
    e.add_argument("--bn-batches", type=int, metavar="N",
                   help="batches that recompute batch-norm statistics (0: those of training; "
                   "default: the folder's bn_batches)")  # fmt: skip
    e.add_argument("--threads", type=int, metavar="N", help="torch threads (default: the folder's)")
    e.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: {supernet, results: [{arch, key, AP, seconds, ...}]}",
    )
    e.set_defaults(func=run_eval)
