"""Retrain one architecture at full scale: the per-process training function (docs/retrain.md).

One code path for every way of running: a single process, ``torchrun`` (DDP), and Ray Train's
``TorchTrainer`` all call :func:`retrain` in each process. It reads its rank and the world size
from the process group (Ray Train sets one up) or from torchrun's environment (then it sets up
the group itself), shards the data, wraps the model in ``DistributedDataParallel`` when there
is more than one process, and runs the shared loop (:func:`nasfpn.train_loop.train`) with one
hook that checkpoints, evaluates and logs.

Output folder (rank 0 writes it; every process must see it, shared storage on several nodes)::

    config.yaml        the configuration (read back by --resume)
    resolved.json      what ran: the configuration, the learning-rate scaling, the pipelines
    genotype.json      the architecture (absent for the FPN baseline)
    checkpoints/       epoch_NNNN.pt after every epoch, the newest keep_checkpoints kept
    metrics.json       every evaluation, the status and the final metrics (rewritten atomically)
    tensorboard/       losses, learning rate and AP (tensorboardX)
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from nasfpn import config as config_io
from nasfpn.console import EpochProgress, live_allowed
from nasfpn.data import MEAN, STD, load_annotations
from nasfpn.distributed import DistInfo, setup_distributed
from nasfpn.evaluation import detections_to_coco, evaluate_coco, load_ground_truth
from nasfpn.model import build_retinanet, count_flops, parameter_breakdown, resolve_arch
from nasfpn.retrain import data as retrain_data
from nasfpn.retrain.anytime import AnytimeRetinaNet
from nasfpn.retrain.config import RetrainConfig, lr_scaling
from nasfpn.space import Genotype
from nasfpn.train_loop import Hook, LoopState, machine, make_trainer, precision_name, train

CHECKPOINT_VERSION = 1
CONFIG_FILE = "config.yaml"
GENOTYPE_FILE = "genotype.json"
METRICS_FILE = "metrics.json"
RESOLVED_FILE = "resolved.json"
CHECKPOINT_DIR = "checkpoints"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not belong to this run."""


# ---------------------------------------------------------------------------------------------
# model and configuration


def with_num_classes(cfg: RetrainConfig, categories: int, source: str | Path) -> RetrainConfig:
    """``cfg`` with ``model.num_classes`` from the data (``categories`` of the annotation file
    ``source``) when it is null; an explicit value that disagrees is refused."""
    given = cfg.model.num_classes
    if given is None:
        return replace(cfg, model=replace(cfg.model, num_classes=categories))
    if given != categories:
        raise ValueError(
            f"model.num_classes={given} but {str(source)!r} has {categories} categories; set "
            f"model.num_classes={categories}, or null to take it from the data"
        )
    return cfg


def data_num_classes(cfg: RetrainConfig) -> tuple[int | None, str]:
    """The number of categories of the training annotations, and where it comes from; (None,
    why) when they cannot be read (the dry run of a recipe whose data is elsewhere)."""
    try:
        files = retrain_data.resolve_files(cfg.data)
    except FileNotFoundError as err:
        return None, str(err)
    categories = load_annotations(files.train_annotations)["categories"]
    return len(categories), str(files.train_annotations)


def build_model(genotype: Genotype | None, cfg: RetrainConfig) -> nn.Module:
    """The RetinaNet of ``genotype`` (None: the FPN baseline), with anytime exits if asked."""
    model = build_retinanet(genotype if genotype is not None else "fpn", cfg.model)
    if cfg.anytime.enabled:
        if genotype is None:
            raise ValueError(
                "anytime detection needs a repeated NAS-FPN neck, not the FPN baseline; set "
                "anytime.enabled=false or give a genotype"
            )
        model = AnytimeRetinaNet(model, cfg.anytime_exits())
    return model


def model_summary(model: nn.Module, cfg: RetrainConfig, genotype: Genotype | None):
    """Parameters (backbone, neck, head, total) and forward FLOPs at ``data.test_size``."""
    summary: dict[str, Any] = {
        "neck": "fpn" if genotype is None else "nasfpn",
        "key": genotype.key() if genotype is not None else None,
        "params": parameter_breakdown(model),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "flops": count_flops(model, cfg.data.test_size),
        "flops_image_size": cfg.data.test_size,
    }
    if isinstance(model, AnytimeRetinaNet):
        summary["params"]["exit_heads"] = sum(p.numel() for p in model.exit_heads.parameters())
        summary["exits"] = model.exit_names
    return summary


