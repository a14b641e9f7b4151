"""The shared weights' configuration (docs/oneshot.md): one flat YAML file plus ``--set``.

A supernet is tied to a proxy task: it trains on the proxy's data split with the proxy's model
(backbone, repeats x width, head), optimiser and precision, and scores on the proxy's reward
split, so that its scores and the stand-alone rewards of the same search measure the same thing.
``proxy_preset`` names that task and ``proxy`` overrides its keys, as in the search's
configuration. The budget is ``steps``, not the proxy's epochs: the proxy's learning-rate
schedule is stretched over them (a cosine over every step; a step schedule's milestones at the
same fractions of the run).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from nasfpn import config as config_io
from nasfpn.proxy_train import ProxyConfig
from nasfpn.proxy_train.config import with_overrides
from nasfpn.space import SearchSpace
from nasfpn.train_loop import OptimConfig

# how each step picks the paths it trains (docs/oneshot.md, "Sampling")
SAMPLING = ("uniform",)


@dataclass(frozen=True)
class SupernetConfig:
    """Everything the shared weights' training and scoring need. Defaults: the embedded set."""

    proxy_preset: str = "cpu-tiny"
    proxy: dict[str, Any] = field(default_factory=dict)

    # the search space whose every genotype the weights run (paper: P3..P7, 7 cells)
    min_level: int = 3
    max_level: int = 7
    num_cells: int = 7
    num_intermediate: int = 2

    # training: `steps` optimiser steps, each on one batch, through `paths_per_step` sampled
    # paths (their gradients summed); the paths are drawn with `seed`, the batches with the
    # proxy's seed
    steps: int = 2000
    sampling: str = "uniform"
    paths_per_step: int = 1
    seed: int = 0
    checkpoint_every: int = 100  # steps between checkpoints (atomic; --resume continues there)
    threads: int | None = None  # torch threads while training (None: the proxy's)

    # scoring: batch-norm statistics of the neck and head recomputed for each candidate, as an
    # exact average over `bn_batches` proxy-train batches (0: keep the statistics of training)
    bn_batches: int = 8
    # backbone features of the calibration and reward images computed once and kept in memory
    # (the backbone is the same for every path) when they take at most this many MiB
    feature_cache_mib: int = 2048

    def __post_init__(self) -> None:
        for name, least in (("steps", 1), ("paths_per_step", 1), ("checkpoint_every", 1),
                            ("bn_batches", 0), ("feature_cache_mib", 0)):  # fmt: skip
            if getattr(self, name) < least:
                raise ValueError(f"{name}={getattr(self, name)!r} must be at least {least}")
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling={self.sampling!r} is unknown; choose one of {SAMPLING}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads={self.threads!r} must be at least 1, or null")
        self.space()  # refuse a bad space at load time

    def space(self) -> SearchSpace:
        return SearchSpace(
            min_level=self.min_level,
            max_level=self.max_level,
            num_cells=self.num_cells,
            num_intermediate=self.num_intermediate,
        )

    def proxy_config(self) -> ProxyConfig:
        """The proxy preset with this configuration's ``proxy`` overrides, checked key by key."""
        return with_overrides(self.proxy_preset, self.proxy)

    def optim_config(self, proxy: ProxyConfig) -> OptimConfig:
        """The proxy's optimiser with its schedule over ``steps``: the loop runs one step per
        "epoch", so a step schedule's milestones (epochs of the proxy) become steps at the same
        fraction of the run, and a cosine decays over every step."""
        milestones = tuple(round(m * self.steps / proxy.epochs) for m in proxy.milestones)
        return replace(proxy.optim_config(), milestones=milestones)


def preset_path(name: str) -> Path | Traversable:
    """``cpu-tiny`` -> the package's ``presets/supernet/cpu-tiny.yaml``; a path as it is."""
    return config_io.find_preset(name, "supernet")


def load_supernet_config(
    path_or_preset: str | Path | None = "cpu-tiny", overrides: list[str] | tuple[str, ...] = ()
) -> SupernetConfig:
    """A preset name or YAML file (None: the defaults), then ``key=value`` overrides."""
    path = preset_path(str(path_or_preset)) if path_or_preset is not None else None
    return config_io.load(SupernetConfig, path, overrides)
