"""Run a fidelity study: every architecture of a reference set trained with the proxy and with
the retrain recipe, as independent Ray tasks (docs/fidelity.md).

The output folder:

    fidelity_config.yaml   the resolved study configuration (proxy.yaml, retrain.yaml: theirs)
    genotypes.json         the reference set, fixed when the study starts
    fidelity.jsonl         one record per finished job, appended and fsynced by this driver
    retrain/<key>/         each retraining's run folder (checkpoints, metrics.json)
    fidelity.json, .png    the correlations and their figure, written at the end
    ray.log                what Ray prints on the driver, when the caller sends it there
                           (``ray_output``: the command line does, unless --verbose)

A study killed at any point resumes with ``resume=True``: jobs with a record are not run again
(one whose worker died after Ray's retries, status ``error``, is), and a retraining cut short
continues from its last checkpoint. ``reuse_from`` takes the finished jobs of an earlier study
with the same configuration instead of running them (a new proxy against the same retraining).

With ``supernet`` (a finished `nasfpn supernet train` folder), each architecture also gets a
``supernet`` job: its score on those shared weights, computed in this process before the Ray
jobs (a second or two each, the weights loaded once), so that ``--reuse`` of an earlier study's
proxy runs and retrainings measures the shared weights' fidelity in minutes.
"""

from __future__ import annotations

import json
import random
import socket
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from nasfpn import config as config_io
from nasfpn.analysis.fidelity import (
    FIDELITY_FILE,
    FIGURE_FILE,
    REFERENCE_FILE,
    SUMMARY_FILE,
    load_reference,
    plot_fidelity,
    summarize,
)
from nasfpn.fidelity.config import FidelityConfig, load_fidelity_config
from nasfpn.proxy_train import ProxyConfig
from nasfpn.proxy_train import data as proxy_data
from nasfpn.retrain import RetrainConfig
from nasfpn.retrain import data as retrain_data
from nasfpn.search.ledger import Ledger
from nasfpn.space import NASFPN, Genotype, SearchSpace

CONFIG_FILE = "fidelity_config.yaml"
RETRAIN_DIR = "retrain"
RAY_LOG = "ray.log"


@dataclass(frozen=True)
class Job:
    kind: str  # proxy | retrain | supernet
    name: str
    key: str
    genotype: dict[str, Any]
    seed: int

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.key}-s{self.seed}"


def reference_set(cfg: FidelityConfig) -> list[dict[str, Any]]:
    """``[{"name", "key", "genotype"}]``: the published cell, ``cfg.genotypes`` random ones
    drawn with ``cfg.seed`` (distinct architectures), ``cfg.include`` and the ``cfg.top`` best of
    ``cfg.from_search``; an architecture listed twice keeps its first name."""
    from nasfpn.model.build import resolve_arch

    chosen: list[tuple[str, Genotype]] = []
    if cfg.published:
        chosen.append(("nasfpn", NASFPN))
    space, rng = SearchSpace(), random.Random(cfg.seed)
    seen = {g.key() for _, g in chosen}
    for i in range(cfg.genotypes):
        for _ in range(1000):
            genotype = space.decode(space.sample(rng))
            if genotype.key() not in seen:
                break
        seen.add(genotype.key())
        chosen.append((f"random-{i}", genotype))
    for arch in cfg.include:
        genotype = resolve_arch(arch)
        if genotype is None:
            raise ValueError(f"include={arch!r}: the study ranks NAS-FPN cells; give a "
                             "genotype (a built-in name or a JSON file), not 'fpn'")  # fmt: skip
        chosen.append((Path(arch).stem, genotype))
    if cfg.from_search is not None:
        chosen += _search_top(Path(cfg.from_search), cfg.top)
    entries, keys = [], set()
    for name, genotype in chosen:
        if genotype.key() not in keys:
            keys.add(genotype.key())
            entries.append({"name": name, "key": genotype.key(), "genotype": genotype.to_dict()})
    return entries


def _search_top(folder: Path, top: int) -> list[tuple[str, Genotype]]:
    from nasfpn.search import read_ledger
    from nasfpn.search.export import rank

    records = read_ledger(folder)
    if not records:
        raise FileNotFoundError(
            f"from_search={str(folder)!r} holds no search ledger; give the --out folder of a "
            "`nasfpn search`"
        )
    ranked = rank(records)[:top]
    return [(f"search-{i}", Genotype.from_dict(e["genotype"])) for i, e in enumerate(ranked, 1)]


