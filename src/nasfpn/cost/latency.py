"""Inference latency of a detector on this machine: forward plus post-processing, timed.

The protocol of Vertex AI NAS's latency measurement (batch 1, 20 warm-up runs, then 20 timed
runs; the median reported) with the spread kept: every timed run's milliseconds, their median,
quartiles, minimum and maximum. torch's intra-op thread count is set for the measurement and
restored after (one thread by default, a phone's big core being the paper's setting); the
precision is float32, in inference mode, on the CPU unless a device is given.

Post-processing (score threshold, top-k per level, class-wise NMS) runs as the model's test
settings say. An untrained model's scores sit near its prior (0.01), under the threshold, so its
NMS has little to do; a trained model's post-processing costs more. Compare latencies measured
the same way (both untrained, or both trained), on one CPU model, with one thread count.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Latency:
    """One measurement: milliseconds per batch of ``batch`` images, and how it was taken."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    max_ms: float
    times_ms: tuple[float, ...]
    warmup: int
    repeats: int
    threads: int
    batch: int
    image_size: int
    device: str
    cpu_model: str
    gpu_model: str | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["times_ms"] = list(self.times_ms)
        return out


def measure_latency(
    run: Any,
    *,
    warmup: int = 20,
    repeats: int = 20,
    threads: int | None = None,
    synchronize: Any = None,
) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``run()``, after ``warmup`` untimed ones,
    with torch's intra-op thread count set to ``threads`` meanwhile (None: left as it is) and
    restored after. ``synchronize()`` (a CUDA device's) is called before each clock reading."""
    if warmup < 0 or repeats < 1:
        raise ValueError(
            f"warmup={warmup} and repeats={repeats}: warm-up runs must be 0 or more and timed "
            "runs at least 1"
        )
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            run()
        times = []
        for _ in range(repeats):
            if synchronize is not None:
                synchronize()
            start = time.perf_counter()
            run()
            if synchronize is not None:
                synchronize()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        torch.set_num_threads(saved)
    return times


def spread(times: list[float]) -> dict[str, float]:
    """The median, quartiles and extremes of timed runs (milliseconds)."""
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median_ms": statistics.median(times), "q1_ms": quartiles[0],
            "q3_ms": quartiles[2], "min_ms": min(times), "max_ms": max(times)}  # fmt: skip


def model_latency(
    model: nn.Module,
    image_size: int = 320,
    *,
    batch: int = 1,
    threads: int = 1,
    warmup: int = 20,
    repeats: int = 20,
    device: str | torch.device = "cpu",
) -> Latency:
    """The latency of ``model`` (a :class:`~nasfpn.model.RetinaNet`): ``model.detect(model(x))``
    on a batch of ``batch`` ``image_size`` x ``image_size`` images, float32, inference mode.
    The model is put in eval mode and on ``device``; torch's thread count is ``threads`` while
    timing, then restored."""
    from nasfpn.train_loop import machine

    for name, value, least in (("threads", threads, 1), ("batch", batch, 1),
                               ("image_size", image_size, 32)):  # fmt: skip
        if value < least:
            raise ValueError(f"latency {name}={value} must be at least {least}")
    device = torch.device(device)
    model = model.eval().to(device)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, image_size, image_size, generator=generator).to(device)
    sizes = [(image_size, image_size)] * batch
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    with torch.inference_mode():
        times = measure_latency(lambda: model.detect(model(images), sizes), warmup=warmup,
                                repeats=repeats, threads=threads, synchronize=sync)  # fmt: skip
    return Latency(
        **spread(times),
        times_ms=tuple(times),
        warmup=warmup,
        repeats=repeats,
        threads=threads,
        batch=batch,
        image_size=image_size,
        device=str(device),
        **machine(device),
    )
