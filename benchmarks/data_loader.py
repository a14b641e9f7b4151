"""Images per second the training DataLoader delivers against what the proxy model consumes.

In one run, on the embedded synthetic set (or ``--data``, a COCO-style root):

1. the training loader (decode, scale jitter, crop, flip, normalise, pad, collate) at the
   proxy sizes, with 0, 1 and 2 worker processes: images per second delivered to the main
   process after one warm-up batch;
2. one training step (forward, loss, backward, SGD step) of (a) the paper's proxy model
   (ResNet-10 from scratch, NAS-FPN 3@256, 512 px) and (b) the tiny model of the CPU preset
   (the ``cpu-tiny`` proxy preset), on batches from that loader: images per second consumed,
   the median over the timed steps;
3. the ratio loader / model for each, with the loader's best worker count at the model's size.

    uv run python benchmarks/data_loader.py [--data ROOT] [--workers 0 1 2] [--threads N]
        [--json OUT]

Worker processes always use one torch thread (torch's DataLoader sets it); ``--threads`` sets
the main process's, which runs the model (and the loading with 0 workers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from nasfpn.data import CocoDetection, TrainTransform, build_loader, embedded_dataset
from nasfpn.model import ModelConfig, build_retinanet
from nasfpn.proxy_train import load_proxy_config
from nasfpn.proxy_train.data import train_files


def _models() -> list[tuple[str, int, int, dict]]:
    """(name, image size, batch, model settings) of the paper's proxy and the CPU preset, read
    from the proxy presets so that the figures follow them."""
    paper, tiny = load_proxy_config("paper"), load_proxy_config("cpu-tiny")
    return [
        (f"paper proxy: R-10, NAS-FPN {paper.repeats}@{paper.width}, {paper.image_size} px",
         paper.image_size, 4, {"repeats": paper.repeats, "width": paper.width}),
        (f"CPU preset: R-10, NAS-FPN {tiny.repeats}@{tiny.width}, {tiny.image_size} px",
         tiny.image_size, tiny.batch_size,
         {"repeats": tiny.repeats, "width": tiny.width, "head_convs": tiny.head_convs}),
    ]  # fmt: skip


MODELS = _models()


def train_set(root: Path, size: int) -> CocoDetection:
    annotations, images = train_files(root)  # the layouts a data root may have
    return CocoDetection(annotations, images, TrainTransform(size))


def loader_speed(dataset: CocoDetection, batch: int, workers: int, batches: int) -> float:
    """Images per second delivered, after one warm-up batch (which also starts the workers)."""
    loader = build_loader(dataset, batch, train=True, seed=0, workers=workers)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    seconds = time.perf_counter() - start
    del it, loader  # stop the workers before anything else is timed
    return batches * batch / seconds


def model_speed(dataset: CocoDetection, batch: int, settings: dict, steps: int) -> float:
    """Images per second of forward + loss + backward + SGD step, median over ``steps``."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        backbone="resnet10", frozen_stages=0, num_classes=dataset.num_classes, **settings
    )
    model = build_retinanet("nasfpn", cfg).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    batches = iter(build_loader(dataset, batch, train=True, seed=1, workers=0))
    times = []
    for i in range(steps + 1):
        b = next(batches)
        start = time.perf_counter()
        losses = model.loss(model(b.images), b.targets)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        if i:  # the first step warms up
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="default: the embedded set")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=30, help="timed loader batches")
    parser.add_argument("--steps", type=int, default=3, help="timed model steps")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads of this process (default torch's)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = args.data or embedded_dataset()

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f}; data: {root}"
    )
    figures: dict = {"loader": {}, "models": []}
    for size in sorted({m[1] for m in MODELS}):
        dataset = train_set(root, size)
        batch = 16
        for workers in args.workers:
            speed = loader_speed(dataset, batch, workers, args.batches)
            figures["loader"][f"{size}/{workers}"] = speed
            print(f"loader {size} px, batch {batch}, {workers} workers: {speed:8.1f} images/s")
    print()
    print("| model | size | model images/s | loader images/s (best workers) | loader / model |")
    print("|---|---:|---:|---:|---:|")
    for name, size, batch, settings in MODELS:
        speed = model_speed(train_set(root, size), batch, settings, args.steps)
        best = max(args.workers, key=lambda w: figures["loader"][f"{size}/{w}"])
        loader = figures["loader"][f"{size}/{best}"]
        figures["models"].append(
            {"model": name, "size": size, "batch": batch, "images_per_s": speed,
             "loader_images_per_s": loader, "loader_workers": best, "ratio": loader / speed}
        )  # fmt: skip
        print(
            f"| {name} | {size} | {speed:.2f} | {loader:.0f} ({best}) | **{loader / speed:.0f}x** |"
        )
    print(f"\nload average after the run: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
