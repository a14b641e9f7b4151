"""The shared weights on Ray: scoring workers that each hold them once, and training as a task.

:class:`ScoringPool` starts ``size`` actors, each loading a finished supernet folder once (a
:class:`~nasfpn.supernet.Scorer`, with its cached backbone features), and keeps every one of
them fed: ``depth`` candidates are queued on each actor, so that an actor starts its next
candidate while the driver records the last. A candidate's result is a dict shaped like a proxy
trial's (``status``, the AP figures, ``eval_seconds``, ``precision``, ``cpu_model``, ``node``,
``reward_source: supernet``), which the search records as it records a trial.

Why a pool beside Tune rather than a Tune trial per candidate (benchmarks/scoring_dispatch.py,
benchmarks/README.md "One-shot scoring dispatch"): on a 2-core machine a Tune trial cost about
0.23 s of a worker slot beyond its work, a pool call 0.03-0.06 s. For a 2-s CPU score that is
8% of the wall time; for a 0.25-s candidate (a GPU's) Tune took 1.8 times as long, and it
varied from run to run. The pool also keeps no per-trial state in the driver (Tune keeps about
50 KB a trial).

:func:`train_remote` trains a supernet folder as a Ray task (on a GPU node of a cluster, say),
writing to a folder the driver sees too (shared storage on a cluster, as for the data).

Imported lazily by its users, so that nothing else loads Ray.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from nasfpn.space import Genotype
from nasfpn.supernet.config import SupernetConfig

SUPERNET = "supernet"  # a record's reward_source for a shared-weight score


class _ScoringWorker:
    """One process holding the shared weights (a Ray actor: see :class:`ScoringPool`)."""

    def __init__(self, folder: str, bn_batches: int | None, threads: int | None,
                 device: str | None) -> None:  # fmt: skip
        from nasfpn.supernet.score import Scorer

        self.scorer = Scorer(folder, bn_batches=bn_batches, threads=threads, device=device)
        self.node = socket.gethostname()

    def ready(self) -> dict[str, Any]:
        return self.scorer.describe()

    def score(self, genotype: dict[str, Any]) -> dict[str, Any]:
        """A candidate's result, shaped like a proxy trial's; an exception ends it ``failed``."""
        start = time.time()
        out: dict[str, Any] = {"final": True, "reward_source": SUPERNET, "node": self.node,
                               "precision": self.scorer.precision,
                               **self.scorer.machine}  # fmt: skip
        try:
            result = self.scorer.score(Genotype.from_dict(genotype))
        except Exception as err:  # the search records it and goes on
            out.update(status="failed", reason=f"{type(err).__name__}: {err}")
        else:
            metrics = result.to_dict()
            for name in ("arch", "key"):
                metrics.pop(name)
            out.update(status="ok", reason="", eval_seconds=metrics.pop("seconds"), **metrics)
        out.update(worker_start=start, worker_end=time.time())
        return out


class ScoringPool:
    """``size`` scoring actors on a finished supernet ``folder`` (the path every node reads).

    ``submit(tag, genotype)`` queues a candidate on the least loaded actor while
    :attr:`free` > 0; ``next()`` waits for any candidate and returns ``(tag, result)``. An actor
    that dies is restarted by Ray up to ``max_failures`` times (its queued candidates retried);
    a candidate that still gets no answer comes back with ``status: error``. ``worker``
    replaces the actor class (one with ``_ScoringWorker``'s constructor and methods:
    benchmarks/search_scale.py scores instantly to measure the driver alone).
    """

    def __init__(
        self,
        folder: str | Path,
        size: int,
        *,
        cpus: float = 1.0,
        gpus: float = 0.0,
        depth: int = 2,
        bn_batches: int | None = None,
        threads: int | None = None,
        device: str | None = None,
        max_failures: int = 2,
        worker: type | None = None,
    ) -> None:
        if size < 1 or depth < 1:
            raise ValueError(f"a scoring pool needs size >= 1 and depth >= 1, not {size}, {depth}")
        folder = str(Path(folder).resolve())
        if threads is None:
            threads = max(1, int(cpus))
        worker = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=max_failures,
                            max_task_retries=max_failures)(worker or _ScoringWorker)  # fmt: skip
        self._start = lambda: worker.remote(folder, bn_batches, threads, device)
        self.actors = [self._start() for _ in range(size)]
        self.replacements_left = max_failures  # actors started anew after Ray gave one up
        self.depth = depth
        self.queued = dict.fromkeys(range(size), 0)  # actor index -> candidates queued on it
        self.inflight: dict[Any, tuple[str, int]] = {}  # object ref -> tag, actor index
        try:
            self.described = ray.get([a.ready.remote() for a in self.actors])[0]
        except ray.exceptions.RayError as err:
            self.close()
            cause = getattr(err, "cause", None) or err
            raise RuntimeError(
                f"a scoring worker could not load the supernet in {folder}: {cause}; check that "
                "the folder is on storage every node of the cluster reads"
            ) from None

    @property
    def free(self) -> int:
        """Candidates that can be queued now."""
        return len(self.actors) * self.depth - len(self.inflight)

    @property
    def busy(self) -> bool:
        return bool(self.inflight)

    def submit(self, tag: str, genotype: Genotype | dict[str, Any]) -> None:
        if isinstance(genotype, Genotype):
            genotype = genotype.to_dict()
        index = min(self.queued, key=self.queued.get)
        ref = self.actors[index].score.remote(genotype)
        self.queued[index] += 1
        self.inflight[ref] = (tag, index)

    def next(self) -> tuple[str, dict[str, Any]]:
        (ref,), _ = ray.wait(list(self.inflight), num_returns=1)
        tag, index = self.inflight.pop(ref)
        self.queued[index] -= 1
        try:
            return tag, ray.get(ref)
        except ray.exceptions.RayError as err:
            reason = f"the scoring worker failed: {type(err).__name__}"
            if isinstance(err, ray.exceptions.RayActorError):
                self._replace(index, reason)
            return tag, {"final": True, "status": "error", "reason": reason,
                         "reward_source": SUPERNET}  # fmt: skip

    def _replace(self, index: int, reason: str) -> None:
        """A fresh actor in place of one Ray gave up restarting (once per dead actor)."""
        try:
            ray.get(self.actors[index].ready.remote(), timeout=60)
            return  # alive (restarted by Ray): only the candidate was lost
        except ray.exceptions.RayError:
            pass
        if self.replacements_left <= 0:
            self.close()
            raise RuntimeError(
                f"scoring workers keep dying ({reason}); see the Ray logs of the nodes "
                "(out of memory?), then resume the search"
            )
        self.replacements_left -= 1
        self.actors[index] = self._start()

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors, self.inflight = [], {}


def _train(cfg: SupernetConfig | None, out: str, resume: bool) -> dict[str, Any]:
    from nasfpn.supernet.train import train_supernet

    return train_supernet(cfg, out, resume=resume).to_dict()


def train_remote(
    cfg: SupernetConfig | None,
    out: str | Path,
    *,
    resume: bool = False,
    cpus: float = 1.0,
    gpus: float = 0.0,
    wait: Callable[[float], None] | None = None,
    every: float = 30.0,
) -> dict[str, Any]:
    """:func:`~nasfpn.supernet.train_supernet` as a Ray task with ``cpus`` and ``gpus``; returns
    its summary as a dict. ``wait(seconds)`` is called every ``every`` seconds while it runs (a
    progress line, say). ``out`` must be a path the task's node writes and the caller reads."""
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_train)
    ref = task.remote(cfg, str(Path(out).resolve()), resume)
    start = time.monotonic()
    while True:
        done, _ = ray.wait([ref], timeout=every)
        if done:
            return ray.get(ref)
        if wait is not None:
            wait(time.monotonic() - start)