def resolved_config(cfg: RetrainConfig, world_size: int) -> dict[str, Any]:
    """The configuration as it will run: every field, the learning-rate scaling for
    ``world_size`` processes, and the data pipelines and assigner spelled out."""
    d, loss = cfg.data, cfg.model.loss
    lo, hi = d.ratio_range
    return {
        "config": config_io.to_dict(cfg),
        "lr_scaling": lr_scaling(cfg, world_size),
        "train_pipeline": [
            f"resize: long side {d.train_size} x r, r uniform in [{lo}, {hi}], keep ratio",
            f"random crop {d.train_size} x {d.train_size} (boxes clipped, empty ones dropped)",
            f"horizontal flip p={d.flip_prob}",
            f"normalise: RGB mean {list(MEAN)}, std {list(STD)}",
            f"pad to {d.train_size} x {d.train_size}",
        ],
        "test_pipeline": [
            f"resize: long side {d.test_size}, keep ratio, no flip",
            f"normalise: RGB mean {list(MEAN)}, std {list(STD)}",
            f"pad to a multiple of {d.test_pad_divisor}",
        ],
        "assigner": {
            "type": "max IoU (mmdetection MaxIoUAssigner)",
            "pos_iou": loss.pos_iou,
            "neg_iou": loss.neg_iou,
            "min_pos_iou": loss.min_pos_iou,
            "best_anchor_of_each_gt_positive": True,
        },
        "anytime_exits": [*cfg.anytime_exits(), cfg.model.repeats] if cfg.anytime.enabled else [],
    }


# ---------------------------------------------------------------------------------------------
# files


def atomic_write(path: Path, write) -> None:
    """``write(tmp_path)``, then rename over ``path``: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, doc: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(doc, indent=2) + "\n"))


def checkpoint_path(out: Path, epoch: int) -> Path:
    return out / CHECKPOINT_DIR / f"epoch_{epoch:04d}.pt"


def latest_checkpoint(out: Path) -> Path | None:
    """The checkpoint of the most recent epoch in ``out/checkpoints``, if any."""
    files = sorted((out / CHECKPOINT_DIR).glob("epoch_*.pt"))
    return files[-1] if files else None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A retraining checkpoint, read with ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise CheckpointError(
            f"could not read {str(path)!r} as a retraining checkpoint ({err}); give a "
            "checkpoints/epoch_NNNN.pt file written by `nasfpn retrain`"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} is not a retraining checkpoint (format_version "
            f"{CHECKPOINT_VERSION}); give a checkpoints/epoch_NNNN.pt file written by "
            "`nasfpn retrain`"
        )
    return ckpt


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def weights_digest(model: nn.Module) -> str:
    """A hash of every parameter and buffer: equal on every DDP replica when they are in sync."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def evaluate(model: nn.Module, loader, gt, label_map, info: DistInfo) -> dict[str, Any]:
    """COCO box AP on val. Each process scores its share of the images; rank 0 runs COCOeval
    on all of them and every process gets the metrics. With anytime exits: the final exit's
    metrics at the top level and every exit's under ``exits``."""
    info.sync_buffers(model)
    was_training = model.training
    model.eval()
    anytime = isinstance(model, AnytimeRetinaNet)
    names = model.exit_names if anytime else ["final"]
    results: dict[str, list] = {n: [] for n in names}
    for batch in loader:
        batch = batch.to(info.device)
        outs = model(batch.images, all_exits=True) if anytime else [model(batch.images)]
        for name, out in zip(names, outs):
            dets = model.detect(out, batch.image_sizes)
            results[name].extend(detections_to_coco(dets, batch.metas, label_map))
    model.train(was_training)
    shares = info.gather(results)
    metrics: dict[str, Any] | None = None
    if info.main:
        per_exit = {n: evaluate_coco(gt, [r for share in shares for r in share[n]]) for n in names}
        metrics = dict(per_exit[names[-1]])
        if anytime:
            metrics["exits"] = per_exit
    return info.broadcast(metrics)


# ---------------------------------------------------------------------------------------------
# the hook: checkpoint, evaluate, log


