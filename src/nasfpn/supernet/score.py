"""Score architectures on the shared weights: COCO AP on the proxy's reward split.

For each candidate the neck switches to its genotype, the batch-norm statistics of the neck and
the head are recomputed for that path (DetNAS's recipe: the statistics accumulated in training
mix every path's) as an exact average over ``bn_batches`` fixed proxy-train batches, and the
reward split is detected and scored with COCOeval, as a proxy trial scores itself. The backbone
is the same for every path: its features of the calibration and reward images are computed once
and kept in memory when they fit in ``feature_cache_mib`` (otherwise recomputed per candidate,
with the same result). A :class:`Scorer` holds the weights once and scores any number of
candidates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nasfpn.data import CocoDetection, TestTransform, TrainTransform, build_loader
from nasfpn.evaluation import METRICS, CocoEvaluator, load_ground_truth
from nasfpn.model import resolve_arch
from nasfpn.proxy_train import ProxyConfig
from nasfpn.proxy_train import data as proxy_data
from nasfpn.proxy_train.run import resolve_device
from nasfpn.space import Genotype, InvalidGenotypeError, SearchSpace
from nasfpn.supernet.config import SupernetConfig
from nasfpn.supernet.train import (
    CHECKPOINT,
    SUMMARY,
    build_model,
    load_folder_config,
    space_of,
)
from nasfpn.train_loop import machine, precision_name, resolve_amp


@dataclass
class ScoreResult:
    """One architecture's score on the shared weights. AP figures are COCOeval's (0..1)."""

    arch: str  # as the caller named it (a built-in name, a file, or the genotype's key)
    key: str  # the genotype's canonical key
    AP: float
    AP50: float
    AP75: float
    APs: float
    APm: float
    APl: float
    seconds: float  # this candidate's calibration, detection and COCOeval

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_summary(folder: str | Path) -> dict[str, Any]:
    """A finished supernet folder's ``supernet.json``, or an error saying what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"supernet folder {folder} does not exist; train one with `nasfpn supernet train "
            f"--out {folder}`"
        )
    load_folder_config(folder)  # names a folder that is not a supernet's
    path = folder / SUMMARY
    if not path.is_file():
        raise ValueError(
            f"the supernet in {folder} has not finished training (no {SUMMARY}); continue it "
            f"with `nasfpn supernet train --resume {folder}`"
        )
    summary = json.loads(path.read_text())
    if summary["status"] != "ok":
        raise ValueError(
            f"the supernet in {folder} ended {summary['status']} ({summary['reason']}); train "
            "a new one (e.g. a lower proxy.lr)"
        )
    return summary


def check_match(
    folder: str | Path, space: SearchSpace, proxy: ProxyConfig, proxy_hash: str
) -> dict[str, Any]:
    """A finished supernet folder's summary if its weights score ``space`` on the proxy task
    ``proxy`` (whose :func:`~nasfpn.proxy_train.data.config_hash` is ``proxy_hash``), else an
    error naming what differs and the fix (a search uses it on the folder it is given)."""
    summary = read_summary(folder)
    fix = ("give a supernet trained for this search's space and proxy task, or leave `supernet` "
           "empty and the search trains its own")  # fmt: skip
    wanted = {"min_level": space.min_level, "max_level": space.max_level,
              "num_cells": space.num_cells, "num_intermediate": space.num_intermediate}  # fmt: skip
    if summary["space"] != wanted:
        raise ValueError(
            f"the supernet in {folder} was trained for the space {_space_text(summary['space'])}, "
            f"not this search's {_space_text(wanted)}; {fix}"
        )
    for name in ("repeats", "width"):
        if summary[name] != getattr(proxy, name):
            raise ValueError(
                f"the supernet in {folder} has {name}={summary[name]}, this search's proxy task "
                f"{name}={getattr(proxy, name)}; {fix}"
            )
    if summary["proxy_config_hash"] != proxy_hash:
        raise ValueError(
            f"the supernet in {folder} was trained on another proxy task or data (proxy "
            f"config_hash {summary['proxy_config_hash']}, this search's {proxy_hash}: a "
            f"setting of proxy_preset or proxy differs); {fix}"
        )
    return summary


