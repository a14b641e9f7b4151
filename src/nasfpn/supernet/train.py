"""Train one RetinaNet whose neck runs every genotype of the search space (weight sharing).

Single-path one-shot training (Guo et al., 2019; DetNAS, Chen et al., 2019, for detection): each
step draws ``paths_per_step`` genotypes uniformly from the space's legal decision sequences
(:meth:`~nasfpn.space.SearchSpace.sample`: at every decision a uniform choice among the legal
ones, which is uniform over whole sequences here because their number of legal choices does not
depend on earlier ones) and trains the shared weights through them on one proxy-train batch.
Cell ``k`` of each repeat keeps one set of weights whatever its inputs, level and operation
(:meth:`~nasfpn.model.NASFPNNeck.set_genotype`); the backbone runs once per batch and feeds every
path of the step.

The budget is steps; the genotypes of step ``i`` follow from ``(seed, i)`` and its batch from
the proxy's seed and ``i``, so a run resumed from a checkpoint continues exactly as if it had
never stopped.

Several processes (``torchrun --nproc-per-node N -m nasfpn supernet train``, or Ray Train:
:func:`nasfpn.distributed.fit_on_ray_train`) train one run together, as retraining does: each
process takes ``batch_size / N`` images of every step's batch (the same images as one process
would take, split by position), all run the step's same paths, and DDP averages their gradients.
The run is the same recipe on 1 or N processes (same batches, paths, steps and learning rate);
what differs is that batch norm and the loss's normaliser see each process's share. Rank 0
writes the folder, which every process must see. The folder::

    supernet_config.yaml   the resolved configuration (--resume reads it)
    checkpoint.pt          weights, optimiser and step; replaced atomically every
                           checkpoint_every steps and at the end
    train_log.jsonl        one line per step: loss, learning rate, seconds, the paths' keys
    supernet.json          the summary, written when training ends (``status`` ok or diverged)
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasfpn import config as config_io
from nasfpn.data import CocoDetection, TrainTransform, build_loader
from nasfpn.distributed import RAY_TRAIN_STORAGE, DistInfo, setup_distributed
from nasfpn.model import build_retinanet
from nasfpn.proxy_train import data as proxy_data
from nasfpn.proxy_train.config import ProxyConfig
from nasfpn.proxy_train.run import resolve_device
from nasfpn.space import Genotype, SearchSpace
from nasfpn.supernet.config import SupernetConfig
from nasfpn.train_loop import Hook, LoopState, machine, make_trainer, precision_name, train

CONFIG = "supernet_config.yaml"
CHECKPOINT = "checkpoint.pt"
TRAIN_LOG = "train_log.jsonl"
SUMMARY = "supernet.json"


@dataclass
class SupernetSummary:
    """What a finished training says about itself (``supernet.json``)."""

    status: str  # ok | diverged
    reason: str
    steps: int
    seconds: float  # training time over every session of the run (resumes summed)
    precision: str
    cpu_model: str
    gpu_model: str | None
    proxy_config_hash: str  # the proxy task the weights were trained on (its data by content)
    space: dict[str, int]  # min_level, max_level, num_cells, num_intermediate
    repeats: int
    width: int
    num_classes: int
    final_loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def space_of(cfg: SupernetConfig) -> dict[str, int]:
    return {"min_level": cfg.min_level, "max_level": cfg.max_level,
            "num_cells": cfg.num_cells, "num_intermediate": cfg.num_intermediate}  # fmt: skip


def step_paths(space: SearchSpace, seed: int, step: int, count: int) -> list[Genotype]:
    """The genotypes that step ``step`` trains: drawn from ``(seed, step, j)`` alone, so a
    resumed run draws the same ones."""
    paths = []
    for j in range(count):
        rng = random.Random(f"supernet-{seed}-{step}-{j}")
        paths.append(space.decode(space.sample(rng)))
    return paths


class _SharedStep(nn.Module):
    """One step's forward: the backbone once, then each of the step's paths through the neck
    and head on its features; the mean of their losses. One module, so that DDP's forward sees
    the whole step (every path uses every weight of the neck, so no parameter goes unused)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images, targets, paths: list[Genotype]) -> dict[str, torch.Tensor]:
        feats = self.net.backbone(images)
        total: dict[str, torch.Tensor] = {}
        for genotype in paths:
            self.net.neck.set_genotype(genotype)
            losses = self.net.loss(self.net.head(self.net.neck(feats)), targets)
            for name, value in losses.items():
                total[name] = total.get(name, 0) + value / len(paths)
        return total