class RetrainHook(Hook):
    """After each step: the progress display and, every ``log_every`` iterations, TensorBoard
    points (rank 0). After each epoch: the checkpoint (rank 0, before anything else can fail),
    the evaluation when due (all processes), and ``metrics.json``."""

    def __init__(self, run: _Run) -> None:
        self.run = run

    def after_step(self, state: LoopState, losses: dict[str, float]) -> None:
        run = self.run
        if not run.info.main:
            return
        lr = run.trainer.optimizer.param_groups[0]["lr"]
        loss = sum(losses.values())
        if run.progress is not None:
            run.progress.step(state.epoch, state.iteration, loss, lr)
        if state.iteration % run.cfg.log_every:
            return
        for name, value in losses.items():
            run.writer.add_scalar(f"train/{name}", value, state.iteration)
        run.writer.add_scalar("train/loss", loss, state.iteration)
        run.writer.add_scalar("train/lr", lr, state.iteration)

    def after_epoch(self, state: LoopState) -> bool | None:
        run = self.run
        run.save_checkpoint(state)
        if run.eval_due(state.epoch):
            run.evaluate(state)
        run.write_metrics(state, status="running")
        return None


class _Run:
    """One process's view of a retraining run."""

    def __init__(self, genotype, cfg, out: Path, info: DistInfo, log) -> None:
        self.genotype, self.cfg, self.out, self.info, self.log = genotype, cfg, out, info, log
        self.history: list[dict[str, Any]] = []
        self.eval_seconds = 0.0
        self.writer = None
        self.trainer = None
        self.model: nn.Module | None = None  # the unwrapped model
        self.categories: list[dict[str, Any]] = []  # of the training set, into checkpoints
        self.val_loader = self.gt = self.label_map = None  # set once the data are loaded
        self.progress: EpochProgress | None = None  # rank 0's bar or progress lines

    def eval_due(self, epoch: int) -> bool:
        every = self.cfg.eval_every
        return epoch == self.cfg.epochs or (every > 0 and epoch % every == 0)

    def evaluate(self, state: LoopState) -> dict[str, Any]:
        start = time.perf_counter()
        metrics = evaluate(self.model, self.val_loader, self.gt, self.label_map, self.info)
        seconds = time.perf_counter() - start
        self.eval_seconds += seconds
        entry = {"epoch": state.epoch, "iteration": state.iteration, **metrics,
                 "eval_seconds": round(seconds, 2)}  # fmt: skip
        self.history.append(entry)
        if self.info.main:
            exits = metrics.get("exits", {"final": metrics})
            for exit_name, m in exits.items():
                suffix = "" if exit_name in ("final", self.last_exit) else f"_{exit_name}"
                for k in ("AP", "AP50", "AP75", "APs", "APm", "APl"):
                    self.writer.add_scalar(f"val/{k}{suffix}", m[k], state.iteration)
            self.writer.flush()
            line = "  ".join(f"{k} {metrics[k]:.4f}" for k in ("AP", "AP50", "AP75"))
            if "exits" in metrics:
                line += "  | " + "  ".join(f"{n} {m['AP']:.4f}" for n, m in exits.items())
            self.log(f"epoch {state.epoch} val: {line}  ({seconds:.0f} s)")
        return entry

    @property
    def last_exit(self) -> str:
        return f"r{self.cfg.model.repeats}"

    def save_checkpoint(self, state: LoopState) -> None:
        if self.info.main:
            payload = {
                "format_version": CHECKPOINT_VERSION,
                "model": self.model.state_dict(),
                **self.trainer.state_dict(),  # optimizer, scaler, epoch, iteration
                "scheduler": {"schedule": self.cfg.optim.schedule, "iteration": state.iteration},
                "config": config_io.to_dict(self.cfg),
                "genotype": self.genotype.to_dict() if self.genotype is not None else None,
                "categories": self.categories,
                "world_size": self.info.world_size,
                "rng": _rng_state(),
            }
            path = checkpoint_path(self.out, state.epoch)
            atomic_write(path, lambda p: torch.save(payload, p))
            for old in sorted((self.out / CHECKPOINT_DIR).glob("epoch_*.pt"))[
                : -self.cfg.keep_checkpoints
            ]:
                old.unlink()
        self.info.barrier()

    def write_metrics(self, state: LoopState, status: str, reason: str = "", **extra) -> None:
        if not self.info.main:
            return
        doc = {
            "status": status,
            "reason": reason,
            "epoch": state.epoch,
            "iteration": state.iteration,
            "epochs": self.cfg.epochs,
            "final": self.history[-1] if self.history and status == "ok" else None,
            "history": self.history,
            **extra,
        }
        write_json(self.out / METRICS_FILE, doc)


