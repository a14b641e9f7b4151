"""One proxy training step in float32 against bfloat16 autocast, interleaved, on this CPU.

Builds the model of a proxy preset (default ``cpu-tiny``) twice from the same seed, one per
precision, and times their training steps (forward, loss, backward, optimiser step) on the same
batches from the preset's loader, alternating which goes first (A B, B A, ...). Both warm up
until their step times are steady (the last three within 10%, at most ``--max-warmup`` steps);
the figure is the median over the timed pairs of the fp32 / bf16 ratio, beside each one's
median step time and the whole 2-epoch schedule's training time at that speed.

    uv run python benchmarks/proxy_step_time.py [--preset cpu-tiny] [--pairs 20] [--json OUT]

One torch thread (the preset's ``threads``). Without native bf16 (AVX512-BF16 or AMX) bf16 is
emulated, and slower: the preset then falls back to float32 (``nasfpn.train_loop.resolve_amp``),
and this script says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from nasfpn.data import CocoDetection, TrainTransform, build_loader
from nasfpn.model import build_retinanet
from nasfpn.proxy_train import load_proxy_config
from nasfpn.proxy_train.data import prepare
from nasfpn.space import NASFPN
from nasfpn.train_loop import build_optimizer, cpu_has_bf16

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def _steady(times: list[float]) -> bool:
    last = times[-3:]
    return len(last) == 3 and max(last) <= 1.1 * min(last)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu-tiny", help="proxy preset or YAML file")
    parser.add_argument("--pairs", type=int, default=20, help="timed step pairs")
    parser.add_argument("--max-warmup", type=int, default=12, help="warm-up steps at most")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    cfg = load_proxy_config(args.preset)
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    files = prepare(cfg)
    dataset = CocoDetection(files.train_annotations, files.images,
                            TrainTransform(cfg.image_size), filter_empty=True)  # fmt: skip
    loader = build_loader(dataset, cfg.batch_size, train=True, seed=0, workers=0)
    batches = [b for _, b in zip(range(16), loader)]
    steps_per_trial = cfg.epochs * len(loader)

    def build():
        torch.manual_seed(0)
        model = build_retinanet(NASFPN, cfg.model_config(len(dataset.label_map))).train()
        return model, build_optimizer(model, cfg.optim_config())

    models = {name: build() for name in PRECISIONS}
    step_index = {name: 0 for name in PRECISIONS}

    def step(name: str) -> float:
        model, opt = models[name]
        batch = batches[step_index[name] % len(batches)]
        step_index[name] += 1
        dtype = PRECISIONS[name]
        autocast = torch.autocast("cpu", dtype=dtype) if dtype is not None else nullcontext()
        start = time.perf_counter()
        with autocast:
            losses = model.loss(model(batch.images), batch.targets)
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        return time.perf_counter() - start

    warm = {name: [] for name in PRECISIONS}
    while not all(_steady(t) for t in warm.values()) and len(warm["fp32"]) < args.max_warmup:
        for name in PRECISIONS:
            warm[name].append(step(name))
    times = {name: [] for name in PRECISIONS}
    for i in range(args.pairs):
        order = ("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32")
        for name in order:
            times[name].append(step(name))
    ratios = [a / b for a, b in zip(times["fp32"], times["bf16"])]
    out = {
        "preset": args.preset,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch": torch.__version__,
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "native_bf16": cpu_has_bf16(), "threads": torch.get_num_threads()},
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "warmup_steps": len(warm["fp32"]),
        "pairs": args.pairs,
        "steps_per_trial": steps_per_trial,
        "median_ms": {n: 1000 * statistics.median(t) for n, t in times.items()},
        "fp32_over_bf16": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
    }  # fmt: skip
    print(f"machine: {out['machine']}")
    print(f"warm-up: {out['warmup_steps']} steps each; {args.pairs} interleaved pairs")
    for name, ms in out["median_ms"].items():
        print(f"{name}: median {ms:.0f} ms/step; {steps_per_trial} steps "
              f"= {ms * steps_per_trial / 1000:.1f} s of training")  # fmt: skip
    print(f"fp32 / bf16: {out['fp32_over_bf16']:.2f}x (median of the pair ratios; "
          f"range {min(ratios):.2f}-{max(ratios):.2f})")  # fmt: skip
    if not out["machine"]["native_bf16"]:
        print("this CPU has no native bf16: the preset trains in float32 here")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
