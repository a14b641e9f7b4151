"""``nasfpn evaluate``: COCO box AP of a results file, as pycocotools computes it."""

from __future__ import annotations

import argparse

from nasfpn.cli.output import emit_json


def run(args: argparse.Namespace) -> int:
    from nasfpn.evaluation import evaluate_coco

    metrics = evaluate_coco(args.annotations, args.predictions, verbose=args.verbose)
    if args.json:
        emit_json(metrics)
        return 0
    for name, value in metrics.items():
        # repr: every digit COCOeval computed
        print(f"{name:<5} {value!r}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a COCO results file with pycocotools (box AP)",
        description="Box AP of PREDICTIONS (COCO results format: a JSON list of {image_id, "
        "category_id, bbox [x, y, w, h], score}) on ANNOTATIONS, through pycocotools' COCOeval. "
        "Prints AP, AP50, AP75, APs, APm, APl on COCOeval's 0..1 scale (-1 where a set has no "
        "ground truth).",
    )
    p.add_argument("--annotations", required=True, help="COCO annotation file (ground truth)")
    p.add_argument("--predictions", required=True, help="COCO results JSON file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--verbose", action="store_true", help="show pycocotools' own output")
    p.set_defaults(func=run)