class _StepBatches:
    """``batches(step)`` for the training loop, which runs one step per "epoch": the batch of
    step ``i`` is batch ``i mod n`` of pass ``i // n`` over proxy-train (n batches a pass), in
    the pass's seeded order. Passes are read through one loader iterator; a resumed run starts
    its first pass part way through, without loading the batches it skips."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self.per_pass = len(loader)
        self.batch_size = loader.batch_size
        self.iterator: Iterator | None = None
        self.next_step = -1

    def __call__(self, step: int) -> list:
        pass_, offset = divmod(step, self.per_pass)
        if self.iterator is None or step != self.next_step or offset == 0:
            self.loader.sampler.set_epoch(pass_, start=offset * self.batch_size)
            self.iterator = iter(self.loader)
        self.next_step = step + 1
        return [next(self.iterator)]


class _Log(Hook):
    """Keeps each step's line and writes them to ``train_log.jsonl`` before every checkpoint;
    calls ``progress`` after every step."""

    def __init__(
        self,
        trainer,
        path: Path,
        paths_of: Callable[[int], list[Genotype]],
        seconds_before: float,
        progress: Callable[[dict], None] | None,
    ) -> None:
        self.trainer, self.path, self.paths_of = trainer, path, paths_of
        self.seconds_before, self.progress = seconds_before, progress
        self.pending: list[dict[str, Any]] = []
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.start

    def after_step(self, state: LoopState, losses: dict[str, float]) -> bool | None:
        step = state.iteration  # steps finished; this one was step - 1
        entry = {"step": step, "loss": sum(losses.values()), **losses,
                 "lr": self.trainer.optimizer.param_groups[0]["lr"],
                 "seconds": round(self.seconds(), 3),
                 "paths": [g.key() for g in self.paths_of(step - 1)]}  # fmt: skip
        self.pending.append(entry)
        if self.progress is not None:
            self.progress(entry)
        return None

    def flush(self) -> None:
        if self.pending:
            with self.path.open("a") as f:
                f.writelines(json.dumps(e) + "\n" for e in self.pending)
            self.pending = []


class _Checkpoint(Hook):
    """Writes the log, then the checkpoint, every ``every`` steps and after the last."""

    def __init__(self, save: Callable[[], None], log: _Log, every: int, steps: int) -> None:
        self.save, self.log, self.every, self.steps = save, log, every, steps

    def after_epoch(self, state: LoopState) -> bool | None:
        if state.epoch % self.every == 0 or state.epoch == self.steps:
            self.log.flush()
            self.save()
        return None


def progress_printer(every: float) -> Callable[[dict[str, Any]], None]:
    """A ``progress`` for :func:`train_supernet` that prints a step's line at most every
    ``every`` seconds (the command line's, and a Ray Train worker's)."""
    last = [-float("inf")]

    def progress(entry: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            print(f"step {entry['step']:>6}  loss {entry['loss']:.4f}  lr {entry['lr']:.2e}  "
                  f"({entry['seconds']:.0f} s)", flush=True)  # fmt: skip

    return progress


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` into a temporary file beside ``path``, then rename: a reader (or a
    resume after SIGKILL) sees the old checkpoint or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _trim_log(path: Path, step: int) -> None:
    """Drop the log lines of steps after ``step`` (written before a kill, redone now)."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept))


def train_supernet(
    cfg: SupernetConfig,
    out: str | Path,
    *,
    resume: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> SupernetSummary:
    """Train the shared weights into ``out`` (or, with ``resume``, continue the run there from
    its checkpoint: its saved configuration is used, ``cfg`` is ignored) and return the summary.

    Under ``torchrun`` or Ray Train every process calls this and all return the same summary
    (see the module's docstring). ``progress`` gets every step's log line (rank 0's). Errors
    of configuration and data are raised, on every process alike.
    """
    out = Path(out)
    proxy_device = (load_folder_config(out) if resume else cfg).proxy_config().device
    info = _processes(proxy_device)
    try:
        return _train(cfg, out, info, resume, progress)
    finally:
        if info.owns_group:
            torch.distributed.destroy_process_group()


def _processes(device: str) -> DistInfo:
    """One process on the proxy's device, or this process's place among several."""
    if os.environ.get("WORLD_SIZE", "1") == "1" and not (
        torch.distributed.is_available() and torch.distributed.is_initialized()
    ):
        return DistInfo(0, 1, 0, resolve_device(device))
    return setup_distributed(device)


def _prepare_folder(cfg: SupernetConfig | None, out: Path, resume: bool) -> str | None:
    """Rank 0's checks and first writes; the error's message, or None."""
    if resume:
        return None
    problem = new_folder_problem(out)
    if problem is not None:
        return problem
    out.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, out / CONFIG)
    return None


def new_folder_problem(out: Path) -> str | None:
    """Why ``out`` cannot take a new training (it holds files already), or None. The folder
    ``ray`` that Ray Train makes there before its workers start is not counted."""
    if out.exists() and any(p.name != RAY_TRAIN_STORAGE for p in out.iterdir()):
        return (
            f"output folder {out} is not empty; choose a new --out, or --resume {out} to "
            "continue the training there"
        )
    return None


