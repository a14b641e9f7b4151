"""GPU figures of the paper's proxy task: training images per second and peak memory, per AMP mode.

The ``paper`` proxy preset (docs/nasfpn.md section 4: ResNet-10 from scratch, NAS-FPN 3@256,
512 x 512, batch 64) trains the published cell on random images with synthetic boxes (80
classes, 10 boxes an image); one training step is forward, focal + L1 loss, backward and the
optimiser step of ``nasfpn.train_loop`` (its AMP and channels-last settings). Reported: the
median step time after warm-up as images per second, and the peak of
``torch.cuda.max_memory_allocated`` in GiB, over warm-up and timed steps and (steady) over the
timed steps alone, without the warm-up's cuDNN autotuning workspaces. Data loading is left out
(on CPU the loader delivers hundreds of times what this model consumes: "Data loading" in
benchmarks/README.md).

``--preset mobile`` times the mobile proxy instead (MobileNetV2 from scratch, 3@48 separable,
320 x 320, batch 64) on a genotype of the mobile space (P3-P6; the `mobile` search preset's space,
sampled with seed 0), the figure that a mobile search's cost on COCO is computed from
(docs/cost.md).

    uv run python benchmarks/proxy_gpu.py [--preset paper|mobile] [--amp none,bf16,fp16]
        [--batch 64] [--json OUT]

It needs CUDA and refuses clearly without it (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import random
import sys

import torch
from gpu_step import synthetic_batch, time_training_step

from nasfpn.model import build_retinanet
from nasfpn.proxy_train import load_proxy_config
from nasfpn.search import load_search_config
from nasfpn.space import NASFPN
from nasfpn.train_loop import make_trainer

NUM_CLASSES = 80


def measure(preset: str, amp: str, batch: int | None, iters: int) -> dict[str, float | str | int]:
    cfg = load_proxy_config(preset)
    batch = batch or cfg.batch_size
    device = torch.device("cuda")
    torch.manual_seed(0)
    if preset == "paper":
        genotype = NASFPN
    else:  # the mobile space's levels (P3-P6): one genotype of it, the same every run
        space = load_search_config(preset).space()
        genotype = space.decode(space.sample(random.Random(0)))
    model = build_retinanet(genotype, cfg.model_config(NUM_CLASSES, genotype.levels))
    trainer = make_trainer(model, cfg.optim_config(), cfg.epochs, 1000, device=device, amp=amp)
    images, targets = synthetic_batch(cfg.image_size, batch, NUM_CLASSES, device)
    per_step, peak, steady = time_training_step(model, trainer, images, targets, iters)
    return {"preset": preset, "amp": amp, "batch": batch, "image_size": cfg.image_size,
            "seconds_per_step": per_step, "img_per_s": batch / per_step,
            "peak_gib": peak, "steady_peak_gib": steady}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper", choices=["paper", "mobile"])
    parser.add_argument("--amp", default="none,bf16,fp16", help="AMP modes, comma-separated")
    parser.add_argument("--batch", type=int, default=None, help="default: the preset's (64)")
    parser.add_argument("--iters", type=int, default=10, help="timed training steps")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("proxy_gpu.py measures GPU speed and memory and needs a CUDA device; none is "
              "available here. Run it on a machine with a GPU.", file=sys.stderr)  # fmt: skip
        return 2
    torch.backends.cudnn.benchmark = True
    gpu = torch.cuda.get_device_name()
    results = [measure(args.preset, amp, args.batch, args.iters) for amp in args.amp.split(",")]
    print("| GPU | AMP | batch | size | s/step | images/s | peak memory (GiB) "
          "| steady peak (GiB) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        cells = [gpu, r["amp"], r["batch"], r["image_size"], f"{r['seconds_per_step']:.3f}",
                 f"{r['img_per_s']:.1f}", f"{r['peak_gib']:.2f}",
                 f"{r['steady_peak_gib']:.2f}"]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": gpu, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
