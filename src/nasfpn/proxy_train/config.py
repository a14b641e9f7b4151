"""The proxy task's configuration (paper section 4; docs/proxy.md).

One flat dataclass: a YAML preset sets any of its fields and ``--set key=value`` overrides
them, checked against the field types (:mod:`nasfpn.config`). The ``paper`` preset is the
paper's proxy task, ``cpu-tiny`` the embedded default on a laptop CPU (both ship inside the
package: ``nasfpn config show proxy/paper``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from nasfpn import config as config_io
from nasfpn.model import AnchorSpec, LossSettings, ModelConfig
from nasfpn.train_loop import OptimConfig


@dataclass(frozen=True)
class ProxyConfig:
    """Everything one proxy trial needs. Defaults: the paper's proxy task (section 4)."""

    # data: a COCO-style root (annotations/instances_train*.json + image folders), or null for
    # the embedded synthetic set. Explicit split files (nasfpn data split) take precedence.
    data: str | None = None
    train_annotations: str | None = None
    reward_annotations: str | None = None
    images: str | None = None  # image folder of both split files (default: the root's train)
    holdout: int = 7392  # images of the train annotations kept for the reward (COCO: 7,392)
    subset: float = 1.0  # fraction of proxy-train used for training
    split_seed: int = 0
    reward_images: int | None = None  # evaluate on at most this many reward images
    image_size: int = 512

    # model (paper: ResNet-10 from scratch, 3@256)
    backbone: str = "resnet10"
    pretrained: str | None = None
    frozen_stages: int = 0
    norm: str = "trainable"
    repeats: int = 3
    width: int = 256
    variant: str = "mmdet"
    head_convs: int = 4
    separable: bool = False  # depthwise-separable 3x3 convs in cells and head (NAS-FPNLite)
    focal_gamma: float = 2.0
    # anchor size in strides (smallest anchor: anchor_scale * 8 px); 4 is RetinaNet's (paper)
    anchor_scale: float = 4.0

    # optimisation (paper: 10 epochs, batch 64, lr 0.08 decayed x0.1 at epoch 8)
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.08
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "step"
    milestones: tuple[int, ...] = (8,)
    min_lr_ratio: float = 0.0
    warmup_iters: int = 500
    warmup_ratio: float = 0.1
    grad_clip: float | None = None

    # evaluation and running
    eval_every: int = 0  # epochs between reward evaluations (0: only after the last epoch)
    # a safety net, not a budget (the budget is epochs): a trial whose training runs longer
    # is stopped and recorded as `timeout`, never `ok` (docs/proxy.md); None: no limit
    max_train_seconds: float | None = None
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16 on CUDA) | none | bf16 (CUDA, or a CPU with it) | fp16
    workers: int = 2
    threads: int | None = None  # torch intra-op threads on CPU (None: torch's default)

    def __post_init__(self) -> None:
        if not 0 < self.subset <= 1:
            raise ValueError(f"subset={self.subset!r} must be in (0, 1]")
        for name in ("epochs", "batch_size", "image_size", "holdout"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be at least 1")
        if self.max_train_seconds is not None and not self.max_train_seconds > 0:
            raise ValueError(
                f"max_train_seconds={self.max_train_seconds!r} must be positive (a safety limit "
                "in seconds), or null for none"
            )
        if self.reward_images is not None and self.reward_images < 1:
            raise ValueError(
                f"reward_images={self.reward_images!r} must be at least 1, or null for all"
            )
        if self.eval_every < 0:
            raise ValueError(f"eval_every={self.eval_every!r} must be 0 (end only) or more")
        self.optim_config()  # refuse a bad optimiser setting (lr, warm-up, ...) at load time
        if (self.train_annotations is None) != (self.reward_annotations is None):
            raise ValueError(
                "give both train_annotations and reward_annotations (the files written by "
                "`nasfpn data split`), or neither to split the data's train annotations here"
            )

    def model_config(
        self, num_classes: int, levels: tuple[int, ...] = (3, 4, 5, 6, 7)
    ) -> ModelConfig:
        """The detector of this proxy task for ``num_classes`` and the pyramid ``levels`` (one
        anchor stride per level: P3-P6 for the mobile space)."""
        return ModelConfig(
            backbone=self.backbone,
            pretrained=self.pretrained,
            frozen_stages=self.frozen_stages,
            norm=self.norm,
            repeats=self.repeats,
            width=self.width,
            variant=self.variant,
            num_classes=num_classes,
            head_convs=self.head_convs,
            separable=self.separable,
            anchors=AnchorSpec(
                strides=tuple(2**lvl for lvl in levels), octave_base_scale=self.anchor_scale
            ),
            loss=LossSettings(focal_gamma=self.focal_gamma),
        )

    def optim_config(self) -> OptimConfig:
        return OptimConfig(
            optimizer=self.optimizer,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            schedule=self.schedule,
            milestones=self.milestones,
            min_lr_ratio=self.min_lr_ratio,
            warmup_iters=self.warmup_iters,
            warmup_ratio=self.warmup_ratio,
            grad_clip=self.grad_clip,
        )


def preset_path(name: str) -> Path | Traversable:
    """``paper`` -> the package's ``presets/proxy/paper.yaml``; a path is returned as it is."""
    return config_io.find_preset(name, "proxy")


def with_overrides(preset: str, overrides: Mapping[str, Any]) -> ProxyConfig:
    """A proxy preset (or YAML file) with the ``proxy:`` block of another configuration (a
    search's, a study's, a supernet's) applied key by key; errors name ``proxy.KEY``."""
    base = config_io.load(ProxyConfig, preset_path(preset))
    return config_io.from_dict(ProxyConfig, overrides, prefix="proxy.", base=base)


def load_proxy_config(
    path_or_preset: str | Path | None = "cpu-tiny", overrides: list[str] | tuple[str, ...] = ()
) -> ProxyConfig:
    """A preset name or YAML file, then ``key=value`` overrides."""
    path = preset_path(str(path_or_preset)) if path_or_preset is not None else None
    return config_io.load(ProxyConfig, path, overrides)