def plan(cfg: FidelityConfig, reference: list[dict[str, Any]], proxy_seed: int) -> list[Job]:
    """Every job of the study, the long retrainings first (so that the last job to end is
    a short one), then the proxy runs, one per seed."""
    retrain = [Job("retrain", e["name"], e["key"], e["genotype"], 0) for e in reference]
    proxy = [Job("proxy", e["name"], e["key"], e["genotype"], proxy_seed + s)
             for e in reference for s in range(cfg.seeds)]  # fmt: skip
    shared = []
    if cfg.supernet is not None:
        shared = [Job("supernet", e["name"], e["key"], e["genotype"], 0) for e in reference]
    return shared + retrain + proxy


def run_job(job: Job, proxy: dict[str, Any], retrain: dict[str, Any], out: str) -> dict[str, Any]:
    """One job, on a Ray worker (or in this process): its result as record fields."""
    from nasfpn.proxy_train import run as proxy_run
    from nasfpn.retrain import latest_checkpoint
    from nasfpn.retrain import retrain as retrain_run

    genotype = Genotype.from_dict(job.genotype)
    if job.kind == "proxy":
        cfg = config_io.from_dict(ProxyConfig, {**proxy, "seed": job.seed})
        result = proxy_run(genotype, cfg)
        return {
            "status": result.status, "reason": result.reason, "AP": result.AP,
            "precision": result.precision,
            "cpu_model": result.cpu_model, "gpu_model": result.gpu_model,
            "metrics": {k: getattr(result, k) for k in ("AP", "AP50", "AP75", "iterations",
                        "epochs", "train_seconds", "eval_seconds")},
            "history": [{"epoch": h["epoch"], "AP": h["AP"]} for h in result.history],
        }  # fmt: skip
    cfg = config_io.from_dict(RetrainConfig, retrain)
    folder = Path(out) / RETRAIN_DIR / job.key
    summary = retrain_run(genotype, cfg, folder, resume=latest_checkpoint(folder) is not None,
                          log=lambda *args, **kwargs: None)  # fmt: skip
    final = summary["final"] or {}
    return {
        "status": summary["status"], "reason": summary["reason"], "AP": final.get("AP", 0.0),
        "precision": summary["precision"],
        "cpu_model": summary["cpu_model"], "gpu_model": summary["gpu_model"],
        "metrics": {**{k: final[k] for k in ("AP", "AP50", "AP75") if k in final},
                    "iterations": summary["iteration"], "epochs": summary["epoch"],
                    "train_seconds": summary["train_seconds"],
                    "eval_seconds": summary["eval_seconds"]},
        "history": [{"epoch": h["epoch"], "AP": h["AP"]} for h in summary["history"]],
    }  # fmt: skip


def prepare_out(
    out: Path, cfg: FidelityConfig | None, resume: bool, address: str | None = None
) -> FidelityConfig:
    """Write (new study) or read back (resume) the configuration and the reference set.

    The cluster the study will join by address (``address``, else the configuration's) is
    reached first (nasfpn.ray_setup.check_address): a study that cannot join it ends in one line
    before anything is written.
    """
    from nasfpn.ray_setup import check_address

    cfg_path = out / CONFIG_FILE
    if resume:
        if not cfg_path.is_file():
            raise FileNotFoundError(
                f"{str(out)!r} holds no {CONFIG_FILE}: it is not a fidelity study; give the "
                "--out folder of the study to resume"
            )
        cfg = load_fidelity_config(str(cfg_path))
        check_address(address if address is not None else cfg.address)
        return cfg
    if cfg is None:
        raise ValueError("a new fidelity study needs a configuration")
    if (out / FIDELITY_FILE).exists():
        raise ValueError(f"{str(out)!r} already holds a fidelity study; resume it with --resume "
                         f"{out} or choose a new --out folder")  # fmt: skip
    reference = reference_set(cfg)
    check_address(address if address is not None else cfg.address)
    out.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, cfg_path)
    (out / REFERENCE_FILE).write_text(json.dumps({"genotypes": reference}, indent=2) + "\n")
    return cfg


def _resolved(cfg: FidelityConfig, out: Path) -> tuple[ProxyConfig, RetrainConfig]:
    """Both configurations with absolute data paths, the data made here once (workers may run
    on other nodes: put the data and the output folder on storage every node sees)."""
    proxy = proxy_data.with_split_files(cfg.proxy_config())
    retrain = cfg.retrain_config()
    found = retrain_data.resolve_files(retrain.data)
    data = replace(retrain.data, train_annotations=str(found.train_annotations.resolve()),
                   train_images=str(found.train_images.resolve()),
                   val_annotations=str(found.val_annotations.resolve()),
                   val_images=str(found.val_images.resolve()))  # fmt: skip
    retrain = replace(retrain, data=data)
    config_io.save(proxy, out / "proxy.yaml")
    config_io.save(retrain, out / "retrain.yaml")
    return proxy, retrain


