"""One proxy trial: build the RetinaNet of a genotype, train it, score it on the reward split.

This is where a search spends nearly all of its compute (paper section 4). The trial's budget
is its schedule (epochs of steps), never the clock: on a CPU the same genotype, seed, data and
configuration give a bit-identical reward and iteration count however busy the machine is.
``max_train_seconds`` is only a safety net: a trial it stops ends as ``timeout``, not ``ok``.
A trial ends early as ``diverged`` when the loss stops being finite, and reports the results of
intermediate evaluations (every ``eval_every`` epochs, not the final one, which ``run``
returns) through ``report`` so that a scheduler can stop it early, and its position after
every step (epoch, iteration, loss) through ``progress``, for a display. It imports no Ray: the
search wraps it.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from nasfpn.data import CocoDetection, TestTransform, TrainTransform, build_loader
from nasfpn.evaluation import METRICS, CocoEvaluator, load_ground_truth
from nasfpn.model import build_retinanet, count_flops, parameter_breakdown
from nasfpn.proxy_train import data as proxy_data
from nasfpn.proxy_train.config import ProxyConfig
from nasfpn.space import Genotype
from nasfpn.train_loop import (
    Hook,
    LoopState,
    TimeLimit,
    machine,
    make_trainer,
    precision_name,
    train,
)

STATUSES = ("ok", "timeout", "diverged", "failed")
Report = Callable[[dict[str, Any]], None]


@dataclass
class ProxyResult:
    """What one proxy trial returns. AP figures are COCOeval's (0..1)."""

    status: str  # ok | timeout | diverged | failed
    reason: str = ""
    seed: int = 0
    precision: str = "fp32"  # what training computed in: fp32 | bf16 | fp16 (amp, resolved)
    # where it ran: rewards are reproducible per CPU model and precision (bf16 kernels differ
    # between CPU models), docs/proxy.md "Determinism"
    cpu_model: str = ""
    gpu_model: str | None = None
    AP: float = 0.0
    AP50: float = 0.0
    AP75: float = 0.0
    APs: float = 0.0
    APm: float = 0.0
    APl: float = 0.0
    params: int = 0
    flops: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    epochs: int = 0
    iterations: int = 0
    config_hash: str = ""
    losses: dict[str, float] = field(default_factory=dict)  # of the last training step
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reward(self) -> float:
        return self.AP

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available; use auto or cpu")
    return device


def _loss(device: torch.device, channels_last: bool):
    def compute(model, batch):
        batch = batch.to(device, non_blocking=True)
        images = batch.images
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return model.loss(model(images), batch.targets)

    return compute


@torch.no_grad()
def evaluate(model, loader, evaluator: CocoEvaluator, device: torch.device) -> dict[str, float]:
    """COCO box AP of ``model`` on the reward split (boxes mapped back to the image files)."""
    was_training = model.training
    model.eval()
    evaluator.results = []
    for batch in loader:
        batch = batch.to(device)
        evaluator.update(model.detect(model(batch.images), batch.image_sizes), batch.metas)
    model.train(was_training)
    return evaluator.evaluate()


class _Progress(Hook):
    """Calls ``progress`` after every step with where the run is; the caller throttles."""

    def __init__(self, progress: Callable[[dict[str, Any]], None], epochs: int, iters: int):
        self.progress, self.epochs, self.iters = progress, epochs, iters

    def after_step(self, state: LoopState, losses: dict[str, float]) -> bool | None:
        self.progress({"epoch": state.epoch + 1, "epochs": self.epochs,
                       "iteration": state.iteration, "iterations": self.epochs * self.iters,
                       "loss": sum(losses.values())})  # fmt: skip
        return None


