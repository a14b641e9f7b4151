"""The one training loop that proxy training and retraining share.

Thin on purpose (detectron2's ``train_loop`` advice): it runs epochs of optimiser steps with the
learning-rate schedule, mixed precision and gradient clipping, stops early when the loss is
not finite, and calls hooks after each step and each epoch. What a step computes is the
caller's ``compute_loss(model, batch) -> {name: loss}``; evaluation, reports and checkpoints are
hooks. Proxy training and retraining differ only in configuration.
"""

from __future__ import annotations

import contextlib
import math
import platform
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("step", "cosine")
AMP_MODES = ("auto", "none", "bf16", "fp16")


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and learning-rate schedule. Defaults: docs section 5 (mmdetection's recipe).

    ``milestones`` are epochs at which the learning rate is multiplied by ``gamma`` (step
    schedule). The cosine schedule decays per iteration from ``lr`` to ``lr * min_lr_ratio``
    over the whole run. Both are multiplied by a linear warm-up from ``warmup_ratio * lr`` over
    ``warmup_iters`` iterations (mmdetection's linear warm-up).
    """

    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.08
    momentum: float = 0.9  # SGD momentum; AdamW's beta1
    weight_decay: float = 1e-4
    norm_weight_decay: float = 0.0  # decay of norm weights and biases (mmdet norm_decay_mult=0)
    schedule: Literal["step", "cosine"] = "step"
    milestones: tuple[int, ...] = (30, 40)
    gamma: float = 0.1
    min_lr_ratio: float = 0.0
    warmup_iters: int = 1000
    warmup_ratio: float = 0.1
    grad_clip: float | None = None  # max global L2 norm of the gradients; None: no clipping

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is unknown; choose one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is unknown; choose one of {SCHEDULES}")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be positive")
        if self.warmup_iters < 0 or not 0 < self.warmup_ratio <= 1:
            raise ValueError(
                f"warm-up of {self.warmup_iters} iterations from ratio {self.warmup_ratio}: "
                "iterations must be >= 0 and the ratio in (0, 1]"
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip={self.grad_clip!r} must be positive, or null for none")


def lr_factor(cfg: OptimConfig, iteration: int, iters_per_epoch: int, epochs: int) -> float:
    """The multiplier of the base learning rate at ``iteration`` (0-based). Pure arithmetic."""
    epoch = iteration // max(iters_per_epoch, 1)
    if cfg.schedule == "step":
        factor = cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    else:
        total = max(iters_per_epoch * epochs, 1)
        progress = min(iteration / total, 1.0)
        factor = cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )
    if iteration < cfg.warmup_iters:
        k = (1 - iteration / cfg.warmup_iters) * (1 - cfg.warmup_ratio)
        factor *= 1 - k
    return factor


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._NormBase | nn.GroupNorm | nn.LayerNorm)


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over the trainable parameters, norm parameters in a group of their own.

    A parameter shared by several modules (the head's shared convs) is added once, the role of
    mmdetection's ``bypass_duplicate``.
    """
    norm_params, other, seen = [], [], set()
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (norm_params if _is_norm(module) else other).append(p)
    groups = [
        {"params": other, "weight_decay": cfg.weight_decay},
        {"params": norm_params, "weight_decay": cfg.norm_weight_decay},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX tiles).

    Only then does bf16 autocast speed training up on a CPU (a cpu-tiny proxy step: 1.57x,
    benchmarks/README.md); elsewhere torch emulates bf16, which is slower than float32.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def cpu_model() -> str:
    """This machine's CPU as its kernel names it, with the family, model and stepping numbers
    that tell its generation apart where the name does not (a virtual machine's "Intel(R)
    Xeon(R) Processor"): ``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                if fields:
                    break  # the first processor's block is enough
                continue
            fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    numbers = [f"{k.removeprefix('cpu ')} {fields[k]}" for k in ("cpu family", "model", "stepping")
               if k in fields]  # fmt: skip
    return f"{name} ({', '.join(numbers)})" if numbers else name


def machine(device: torch.device) -> dict[str, str | None]:
    """Where a run computes, for its result: ``cpu_model`` (always: data loading and, on a CPU,
    the arithmetic) and ``gpu_model`` (the CUDA device's name, or None)."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"cpu_model": cpu_model(), "gpu_model": gpu}


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (None: float32, no autocast).

    ``auto`` is bf16 on CUDA and float32 on CPU. ``bf16`` is bf16 on CUDA and on CPUs that
    have it natively (:func:`cpu_has_bf16`), float32 on other CPUs: a fallback, which
    :func:`precision_name` of the result records. ``fp16`` needs CUDA.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp {amp!r} is unknown; choose one of {AMP_MODES}")
    if amp == "none" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp in ("auto", "bf16"):
        if device.type == "cuda" or cpu_has_bf16():
            return torch.bfloat16
        return None
    if device.type != "cuda":
        raise ValueError(
            f"amp={amp!r} needs a CUDA device, but training runs on {device.type}; "
            "set amp to bf16 (native on recent CPUs), auto or none"
        )
    return torch.float16


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32``, ``bf16`` or ``fp16``: what a run computed in (its autocast dtype)."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


@dataclass
class LoopState:
    """Where a run stands; everything a hook may read or a checkpoint must hold."""

    epoch: int = 0  # epochs finished
    iteration: int = 0  # optimiser steps taken
    status: str = "running"  # running | ok | diverged | stopped
    reason: str = ""
    last_losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class Hook:
    """Called by :func:`train`. Return ``False`` from ``after_step`` or ``after_epoch`` to stop
    the run early (status ``stopped``; the hook's ``stop_reason``, if it has one, is the
    reason)."""

    def after_step(self, state: LoopState, losses: dict[str, float]) -> bool | None:
        return None

    def after_epoch(self, state: LoopState) -> bool | None:
        return None


@dataclass
class Trainer:
    """Holds the model, optimiser and precision settings of one run."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    cfg: OptimConfig
    epochs: int
    iters_per_epoch: int
    device: torch.device
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    state: LoopState = field(default_factory=LoopState)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "epoch": self.state.epoch,
            "iteration": self.state.iteration,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.state.epoch = int(state["epoch"])
        self.state.iteration = int(state["iteration"])


def make_trainer(
    model: nn.Module,
    cfg: OptimConfig,
    epochs: int,
    iters_per_epoch: int,
    device: torch.device | str = "cpu",
    amp: str = "auto",
    channels_last: bool = True,
) -> Trainer:
    """Move ``model`` to ``device`` (channels-last memory on CUDA when asked) and build the
    optimiser over it. The caller's ``compute_loss`` moves batches to the same device."""
    device = torch.device(device)
    amp_dtype = resolve_amp(amp, device)
    model.to(device)
    if channels_last and device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    return Trainer(
        model=model,
        optimizer=build_optimizer(model, cfg),
        cfg=cfg,
        epochs=epochs,
        iters_per_epoch=iters_per_epoch,
        device=device,
        amp_dtype=amp_dtype,
        scaler=scaler,
    )


def train(
    trainer: Trainer,
    batches: Callable[[int], Iterable[Any]],
    compute_loss: Callable[[nn.Module, Any], dict[str, Tensor]],
    hooks: Iterable[Hook] = (),
) -> LoopState:
    """Run the remaining epochs; ``batches(epoch)`` yields that epoch's batches.

    Ends with ``status`` ``ok``; ``diverged`` as soon as a loss or the gradient norm is not
    finite (the reason names the iteration and the values); ``stopped`` when a hook asks.

    When ``trainer.model`` is a ``DistributedDataParallel`` replica of more than one process,
    the processes agree at every step, before backward, whether every loss is finite (one
    all-reduce of a flag): all of them end ``diverged`` at the same iteration with the same
    reason, which names the ranks whose loss was not finite and their values. Otherwise one
    process would leave the loop while the others wait in the next collective for ever.
    """
    state, model, opt, cfg = trainer.state, trainer.model, trainer.optimizer, trainer.cfg
    hooks = list(hooks)
    replicas = _replica_group(model)
    base_lrs = [cfg.lr for _ in opt.param_groups]
    start = time.perf_counter()
    model.train()
    while state.epoch < trainer.epochs:
        for batch in batches(state.epoch):
            factor = lr_factor(cfg, state.iteration, trainer.iters_per_epoch, trainer.epochs)
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = base * factor
            autocast = (
                torch.autocast(trainer.device.type, dtype=trainer.amp_dtype)
                if trainer.amp_dtype is not None
                else nullcontext()
            )
            with autocast:
                losses = compute_loss(model, batch)
            total = sum(losses.values())
            values = {k: float(v.detach()) for k, v in losses.items()}
            finite = local_finite = math.isfinite(float(total.detach()))
            if replicas is not None:
                finite = _all_finite(local_finite, trainer.device, replicas)
            if not finite:
                where = f"at iteration {state.iteration} (epoch {state.epoch})"
                if replicas is None:
                    reason = f"loss is not finite {where}: {values}"
                else:
                    reason = _replicas_reason(local_finite, values, where, replicas)
                return _end(state, start, "diverged", reason)
            opt.zero_grad(set_to_none=True)
            if trainer.scaler is not None:
                trainer.scaler.scale(total).backward()
                trainer.scaler.unscale_(opt)
            else:
                total.backward()
            if cfg.grad_clip is not None:
                norm = nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                # needs no agreement: DDP's backward has all-reduced the gradients, so every
                # replica computes the same norm and ends here at the same step, same reason
                if not torch.isfinite(norm) and trainer.scaler is None:
                    return _end(
                        state,
                        start,
                        "diverged",
                        f"gradient norm is {float(norm)} at iteration {state.iteration}",
                    )
            if trainer.scaler is not None:
                trainer.scaler.step(opt)
                trainer.scaler.update()
            else:
                opt.step()
            state.iteration += 1
            state.last_losses = values
            go_on = [hook.after_step(state, values) for hook in hooks]
            if any(g is False for g in go_on):
                return _stop(state, start, hooks, go_on, f"at iteration {state.iteration}")
        state.epoch += 1
        state.seconds = time.perf_counter() - start
        go_on = [hook.after_epoch(state) for hook in hooks]
        if state.status != "running":  # a hook ended the run (e.g. its evaluation failed)
            return state
        if any(g is False for g in go_on):
            return _stop(state, start, hooks, go_on, f"after epoch {state.epoch}")
    return _end(state, start, "ok", "")


def _replica_group(model: nn.Module) -> dist.ProcessGroup | None:
    """The process group of a DDP ``model`` with more than one replica, else None.

    Only then does a step hold collectives (DDP's forward broadcast and backward all-reduce)
    that every process must enter; a single process, proxy training included, pays nothing.
    """
    if not isinstance(model, nn.parallel.DistributedDataParallel):
        return None
    group = model.process_group
    return group if dist.get_world_size(group) > 1 else None


def _all_finite(finite: bool, device: torch.device, group: dist.ProcessGroup) -> bool:
    """Whether the loss is finite on every process of ``group`` (one all-reduce of a flag).

    The flag lives on the training device: NCCL reduces CUDA tensors only.
    """
    flag = torch.tensor([1 if finite else 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=group)
    return bool(flag.item())


def _replicas_reason(
    finite: bool, values: dict[str, float], where: str, group: dist.ProcessGroup
) -> str:
    """The same reason on every process: which ranks had a loss that is not finite, and its
    values. Gathered only once the run has diverged, so a healthy step costs one flag."""
    world = dist.get_world_size(group)
    shares: list[Any] = [None] * world
    dist.all_gather_object(shares, (dist.get_rank(), finite, values), group=group)
    bad = [(rank, v) for rank, ok, v in shares if not ok]
    ranks = ", ".join(str(rank) for rank, _ in bad)
    detail = "; ".join(f"rank {rank}: {v}" for rank, v in bad)
    plural = "s" if len(bad) > 1 else ""
    return f"loss is not finite {where} on rank{plural} {ranks} of {world}: {detail}"


def _stop(state: LoopState, start: float, hooks: list[Hook], go_on: list, where: str) -> LoopState:
    """End the run as ``stopped`` by the first hook that returned False."""
    hook = next(h for h, g in zip(hooks, go_on) if g is False)
    reason = getattr(hook, "stop_reason", "") or f"a hook stopped the run {where}"
    return _end(state, start, "stopped", reason)


class TimeLimit(Hook):
    """A safety net, not a budget: stops the run once training has taken ``seconds``.

    Budgets are epochs and steps, so that a result does not depend on how fast or busy the
    machine is; this hook only ends a run that is stuck or far slower than planned, and says
    so (``fired``, ``stop_reason``) so that the caller can record it as such. ``excluded()``
    gives seconds not to count (e.g. evaluations run by another hook); ``planned``, the run's
    iterations, only goes into the message.
    """

    def __init__(
        self,
        seconds: float,
        excluded: Callable[[], float] = lambda: 0.0,
        planned: int | None = None,
    ) -> None:
        self.seconds, self.excluded, self.planned = seconds, excluded, planned
        self.start = time.perf_counter()
        self.fired = False
        self.stop_reason = ""

    def after_step(self, state: LoopState, losses: dict[str, float]) -> bool | None:
        spent = time.perf_counter() - self.start - self.excluded()
        if spent <= self.seconds:
            return None
        self.fired = True
        of = f" of {self.planned}" if self.planned is not None else ""
        self.stop_reason = (
            f"training ran past its {self.seconds:g} s safety limit (max_train_seconds) at "
            f"iteration {state.iteration}{of} (epoch {state.epoch}): the machine is much "
            "slower or busier than the schedule was planned for"
        )
        return False


def _end(state: LoopState, start: float, status: str, reason: str) -> LoopState:
    state.status, state.reason = status, reason
    state.seconds = time.perf_counter() - start
    return state
