"""GPU figures of the full-scale recipe: training memory, inference speed, and the 50-epoch cost.

What mmdetection's model zoo reports for retinanet_r50_nasfpn_crop640_50e (V100): 13.2 GB peak
training memory (8 images per GPU at 640 x 640) and 23.0 img/s inference at 640, batch 1 (FPN
baseline: 12.9 GB, 22.9 img/s). This script measures the same on the GPU it runs on:

- one training iteration of the recipe (forward, focal + L1 loss, backward, SGD step) on 8
  random 640 x 640 images with synthetic boxes, for each AMP mode; the peak of
  ``torch.cuda.max_memory_allocated``, in GiB, over warm-up and timed iterations, and the steady
  peak over the timed iterations alone (as mmdetection logs ``memory``: mmengine resets the peak
  at each log interval, so its logged figures leave out the first iteration's cuDNN autotuning),
  and the median iteration time after warm-up;
- inference (forward and post-processing, ``RetinaNet.detect``) at 640 x 640, batch 1, in
  images per second;
- the 50-epoch estimate from the measured iteration time: 50 x 117,266 train2017 images (those
  with boxes) / 64 images per iteration = 91,614 iterations on 8 GPUs with 8 images each,
  ignoring data loading and DDP communication: wall-clock hours, and GPU-hours = 8 x that.

    uv run python benchmarks/retrain_gpu.py [--arch nasfpn|fpn] [--amp none,bf16] [--json OUT]

It needs CUDA and refuses clearly without it (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import torch
from gpu_step import synthetic_batch, time_training_step

from nasfpn.retrain import build_model, load_retrain_config
from nasfpn.space import get_genotype
from nasfpn.train_loop import make_trainer

EPOCHS = 50
TRAIN_IMAGES = 117_266  # COCO train2017 images with at least one box (filter_empty_gt)
TOTAL_BATCH = 64  # 8 GPUs x 8 images
GPUS = 8
COCO_CLASSES = 80  # the recipe takes num_classes from the data; COCO has 80
REFERENCE = {"nasfpn": (13.2, 23.0), "fpn": (12.9, 22.9)}  # GB, img/s on a V100


def fifty_epoch_estimate(seconds_per_iter: float) -> dict[str, float]:
    """Iterations of the recipe and their cost at ``seconds_per_iter`` per iteration."""
    iterations = EPOCHS * TRAIN_IMAGES / TOTAL_BATCH  # 91,614.06
    hours = iterations * seconds_per_iter / 3600
    return {"iterations": round(iterations), "wall_hours": hours, "gpu_hours": GPUS * hours}


def measure(arch: str, amp: str, iters: int, infer_iters: int) -> dict[str, float]:
    config = "r50_fpn_crop640_50e" if arch == "fpn" else "r50_nasfpn_crop640_50e"
    cfg = load_retrain_config(config)
    # ImageNet weights change neither memory nor speed: build the backbone from scratch. The
    # recipe leaves num_classes to the training annotations (null); here it is COCO's 80.
    num_classes = cfg.model.num_classes or COCO_CLASSES
    cfg = replace(cfg, model=replace(cfg.model, pretrained=None, num_classes=num_classes))
    genotype = None if arch == "fpn" else get_genotype(arch)
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model(genotype, cfg)
    trainer = make_trainer(model, cfg.optim, cfg.epochs, 1000, device=device, amp=amp)
    images, targets = synthetic_batch(cfg.data.train_size, cfg.batch_per_gpu,
                                      cfg.model.num_classes, device)  # fmt: skip
    per_iter, peak, steady = time_training_step(model, trainer, images, targets, iters)
    autocast = torch.autocast("cuda", dtype=trainer.amp_dtype,
                              enabled=trainer.amp_dtype is not None)  # fmt: skip

    model.eval()
    image = torch.randn(1, 3, cfg.data.test_size, cfg.data.test_size, device=device)
    image = image.contiguous(memory_format=torch.channels_last)
    size = [(cfg.data.test_size, cfg.data.test_size)]
    with torch.no_grad(), autocast:
        for _ in range(5):
            model.detect(model(image), size)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(infer_iters):
            model.detect(model(image), size)
        torch.cuda.synchronize()
    fps = infer_iters / (time.perf_counter() - start)
    return {"arch": arch, "amp": amp, "peak_gib": peak, "steady_peak_gib": steady,
            "seconds_per_iter": per_iter, "img_per_s": fps,
            **fifty_epoch_estimate(per_iter)}  # fmt: skip


def row(r: dict[str, float], gpu: str) -> str:
    return (f"| {gpu} | {r['arch']} | {r['amp']} | {r['peak_gib']:.2f} | "
            f"{r['steady_peak_gib']:.2f} | {r['img_per_s']:.1f} | "
            f"{r['seconds_per_iter']:.3f} | {r['iterations']:,} | {r['wall_hours']:.1f} | "
            f"{r['gpu_hours']:.0f} |")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="nasfpn", help="nasfpn (default), fpn, or a genotype")
    parser.add_argument("--amp", default="none,bf16", help="AMP modes, comma-separated")
    parser.add_argument("--iters", type=int, default=20, help="timed training iterations")
    parser.add_argument("--infer-iters", type=int, default=100, help="timed inference images")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("retrain_gpu.py measures GPU memory and speed and needs a CUDA device; none is "
              "available here. Run it on a machine with a GPU.", file=sys.stderr)  # fmt: skip
        return 2
    torch.backends.cudnn.benchmark = True  # as mmdetection's crop640 configs set
    gpu = torch.cuda.get_device_name()
    results = [measure(args.arch, amp, args.iters, args.infer_iters)
               for amp in args.amp.split(",")]  # fmt: skip
    ref_mem, ref_fps = REFERENCE.get(args.arch, (float("nan"), float("nan")))
    print(f"target (mmdetection, V100, fp32): <= {ref_mem} GB training, >= {ref_fps} img/s\n")
    print(
        "| GPU | arch | AMP | peak train memory (GiB, 8 x 640) | steady peak (GiB) | inference "
        "(img/s, 640, batch 1) | s/iter | iterations (50 ep) | 8-GPU hours | GPU-hours |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(row(r, gpu))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": gpu, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