def run_fidelity(
    cfg: FidelityConfig | None,
    out: str | Path,
    resume: bool = False,
    address: str | None = None,
    log=print,
    ray_output: Callable[[Path], AbstractContextManager[Any]] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a study into ``out``; returns :func:`nasfpn.analysis.fidelity.summarize`
    of it (also written to ``fidelity.json``, the figure to ``fidelity.png``).

    ``ray_output(out / "ray.log")`` is entered while Ray runs, to send what Ray prints elsewhere
    than the console: the command line passes :func:`nasfpn.console.library_output_to` (unless
    --verbose), as the search does; None leaves it on the console. ``log`` gets the study's own
    lines meanwhile: ``print`` is bound to the console's stdout for that; any other ``log``
    must write to a stream it holds (the redirection swaps ``sys.stdout`` and ``sys.stderr``
    and points file descriptor 2 at the file).
    """
    start = time.time()
    out = Path(out).resolve()
    if cfg is not None:
        cfg.proxy_config(), cfg.retrain_config()  # refuse a bad key before anything is written
    cfg = prepare_out(out, cfg, resume, address)
    if address is not None:
        cfg = replace(cfg, address=address)
    reference = load_reference(out)
    proxy, retrain = _resolved(cfg, out)
    ledger = Ledger(out / FIDELITY_FILE)
    # identities by the data's content, not its paths: a study copied to another machine, or
    # run on a regenerated dataset, reuses what it finished (proxy_train.data.identity)
    hashes = {"proxy": proxy_data.config_hash(proxy), "retrain": retrain_data.config_hash(retrain)}
    if cfg.supernet is not None:
        hashes["supernet"] = _supernet_hash(cfg)
    done = {r["job"] for r in ledger.records if r["status"] != "error"}
    jobs = [job for job in plan(cfg, reference, proxy.seed) if job.id not in done]
    if cfg.reuse_from is not None:
        for record in reused(jobs, Path(cfg.reuse_from), hashes):
            ledger.append(record)
            done.add(record["job"])
        jobs = [job for job in jobs if job.id not in done]
    scores = " + 1 shared-weight score" if cfg.supernet is not None else ""
    log(f"fidelity: {len(reference)} architectures x ({cfg.seeds} proxy seeds + 1 retraining"
        f"{scores}), "
        f"{len(jobs)} jobs to run ({len(done)} done), {cfg.concurrent} at a time; proxy "
        f"'{cfg.proxy_preset}', retrain '{cfg.retrain_preset}'; writing to {out}",
        flush=True)  # fmt: skip
    shared = [job for job in jobs if job.kind == "supernet"]
    if shared:
        total = len(done) + len(jobs)
        _score_on_supernet(cfg, shared, ledger, log, hashes["supernet"], total=total)
        jobs = [job for job in jobs if job.kind != "supernet"]
    if jobs:
        output = nullcontext()
        if ray_output is not None:
            log(f"Ray's own messages: {out / RAY_LOG} (--verbose shows them here)", flush=True)
            output = ray_output(out / RAY_LOG)
            if log is print:  # inside, print would write to the file: hold the console's stdout
                log = partial(print, file=sys.stdout)
        with output:
            _run_on_ray(cfg, jobs, proxy, retrain, out, ledger, log, hashes,
                        total=len(done) + len(jobs))  # fmt: skip
    summary = summarize(out)
    summary["wall_seconds"] = time.time() - start
    summary["job_seconds"] = sum(r["end_time"] - r["start_time"] for r in ledger.records)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    plot_fidelity(summary).savefig(out / FIGURE_FILE, dpi=100)
    return summary


def _supernet_hash(cfg: FidelityConfig) -> str:
    """What a shared-weight score depends on: the supernet's training (its configuration, proxy
    task and steps, by content) and the scoring's BN setting; not the folder's path."""
    from nasfpn.supernet import read_summary
    from nasfpn.supernet.train import load_folder_config

    summary = read_summary(cfg.supernet)  # a missing or unfinished folder: a clear error here
    settings = config_io.to_dict(load_folder_config(cfg.supernet))
    if cfg.supernet_bn_batches is not None:
        settings["bn_batches"] = cfg.supernet_bn_batches
    return config_io.config_hash({"supernet": settings, "steps": summary["steps"],
                                  "proxy_config_hash": summary["proxy_config_hash"]})  # fmt: skip


def _score_on_supernet(
    cfg: FidelityConfig, jobs: list[Job], ledger: Ledger, log, config_hash: str, total: int
) -> None:
    """The ``supernet`` jobs, here: one :class:`~nasfpn.supernet.Scorer` for all of them."""
    from nasfpn.supernet import Scorer

    scorer = Scorer(cfg.supernet, bn_batches=cfg.supernet_bn_batches)
    for job in jobs:
        begun = time.time()
        try:
            result = scorer.score(Genotype.from_dict(job.genotype), job.name)
        except ValueError as err:  # an architecture outside the supernet's space
            fields = {"status": "failed", "reason": str(err), "AP": 0.0, "metrics": {}}
        else:
            fields = {"status": "ok", "reason": "", "AP": result.AP,
                      "metrics": {"AP": result.AP, "AP50": result.AP50, "AP75": result.AP75,
                                  "eval_seconds": result.seconds}}  # fmt: skip
        ledger.append({"job": job.id, "kind": job.kind, "name": job.name, "key": job.key,
                       "seed": job.seed, **fields, "precision": scorer.precision,
                       **scorer.machine, "history": [], "node": socket.gethostname(),
                       "start_time": begun, "end_time": time.time(),
                       "config_hash": config_hash})  # fmt: skip
        log(f"[{len(ledger):>4}/{total}] {fields['status']:<8} {job.kind:<8} {job.name:<12} "
            f"AP {fields['AP']:.4f} (shared weights)", flush=True)  # fmt: skip


def reused(jobs: list[Job], other: Path, hashes: dict[str, str]) -> list[dict[str, Any]]:
    """Records of ``jobs`` that the study in ``other`` already finished ``ok`` with the same
    architecture, seed and configuration (its hash: the settings and the data's content, not
    its paths), marked
    ``reused_from``: a study of a new proxy against the same retraining runs no retraining."""
    file = other / FIDELITY_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"reuse_from={str(other)!r} holds no {FIDELITY_FILE}; give the --out folder of an "
            "earlier `nasfpn fidelity` study"
        )
    finished = {}
    for record in Ledger(file).records:
        if record["status"] == "ok":
            finished[record["job"]] = record
    out = []
    for job in jobs:
        record = finished.get(job.id)
        if record is not None and record.get("config_hash") == hashes[job.kind]:
            out.append({**record, "name": job.name, "reused_from": str(other)})
    return out


def _run_on_ray(cfg, jobs, proxy, retrain, out, ledger, log, hashes, total: int) -> None:
    import ray

    from nasfpn.ray_setup import init_ray

    init_ray(cfg.address, num_cpus=cfg.num_cpus)
    task = ray.remote(num_cpus=cfg.cpus_per_trial, num_gpus=cfg.gpus_per_trial,
                      max_retries=cfg.max_failures)(run_job)  # fmt: skip
    proxy_doc, retrain_doc = config_io.to_dict(proxy), config_io.to_dict(retrain)
    pending, running = list(jobs), {}
    started = time.time()
    took: dict[str, list[float]] = {"proxy": [], "retrain": []}  # seconds of finished jobs
    while pending or running:
        while pending and len(running) < cfg.concurrent:
            job = pending.pop(0)
            running[task.remote(job, proxy_doc, retrain_doc, str(out))] = (job, time.time())
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            job, begun = running.pop(ref)
            result = _outcome(ray, ref, cfg.max_failures)
            record = {
                "job": job.id, "kind": job.kind, "name": job.name, "key": job.key,
                "seed": job.seed, **result, "node": socket.gethostname(),
                "start_time": begun, "end_time": time.time(),
                "config_hash": hashes[job.kind],
            }  # fmt: skip
            ledger.append(record)
            took[job.kind].append(record["end_time"] - begun)
            elapsed = time.time() - started
            left = _time_left(took, [j for j, _ in running.values()] + pending, cfg.concurrent)
            log(f"[{len(ledger):>4}/{total}] {record['status']:<8} {job.kind:<7} "
                f"{job.name:<12} AP {record['AP']:.4f} | {elapsed / 60:.1f} min elapsed, "
                f"~{left / 60:.1f} min left", flush=True)  # fmt: skip


def _time_left(took: dict[str, list[float]], jobs: list[Job], slots: int) -> float:
    """Seconds until the ``jobs`` left have run, at the mean duration of each kind so far
    (a retraining takes minutes where a proxy run takes one)."""
    every = [t for times in took.values() for t in times]
    mean = {kind: sum(t) / len(t) if t else sum(every) / len(every) for kind, t in took.items()}
    return sum(mean[job.kind] for job in jobs) / max(slots, 1)


def _outcome(ray, ref, retries: int) -> dict[str, Any]:
    """A finished task's record fields: its result, or why it has none."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:  # the job itself raised
        reason = f"{type(err.cause).__name__ if err.cause else 'error'}: {err}"[:4000]
        return {"status": "failed", "reason": reason, "AP": 0.0, "precision": None,
                "metrics": {}, "history": []}  # fmt: skip
    except ray.exceptions.RayError as err:  # the worker or its node died, after the retries
        return {"status": "error", "AP": 0.0, "precision": None, "metrics": {}, "history": [],
                "reason": f"the job's worker failed {retries + 1} times: {err}"[:4000]}  # fmt: skip