def _read_history(out: Path, epoch: int) -> list[dict[str, Any]]:
    path = out / METRICS_FILE
    if not path.is_file():
        return []
    return [h for h in json.loads(path.read_text()).get("history", []) if h["epoch"] <= epoch]


def retrain(
    arch: str | Path | Genotype | None,
    cfg: RetrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    hooks: Iterable[Hook] = (),
    log=print,
) -> dict[str, Any]:
    """Train ``arch`` (a genotype, built-in name, JSON path, or ``fpn``/None for the FPN
    baseline) with ``cfg`` into ``out``; the per-process function of every launcher.

    ``resume`` continues from the newest checkpoint in ``out`` (from scratch when there is
    none); without it, ``out`` must hold no checkpoint. Returns the run's summary (rank 0's
    ``metrics.json`` content plus timings); ``hooks`` run after the built-in one.
    """
    genotype = resolve_arch(arch) if arch is not None else None
    out = Path(out)
    info = setup_distributed(cfg.device)
    log = log if info.main else (lambda *a, **k: None)
    try:
        return _retrain(genotype, cfg, out, info, resume, list(hooks), log)
    finally:
        if info.owns_group:
            dist.destroy_process_group()


def _retrain(genotype, cfg, out, info: DistInfo, resume, hooks, log) -> dict[str, Any]:
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.sync_bn and info.world_size > 1 and info.device.type != "cuda":
        raise ValueError("sync_bn needs CUDA devices (NCCL); set sync_bn=false on CPU")
    scaling = lr_scaling(cfg, info.world_size)
    optim = replace(cfg.optim, lr=scaling["lr"])  # the linear scaling rule, when enabled
    ckpt_file = latest_checkpoint(out)
    if ckpt_file is not None and not resume:
        raise ValueError(
            f"{str(out)!r} already holds checkpoints (newest {ckpt_file.name}); pass --resume "
            "to continue that run, or choose another --out"
        )

    run = _Run(genotype, cfg, out, info, log)
    files = retrain_data.resolve_files(cfg.data)
    train_set = retrain_data.train_dataset(files, cfg.data)
    val_set = retrain_data.val_dataset(files, cfg.data)
    cfg = with_num_classes(cfg, len(train_set.label_map), files.train_annotations)
    run.cfg = cfg
    pin = info.device.type == "cuda"
    loader = retrain_data.train_loader(
        train_set, cfg.batch_per_gpu, seed=cfg.seed, rank=info.rank,
        world_size=info.world_size, workers=cfg.data.workers, pin_memory=pin,
    )  # fmt: skip
    run.val_loader = retrain_data.val_loader(
        val_set, cfg.batch_per_gpu, rank=info.rank, world_size=info.world_size,
        limit=cfg.data.val_limit, workers=cfg.data.workers, pin_memory=pin,
    )  # fmt: skip
    run.gt = load_ground_truth(files.val_annotations)
    if cfg.data.val_limit is not None:
        keep = {int(i) for i in val_set.image_ids[: cfg.data.val_limit]}
        run.gt.dataset = dict(run.gt.dataset, images=[i for i in run.gt.dataset["images"]
                                                      if i["id"] in keep])  # fmt: skip
    run.label_map = train_set.label_map
    cats = {c["id"]: c for c in run.gt.dataset["categories"]}
    run.categories = [
        cats.get(i, {"id": i, "name": n})
        for i, n in zip(train_set.label_map.category_ids, train_set.label_map.names)
    ]
    iters = len(loader) if cfg.iters_per_epoch is None else min(cfg.iters_per_epoch, len(loader))

    torch.manual_seed(cfg.seed)
    model = build_model(genotype, cfg)
    run.model = model
    trainer = make_trainer(model, optim, cfg.epochs, iters, device=info.device, amp=cfg.amp)
    run.trainer = trainer
    if cfg.sync_bn and info.world_size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        run.model = trainer.model = model
    start_epoch = 0
    if resume and ckpt_file is not None:
        ckpt = load_checkpoint(ckpt_file)
        saved = ckpt["genotype"]
        if (saved is None) != (genotype is None) or (
            genotype is not None and Genotype.from_dict(saved).key() != genotype.key()
        ):
            raise CheckpointError(
                f"{str(ckpt_file)!r} was trained for another architecture than the one given; "
                "give the run's own genotype.json (or fpn), or choose another --out"
            )
        model.load_state_dict(ckpt["model"])
        trainer.load_state_dict(ckpt)
        _set_rng_state(ckpt["rng"])
        start_epoch = trainer.state.epoch
        run.history = _read_history(out, start_epoch)
        log(f"resumed from {ckpt_file} (epoch {start_epoch}, iteration {trainer.state.iteration})")
    if info.world_size > 1:
        ids = [info.device.index] if info.device.type == "cuda" else None
        trainer.model = nn.parallel.DistributedDataParallel(model, device_ids=ids)

    if info.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / CHECKPOINT_DIR).mkdir(exist_ok=True)
        config_io.save(cfg, out / CONFIG_FILE)
        write_json(out / RESOLVED_FILE, resolved_config(cfg, info.world_size))
        if genotype is not None:
            genotype.save(out / GENOTYPE_FILE)
        from tensorboardX import SummaryWriter

        run.writer = SummaryWriter(str(out / "tensorboard"))
    info.barrier()
    log(f"retrain {'fpn' if genotype is None else genotype.key()} -> {out}: "
        f"{info.world_size} process(es) x {cfg.batch_per_gpu} images (total batch "
        f"{scaling['total_batch']}), lr {optim.lr:g}"
        f"{' (linearly scaled)' if scaling['enabled'] else ''}, {cfg.epochs} epochs x {iters} "
        f"iterations, device {info.device}")  # fmt: skip
    if info.main:
        # a live bar only for the console's own print (a caller's log gets plain lines)
        run.progress = EpochProgress(cfg.epochs, iters, cfg.batch_per_gpu * info.world_size,
                                     every=cfg.log_every, log=log,
                                     live=live_allowed() if log is print else False)  # fmt: skip
        run.log = run.progress.log

    state = trainer.state
    if (
        start_epoch
        and run.eval_due(start_epoch)
        and not any(h["epoch"] == start_epoch for h in run.history)
    ):  # the run stopped between its checkpoint and that epoch's evaluation
        run.evaluate(state)

    channels_last = info.device.type == "cuda"
    anytime = isinstance(model, AnytimeRetinaNet)

    def compute_loss(net: nn.Module, batch) -> dict[str, torch.Tensor]:
        batch = batch.to(info.device, non_blocking=True)
        images = batch.images
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if anytime:
            return model.anytime_loss(net(images, all_exits=True), batch.targets)
        return model.loss(net(images), batch.targets)

    def batches(epoch: int):
        loader.sampler.set_epoch(epoch)
        for i, batch in enumerate(loader):
            if i >= iters:
                return
            yield batch

    started = time.perf_counter()
    try:
        state = train(trainer, batches, compute_loss, [RetrainHook(run), *hooks])
    except BaseException as err:
        run.write_metrics(trainer.state, status="failed", reason=f"{type(err).__name__}: {err}")
        raise
    finally:
        if run.progress is not None:
            run.progress.close()
    info.sync_buffers(model)
    digests = info.gather(weights_digest(model))
    summary_extra = {
        "train_seconds": round(time.perf_counter() - started - run.eval_seconds, 2),
        "eval_seconds": round(run.eval_seconds, 2),
        "world_size": info.world_size,
        "lr": optim.lr,
        "weights_digests": digests,
        "replicas_in_sync": len(set(digests)) == 1,
        # where it ran and in what: rank 0's machine (docs/proxy.md, "The budget is the schedule")
        "precision": precision_name(trainer.amp_dtype),
        **machine(info.device),
    }
    run.write_metrics(state, status=state.status, reason=state.reason, **summary_extra)
    if run.writer is not None:
        run.writer.close()
    final = run.history[-1] if run.history and state.status == "ok" else None
    if final is not None:
        log(f"done: AP {final['AP']:.4f} after {state.epoch} epochs "
            f"({summary_extra['train_seconds']:.0f} s training); results in {out}")  # fmt: skip
    else:
        log(f"ended {state.status}: {state.reason}")
    # every process returns at once, after rank 0 has written its files: under torchrun the
    # first process to exit non-zero gets the others stopped, perhaps before they say why
    info.barrier()
    return {"status": state.status, "reason": state.reason, "epoch": state.epoch,
            "iteration": state.iteration, "final": final, "history": run.history,
            "out": str(out), **summary_extra}  # fmt: skip