def _space_text(space: dict[str, int]) -> str:
    return (f"P{space['min_level']}..P{space['max_level']} with {space['num_cells']} cells "
            f"({space['num_intermediate']} intermediate)")  # fmt: skip


class Scorer:
    """The shared weights of a finished supernet folder, loaded once, and the data to score on.

    ``bn_batches`` overrides the folder's setting (0: keep the statistics of training);
    ``device`` and ``threads`` the proxy's.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        bn_batches: int | None = None,
        device: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.summary = read_summary(self.folder)
        cfg = load_folder_config(self.folder)
        if bn_batches is not None:
            cfg = replace(cfg, bn_batches=bn_batches)
        self.cfg: SupernetConfig = cfg
        proxy = cfg.proxy_config()
        if device is not None:
            proxy = replace(proxy, device=device)
        self.proxy = proxy
        self.space = cfg.space()
        self.device = resolve_device(proxy.device)
        self.machine = machine(self.device)  # cpu_model and gpu_model, for records
        threads = threads if threads is not None else cfg.threads or proxy.threads
        if threads is not None:
            torch.set_num_threads(threads)
        files = proxy_data.prepare(proxy)
        if proxy_data.config_hash(proxy, files) != self.summary["proxy_config_hash"]:
            raise ValueError(
                f"the supernet in {self.folder} was trained on another proxy task or data than "
                "its configuration names now (the proxy preset or the dataset changed); train "
                "a new one"
            )
        train_set = CocoDetection(files.train_annotations, files.images,
                                  TrainTransform(proxy.image_size), filter_empty=True)  # fmt: skip
        reward_set = CocoDetection(files.reward_annotations, files.images,
                                   TestTransform(proxy.image_size, 128))  # fmt: skip
        self.model = build_model(cfg, proxy, self.summary["num_classes"], self.space)
        state = torch.load(self.folder / CHECKPOINT, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.model.to(self.device).eval()
        self.amp_dtype = resolve_amp(proxy.amp, self.device)
        self.precision = precision_name(self.amp_dtype)
        self.norms = [m for part in (self.model.neck, self.model.head) for m in part.modules()
                      if isinstance(m, nn.modules.batchnorm._BatchNorm)]  # fmt: skip
        self.trained_stats = [(m.running_mean.clone(), m.running_var.clone()) for m in self.norms]
        # the calibration batches: the first bn_batches of proxy-train in the proxy seed's
        # pass-0 order, augmented as in training (the statistics the weights were trained on)
        calib_loader = build_loader(train_set, proxy.batch_size, train=True, seed=proxy.seed,
                                    workers=0)  # fmt: skip
        calib_loader.sampler.set_epoch(0)
        self._calibration = [b.images for _, b in zip(range(cfg.bn_batches), calib_loader)]
        reward_loader = build_loader(reward_set, max(proxy.batch_size // 2, 1), train=False,
                                     workers=0)  # fmt: skip
        self._reward = [(b.images, b.image_sizes, b.metas) for b in reward_loader]
        self.ground_truth = load_ground_truth(files.reward_annotations)
        self.label_map = reward_set.label_map
        self._cache = self._cache_features()

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @torch.no_grad()
    def _cache_features(self) -> tuple[list, list] | None:
        """Backbone features of every calibration and reward batch, when they fit the budget."""
        with self._autocast():
            probe = self.model.backbone(self._reward[0][0][:1].to(self.device))
        per_image = sum(t.numel() * t.element_size() for t in probe.values())
        images = sum(len(x) for x in self._calibration) + sum(len(r[0]) for r in self._reward)
        if per_image * images > self.cfg.feature_cache_mib * 2**20:
            return None
        calib = [self._backbone(x) for x in self._calibration]
        reward = [self._backbone(r[0]) for r in self._reward]
        return calib, reward

    def _backbone(self, images: Tensor) -> dict[int, Tensor]:
        with self._autocast():
            return self.model.backbone(images.to(self.device))

    def _calibration_features(self) -> Iterator[dict[int, Tensor]]:
        if self._cache is not None:
            yield from self._cache[0]
        else:
            for images in self._calibration:
                yield self._backbone(images)

    def _reward_features(self) -> Iterator[tuple[dict[int, Tensor], list, list]]:
        for i, (images, sizes, metas) in enumerate(self._reward):
            feats = self._cache[1][i] if self._cache is not None else self._backbone(images)
            yield feats, sizes, metas

    @torch.no_grad()
    def _recalibrate(self) -> None:
        """The neck's and head's BN statistics of the current path: an exact average over the
        calibration batches (momentum None: a cumulative mean), or the trained ones with 0."""
        for m, (mean, var) in zip(self.norms, self.trained_stats):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
        if not self._calibration:
            return
        saved = [m.momentum for m in self.norms]
        for m in self.norms:
            m.reset_running_stats()
            m.momentum = None
        self.model.neck.train()
        self.model.head.train()
        try:
            for feats in self._calibration_features():
                with self._autocast():
                    self.model.head(self.model.neck(feats))
        finally:
            for m, momentum in zip(self.norms, saved):
                m.momentum = momentum
            self.model.eval()

    def check(self, genotype: Genotype) -> Genotype:
        """``genotype`` if these weights run it, else a clear error naming the space."""
        try:
            return self.space.validate(genotype)
        except InvalidGenotypeError as err:
            s = self.summary["space"]
            raise ValueError(
                f"architecture {genotype.key()} is outside this supernet's space (P{s['min_level']}"
                f"..P{s['max_level']}, {s['num_cells']} cells of which {s['num_intermediate']} "
                f"intermediate): {err}; score it on a supernet of its space"
            ) from None

    @torch.no_grad()
    def score(self, genotype: Genotype, name: str | None = None) -> ScoreResult:
        """The AP of ``genotype`` on the reward split, on the shared weights."""
        start = time.perf_counter()
        self.model.neck.set_genotype(self.check(genotype))
        self._recalibrate()
        evaluator = CocoEvaluator(self.ground_truth, self.label_map)
        for feats, sizes, metas in self._reward_features():
            with self._autocast():
                outputs = self.model.head(self.model.neck(feats))
            evaluator.update(self.model.detect(outputs, sizes), metas)
        metrics = evaluator.evaluate()
        return ScoreResult(arch=name or genotype.key(), key=genotype.key(),
                           **{m: float(metrics[m]) for m in METRICS},
                           seconds=time.perf_counter() - start)  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """What the scores depend on, for a record beside them."""
        return {"supernet": str(self.folder.resolve()), "steps": self.summary["steps"],
                "bn_batches": self.cfg.bn_batches, "precision": self.precision,
                "space": space_of(self.cfg), "feature_cache": self._cache is not None,
                **self.machine}  # fmt: skip


def score(
    folder: str | Path, archs: Iterable[str | Path | Genotype], **scorer_options: Any
) -> list[ScoreResult]:
    """Score architectures (genotypes, built-in names or genotype files) on a finished
    supernet folder's weights; :class:`Scorer` takes the options."""
    named = []
    for arch in archs:
        genotype = resolve_arch(arch)
        if genotype is None:
            raise ValueError(
                f"architecture {str(arch)!r} has no merging cells to run on shared weights; give "
                "a NAS-FPN genotype (a built-in name or a genotype JSON file)"
            )
        named.append((str(arch) if not isinstance(arch, Genotype) else genotype.key(), genotype))
    scorer = Scorer(folder, **scorer_options)
    return [scorer.score(genotype, name) for name, genotype in named]
