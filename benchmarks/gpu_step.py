"""What the GPU benchmarks share: a synthetic detection batch and a timed training step."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from nasfpn.train_loop import Trainer


def synthetic_batch(size: int, n: int, num_classes: int, device: torch.device):
    """``n`` random ``size`` x ``size`` images (channels-last) with 10 random boxes each."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, size, size, generator=g)
    targets = []
    for _ in range(n):
        xy = torch.rand(10, 2, generator=g) * size * 0.7
        wh = 16 + torch.rand(10, 2, generator=g) * size * 0.3
        boxes = torch.cat([xy, (xy + wh).clamp(max=size)], 1)
        labels = torch.randint(0, num_classes, (10,), generator=g)
        targets.append({"boxes": boxes.to(device), "labels": labels.to(device)})
    return images.to(device).contiguous(memory_format=torch.channels_last), targets


def time_training_step(
    model: nn.Module, trainer: Trainer, images: torch.Tensor, targets: list, iters: int
) -> tuple[float, float, float]:
    """(median seconds per step, peak GiB allocated, steady peak GiB) of forward, focal + L1
    loss, backward and the optimiser step with the trainer's AMP mode, after 3 warm-up steps.

    The peak counts the warm-up too, whose cuDNN autotuning (``cudnn.benchmark``) allocates
    trial workspaces; the steady peak counts the timed steps alone, as mmengine logs ``memory``
    (it resets the peak at each log interval, so the figures it logs after the first exclude
    the first iteration's autotuning)."""
    autocast = torch.autocast("cuda", dtype=trainer.amp_dtype,
                              enabled=trainer.amp_dtype is not None)  # fmt: skip

    def step() -> None:
        with autocast:
            losses = model.loss(model(images), targets)
        trainer.optimizer.zero_grad(set_to_none=True)
        total = sum(losses.values())
        if trainer.scaler is not None:
            trainer.scaler.scale(total).backward()
            trainer.scaler.step(trainer.optimizer)
            trainer.scaler.update()
        else:
            total.backward()
            trainer.optimizer.step()

    model.train()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(3):  # warm-up: cuDNN autotuning, allocator, optimiser state
        step()
    torch.cuda.synchronize()
    warmup_peak = torch.cuda.max_memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    steady = torch.cuda.max_memory_allocated()
    trainer.optimizer.zero_grad(set_to_none=True)
    return statistics.median(times), max(warmup_peak, steady) / 2**30, steady / 2**30