class _Evaluator(Hook):
    """Scores the reward split every ``every`` epochs (and never twice for one epoch)."""

    def __init__(self, every: int, epochs: int, score: Callable[[], dict], report: Report | None):
        self.every, self.epochs, self.score, self.report = every, epochs, score, report
        self.history: list[dict[str, Any]] = []
        self.eval_seconds = 0.0

    def run(self, state: LoopState, final: bool = False) -> dict[str, Any]:
        start = time.perf_counter()
        metrics = self.score()
        self.eval_seconds += time.perf_counter() - start
        entry = {"epoch": state.epoch, "iteration": state.iteration, **metrics,
                 "train_seconds": state.seconds}  # fmt: skip
        self.history.append(entry)
        if self.report is not None and not final:  # the final result is run()'s return value
            self.report(dict(entry))
        return entry

    def after_epoch(self, state: LoopState) -> bool | None:
        if self.every and state.epoch % self.every == 0 and state.epoch < self.epochs:
            self.run(state)
        return None


def run(
    genotype: Genotype,
    config: ProxyConfig | None = None,
    report: Report | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
):
    """Train ``genotype`` on the proxy task and return its :class:`ProxyResult`.

    Errors in the configuration or the data are raised (they are the user's to fix); an
    exception while training or evaluating ends the trial as ``failed`` with the reason.
    """
    cfg = config or ProxyConfig()
    genotype.validate()
    device = resolve_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    files = proxy_data.prepare(cfg)
    train_set = CocoDetection(
        files.train_annotations, files.images, TrainTransform(cfg.image_size),
        filter_empty=True,
    )  # fmt: skip
    reward_set = CocoDetection(
        files.reward_annotations, files.images, TestTransform(cfg.image_size, 128)
    )
    if len(train_set) < cfg.batch_size:
        raise ValueError(
            f"proxy-train has {len(train_set)} images with boxes, fewer than batch_size "
            f"{cfg.batch_size}; lower batch_size or holdout"
        )
    pin = device.type == "cuda"
    train_loader = build_loader(train_set, cfg.batch_size, train=True, seed=cfg.seed,
                                workers=cfg.workers, pin_memory=pin)  # fmt: skip
    reward_loader = build_loader(reward_set, max(cfg.batch_size // 2, 1), train=False,
                                 workers=cfg.workers, pin_memory=pin)  # fmt: skip

    torch.manual_seed(cfg.seed)
    model = build_retinanet(genotype, cfg.model_config(len(train_set.label_map), genotype.levels))
    result = ProxyResult(
        status="ok",
        seed=cfg.seed,
        config_hash=proxy_data.config_hash(cfg, files),
        **machine(device),
    )
    result.params = parameter_breakdown(model)["total"]
    result.flops = count_flops(model, cfg.image_size)
    trainer = make_trainer(model, cfg.optim_config(), cfg.epochs, len(train_loader),
                           device=device, amp=cfg.amp)  # fmt: skip
    result.precision = precision_name(trainer.amp_dtype)
    scorer = CocoEvaluator(load_ground_truth(files.reward_annotations), reward_set.label_map)
    evaluator = _Evaluator(
        cfg.eval_every, cfg.epochs, lambda: evaluate(model, reward_loader, scorer, device), report
    )
    hooks: list[Hook] = [evaluator]
    if progress is not None:
        hooks.append(_Progress(progress, cfg.epochs, len(train_loader)))
    limit = None
    if cfg.max_train_seconds is not None:
        planned = cfg.epochs * len(train_loader)
        limit = TimeLimit(cfg.max_train_seconds, lambda: evaluator.eval_seconds, planned)
        hooks.append(limit)

    def batches(epoch: int):
        train_loader.sampler.set_epoch(epoch)
        return train_loader

    try:
        state = train(trainer, batches, _loss(device, channels_last=device.type == "cuda"),
                      hooks)  # fmt: skip
        result.status, result.reason = state.status, state.reason
        if limit is not None and limit.fired:
            result.status = "timeout"  # cut short by the safety net: no reward to give
        result.epochs, result.iterations = state.epoch, state.iteration
        result.losses = dict(state.last_losses)
        result.train_seconds = state.seconds - evaluator.eval_seconds
        if state.status == "ok":
            final = evaluator.run(state, final=True)
            for name in METRICS:
                setattr(result, name, float(final[name]))
    except Exception as err:  # a crash of one candidate must not take the search with it
        result.status = "failed"
        result.reason = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}"
    result.eval_seconds = evaluator.eval_seconds
    result.history = evaluator.history
    return result