def _train_worker(job: dict[str, Any]) -> None:
    """One Ray Train worker of :func:`train_on_ray_train`; rank 0 prints progress lines."""
    from nasfpn import config as config_io
    from nasfpn.supernet.train import progress_printer, train_supernet

    cfg = config_io.from_dict(SupernetConfig, job["config"]) if job["config"] else None
    train_supernet(cfg, job["out"], resume=job["resume"], progress=progress_printer(job["every"]))


def train_on_ray_train(
    cfg: SupernetConfig | None,
    out: str | Path,
    *,
    resume: bool = False,
    workers: int = 2,
    address: str | None = None,
    use_gpu: bool = False,
    cpus_per_worker: float = 1.0,
    every: float = 10.0,
) -> dict[str, Any]:
    """:func:`~nasfpn.supernet.train_supernet` on ``workers`` Ray Train processes (one DDP
    group: several GPUs, or several nodes); returns the summary as a dict. ``out`` must be on
    storage every worker and the caller see. ``cfg`` is None with ``resume``."""
    from nasfpn import config as config_io
    from nasfpn.distributed import fit_on_ray_train
    from nasfpn.supernet.train import SUMMARY

    out = Path(out).resolve()
    job = {"config": config_io.to_dict(cfg) if cfg is not None else None, "out": str(out),
           "resume": resume, "every": every}  # fmt: skip
    fit_on_ray_train(_train_worker, job, out, workers=workers, address=address,
                     use_gpu=use_gpu, cpus_per_worker=cpus_per_worker)  # fmt: skip
    return json.loads((out / SUMMARY).read_text())