def _train(cfg, out: Path, info: DistInfo, resume: bool, progress) -> SupernetSummary:
    if resume:
        cfg = load_folder_config(out)
        summary_path = out / SUMMARY
        if summary_path.is_file():  # finished already: nothing to redo
            return SupernetSummary(**json.loads(summary_path.read_text()))
    problem = info.broadcast(_prepare_folder(cfg, out, resume) if info.main else None)
    if problem is not None:
        raise ValueError(problem)

    proxy = cfg.proxy_config()
    device = info.device
    if proxy.batch_size % info.world_size:
        raise ValueError(
            f"proxy.batch_size={proxy.batch_size} does not split evenly among "
            f"{info.world_size} processes; run a number of processes that divides it, or set "
            "proxy.batch_size to a multiple of it"
        )
    per_process = proxy.batch_size // info.world_size
    threads = cfg.threads if cfg.threads is not None else proxy.threads
    if threads is not None:
        torch.set_num_threads(threads)
    files = proxy_data.prepare(proxy)
    train_set = CocoDetection(files.train_annotations, files.images,
                              TrainTransform(proxy.image_size), filter_empty=True)  # fmt: skip
    if len(train_set) < proxy.batch_size:
        raise ValueError(
            f"proxy-train has {len(train_set)} images with boxes, fewer than batch_size "
            f"{proxy.batch_size}; lower proxy.batch_size or proxy.holdout"
        )
    loader = build_loader(train_set, per_process, train=True, seed=proxy.seed,
                          workers=proxy.workers, pin_memory=device.type == "cuda",
                          rank=info.rank, world_size=info.world_size)  # fmt: skip
    space = cfg.space()
    num_classes = len(train_set.label_map)
    model = build_model(cfg, proxy, num_classes, space)
    trainer = make_trainer(model, cfg.optim_config(proxy), cfg.steps, 1, device=device,
                           amp=proxy.amp)  # fmt: skip
    seconds_before = 0.0
    checkpoint = out / CHECKPOINT
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        trainer.load_state_dict(state["trainer"])
        seconds_before = float(state["seconds"])
    if info.main:
        _trim_log(out / TRAIN_LOG, trainer.state.iteration)
    step = _SharedStep(model)
    if info.world_size > 1:
        ids = [device.index] if device.type == "cuda" else None
        trainer.model = nn.parallel.DistributedDataParallel(step, device_ids=ids)
    else:
        trainer.model = step

    def paths_of(step: int) -> list[Genotype]:
        return step_paths(space, cfg.seed, step, cfg.paths_per_step)

    log = _Log(trainer, out / TRAIN_LOG, paths_of, seconds_before, progress)
    meta = {"proxy_config_hash": proxy_data.config_hash(proxy, files), "space": space_of(cfg),
            "repeats": proxy.repeats, "width": proxy.width, "num_classes": num_classes,
            "precision": precision_name(trainer.amp_dtype)}  # fmt: skip

    def save() -> None:
        save_atomic({"model": model.state_dict(), "trainer": trainer.state_dict(),
                     "seconds": log.seconds(), "meta": meta,
                     "world_size": info.world_size}, checkpoint)  # fmt: skip

    channels_last = device.type == "cuda"

    def compute_loss(net, batch) -> dict[str, torch.Tensor]:
        batch = batch.to(device, non_blocking=True)
        images = batch.images
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return net(images, batch.targets, paths_of(trainer.state.iteration))

    hooks = [log, _Checkpoint(save, log, cfg.checkpoint_every, cfg.steps)] if info.main else []
    state = train(trainer, _StepBatches(loader), compute_loss, hooks)
    seconds = log.seconds()
    if info.main:
        log.flush()  # the checkpoint hook saved after the last step; a diverged run keeps its last
    final = sum(state.last_losses.values()) if state.last_losses else None
    summary = SupernetSummary(
        status=state.status,
        reason=state.reason,
        steps=state.iteration,
        seconds=seconds,
        final_loss=final,
        extra={"world_size": info.world_size},
        **machine(device),
        **meta,
    )
    if info.main:
        _write_json(summary.to_dict(), out / SUMMARY)
    info.barrier()  # the summary is on disk before any process returns
    return SupernetSummary(**info.broadcast(summary.to_dict()))


def build_model(cfg: SupernetConfig, proxy: ProxyConfig, num_classes: int, space: SearchSpace):
    """The RetinaNet of the proxy's model settings with a neck of the space's cell count, its
    weights initialised from the proxy's seed (the neck starts on the space's first sample)."""
    torch.manual_seed(proxy.seed)
    start = step_paths(space, cfg.seed, 0, 1)[0]
    return build_retinanet(start, proxy.model_config(num_classes, start.levels))


def load_folder_config(folder: str | Path) -> SupernetConfig:
    """The saved configuration of a supernet folder, with a clear error where there is none."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} is not a supernet folder (no {CONFIG}); train one with `nasfpn supernet "
            "train --out DIR`"
        )
    return config_io.load(SupernetConfig, path)
