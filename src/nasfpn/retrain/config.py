"""The retraining configuration (docs/nasfpn.md section 5; docs/retrain.md).

One YAML file per experiment, mapped onto :class:`RetrainConfig`: top-level run settings plus
the sections ``data``, ``model`` (:class:`~nasfpn.model.ModelConfig`, with its ``anchors``,
``loss`` and ``test``), ``optim`` (:class:`~nasfpn.train_loop.OptimConfig`) and ``anytime``.
``--set section.key=value`` overrides any of them, checked against the field types
(:mod:`nasfpn.config`). The presets ``r50_nasfpn_crop640_50e`` and
``r50_fpn_crop640_50e`` are mmdetection's two crop640 recipes; ``cpu-tiny`` is the
embedded default on a laptop CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from nasfpn import config as config_io
from nasfpn.model import ModelConfig
from nasfpn.train_loop import OptimConfig

DEFAULT_PRESET = "cpu-tiny"


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are transformed (mmdetection crop640 pipelines).

    ``root`` is a COCO-style folder (``annotations/instances_{train,val}2017.json`` with
    ``train2017/`` and ``val2017/``, or the synthetic set's ``instances_{train,val}.json`` with
    ``train/`` and ``val/``); null means the embedded synthetic set. Explicit annotation files
    and image folders take precedence over the root's.
    """

    root: str | None = None
    train_annotations: str | None = None
    train_images: str | None = None
    val_annotations: str | None = None
    val_images: str | None = None
    train_size: int = 640  # long side 640 * r, r in ratio_range; crop and pad to 640 x 640
    # (low, high); typed as a variable-length tuple because nasfpn.config checks fixed-length
    # tuples wrongly (it zips types with values in the wrong order)
    ratio_range: tuple[float, ...] = (0.8, 1.2)
    flip_prob: float = 0.5
    test_size: int = 640  # long side 640, keep ratio, no flip
    test_pad_divisor: int = 128  # 128 for NAS-FPN (2^7), 64 for FPN
    filter_empty: bool = True  # training drops images without boxes (filter_empty_gt=True)
    min_size: int = 32  # and images whose short side is below 32 px
    val_limit: int | None = None  # evaluate on the first N val images only (null: all)
    workers: int = 4  # loader processes per training process (workers_per_gpu=4)

    def __post_init__(self) -> None:
        for name in ("train_size", "test_size", "test_pad_divisor"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be at least 1")
        if len(self.ratio_range) != 2:
            raise ValueError(
                f"ratio_range={list(self.ratio_range)} must be two numbers [low, high], "
                "e.g. [0.8, 1.2]"
            )
        if self.workers < 0:
            raise ValueError(f"workers={self.workers!r} must be 0 (load in-process) or more")
        if self.val_limit is not None and self.val_limit < 1:
            raise ValueError(f"val_limit={self.val_limit!r} must be at least 1, or null for all")


@dataclass(frozen=True)
class AnytimeConfig:
    """Deeply supervised anytime detection (paper section 3.2).

    A head (same design as the final one, its own weights) is attached after each repeat in
    ``exits`` (1-based; null: every repeat before the last); training minimises the sum of the
    losses of all exits, evaluation reports AP at each.
    """

    enabled: bool = False
    exits: tuple[int, ...] | None = None


@dataclass(frozen=True)
class RetrainConfig:
    """Everything one retraining run needs. Defaults: mmdetection's
    ``retinanet_r50_nasfpn_crop640_50e_coco`` (docs/nasfpn.md section 5)."""

    epochs: int = 50
    batch_per_gpu: int = 8  # images per training process; the total batch is this x world size
    # linear learning-rate scaling (mmdetection auto_scale_lr): when true, the learning rate is
    # optim.lr x total_batch / base_batch; when false optim.lr is used as it is
    scale_lr: bool = False
    base_batch: int = 64  # the total batch optim.lr was tuned for (8 GPUs x 8 images)
    iters_per_epoch: int | None = None  # cut every epoch to this many steps (null: full pass)
    sync_bn: bool = False  # SyncBatchNorm in every BN layer when training on several GPUs
    eval_every: int = 1  # epochs between evaluations on val (0: only after the last epoch)
    keep_checkpoints: int = 2  # epoch checkpoints kept in checkpoints/ (the newest)
    log_every: int = 50  # iterations between loss lines and TensorBoard points
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda (each process takes cuda:LOCAL_RANK)
    amp: str = "auto"  # auto (bf16 on CUDA) | none | bf16 | fp16
    threads: int | None = None  # torch intra-op threads per process on CPU (null: default)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    anytime: AnytimeConfig = field(default_factory=AnytimeConfig)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_per_gpu", "base_batch", "keep_checkpoints", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be at least 1")
        if self.eval_every < 0:
            raise ValueError(f"eval_every={self.eval_every!r} must be 0 (end only) or more")
        if self.iters_per_epoch is not None and self.iters_per_epoch < 1:
            raise ValueError(
                f"iters_per_epoch={self.iters_per_epoch!r} must be at least 1, or null for a "
                "full pass over the training set"
            )
        if self.anytime.enabled:
            exits = self.anytime_exits()
            bad = [e for e in exits if not 1 <= e < self.model.repeats]
            if bad or len(set(exits)) != len(exits):
                raise ValueError(
                    f"anytime.exits={list(exits)} must be distinct repeats in 1.."
                    f"{self.model.repeats - 1} (the last repeat, {self.model.repeats}, is "
                    "always an exit); fix anytime.exits or model.repeats"
                )

    def anytime_exits(self) -> tuple[int, ...]:
        """The intermediate exits (1-based repeats), sorted; empty when anytime is off."""
        if not self.anytime.enabled:
            return ()
        if self.anytime.exits is None:
            return tuple(range(1, self.model.repeats))
        return tuple(sorted(self.anytime.exits))


def lr_scaling(cfg: RetrainConfig, world_size: int) -> dict[str, Any]:
    """The learning rate a run with ``world_size`` processes uses, and why.

    mmdetection's ``auto_scale_lr`` rule (the linear scaling rule of Goyal et al. 2017): with
    ``scale_lr`` the learning rate is ``optim.lr * total_batch / base_batch``; warm-up length
    and milestones are not scaled. Pure arithmetic.
    """
    total = cfg.batch_per_gpu * world_size
    factor = total / cfg.base_batch if cfg.scale_lr else 1.0
    return {
        "rule": "linear: lr = optim.lr * total_batch / base_batch (mmdetection auto_scale_lr)",
        "enabled": cfg.scale_lr,
        "world_size": world_size,
        "batch_per_gpu": cfg.batch_per_gpu,
        "total_batch": total,
        "base_batch": cfg.base_batch,
        "base_lr": cfg.optim.lr,
        "lr": cfg.optim.lr * factor,
    }


def preset_path(name: str) -> Path | Traversable:
    """``cpu-tiny`` -> the package's ``presets/retrain/cpu-tiny.yaml``; a path is returned as
    it is."""
    return config_io.find_preset(name, "retrain")


def load_retrain_config(
    path_or_preset: str | Path | None = DEFAULT_PRESET, overrides: list[str] | tuple[str, ...] = ()
) -> RetrainConfig:
    """A preset name or YAML file (null: the defaults, i.e. the NAS-FPN recipe), then
    ``key=value`` overrides (``optim.lr=0.04``, ``model.repeats=5``)."""
    path = preset_path(str(path_or_preset)) if path_or_preset is not None else None
    return config_io.load(RetrainConfig, path, overrides)
