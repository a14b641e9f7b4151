"""``nasfpn predict``: a retrained checkpoint's detections on image files."""

from __future__ import annotations

import argparse

from nasfpn.cli.output import emit_json


def run(args: argparse.Namespace) -> int:
    from nasfpn.retrain.predict import predict

    summary = predict(args.checkpoint, args.images, args.out,
                      score_threshold=args.score_threshold, device=args.device)  # fmt: skip
    if args.json:
        emit_json(summary)
    else:
        for entry in summary["images"]:
            print(f"{entry['file_name']}: {entry['detections']} detections -> {entry['drawn']}")
        print(f"COCO results: {summary['results']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="draw a retrained checkpoint's detections on images, and write COCO results",
        description="Run the detector of CHECKPOINT (checkpoints/epoch_NNNN.pt of a retraining "
        "run) on IMAGE files; write the images with their detections drawn and a COCO-format "
        "results file (detections.json) to --out.",
    )
    p.add_argument("checkpoint", help="a checkpoint written by `nasfpn retrain`")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--out", default="predictions", help="output folder (default predictions)")
    p.add_argument(
        "--score-threshold",
        type=float,
        default=0.3,
        help="draw detections at or above this score (all go to the results file; 0.3)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)
