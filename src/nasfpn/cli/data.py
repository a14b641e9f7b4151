"""``nasfpn data synth`` and ``nasfpn data split``: the embedded dataset and the proxy split."""

from __future__ import annotations

import argparse

from nasfpn.data import split as split_defaults
from nasfpn.data import synthetic as synth_defaults


def run_synth(args: argparse.Namespace) -> int:
    from nasfpn.data import write_synthetic

    summary = write_synthetic(
        args.out,
        train=args.train,
        val=args.val,
        size=args.size,
        seed=args.seed,
        workers=args.workers,
    )
    for name in ("train", "val"):
        print(
            f"{name:<5} {summary.images[name]:>6} images  {summary.objects[name]:>7} objects  "
            f"-> {summary.path / name}, {summary.path / 'annotations' / f'instances_{name}.json'}"
        )
    print(f"wrote {summary.path} in {summary.seconds:.1f} s (seed {args.seed}, size {args.size})")
    return 0


def run_split(args: argparse.Namespace) -> int:
    from nasfpn.data import write_split

    train_path, reward_path, split = write_split(
        args.annotations, args.out, holdout=args.holdout, seed=args.seed, subset=args.subset
    )
    for path, data in ((train_path, split.proxy_train), (reward_path, split.reward)):
        print(f"{path}: {len(data['images'])} images, {len(data['annotations'])} annotations")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="write the embedded synthetic dataset, or split annotations for the proxy task",
        description="Dataset tools: `synth` writes the synthetic COCO-format dataset; `split` "
        "writes the proxy-train and reward (held-out) annotation files.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    s = actions.add_parser(
        "synth",
        help="write the synthetic COCO-format detection dataset",
        description="Write OUT/{train,val}/*.jpg and OUT/annotations/instances_{train,val}.json: "
        "coloured shapes of 8 classes on textured backgrounds. Byte-identical for a seed.",
    )
    s.add_argument("out", help="output folder (must not exist, or be empty)")
    s.add_argument(
        "--train",
        type=int,
        default=synth_defaults.DEFAULT_TRAIN,
        help=f"training images (default {synth_defaults.DEFAULT_TRAIN})",
    )
    s.add_argument(
        "--val",
        type=int,
        default=synth_defaults.DEFAULT_VAL,
        help=f"validation images (default {synth_defaults.DEFAULT_VAL})",
    )
    s.add_argument(
        "--size",
        type=int,
        default=synth_defaults.DEFAULT_SIZE,
        help=f"long side of the images in px (default {synth_defaults.DEFAULT_SIZE})",
    )
    s.add_argument("--seed", type=int, default=synth_defaults.DEFAULT_SEED, help="default 0")
    s.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes drawing images (default: CPU count; the output does not depend on it)",
    )
    s.set_defaults(func=run_synth)

    t = actions.add_parser(
        "split",
        help="split an annotation file into proxy-train and reward (held-out) files",
        description="Write DIR/proxy_train.json and DIR/reward.json (COCO JSON), disjoint by "
        "image: a seeded permutation puts HOLDOUT images in the reward slice (docs section 4).",
    )
    t.add_argument("annotations", help="COCO annotation file, e.g. instances_train2017.json")
    t.add_argument(
        "--holdout",
        type=int,
        default=split_defaults.DEFAULT_HOLDOUT,
        help=f"images held out for the reward (default {split_defaults.DEFAULT_HOLDOUT}, the "
        "paper's slice of COCO train2017)",
    )
    t.add_argument("--seed", type=int, default=0, help="permutation seed (default 0)")
    t.add_argument("--out", required=True, help="output folder")
    t.add_argument(
        "--subset",
        type=float,
        default=None,
        help="keep this fraction of proxy-train (0 < FRACTION <= 1)",
    )
    t.set_defaults(func=run_split)
