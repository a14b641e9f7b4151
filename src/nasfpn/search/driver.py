"""Run a search: a Ray Tune experiment whose searcher is the controller (docs/search.md).

The output folder holds everything a search leaves behind:

    search_config.yaml   the resolved search configuration (and proxy.yaml, the proxy task's)
    ledger.jsonl         one record per trial, appended by this driver alone
    controller.pt        the controller's state and the ledger position it reflects
    controller.jsonl     the controller's health figures after each ledger record
    best_genotype.json   the best architecture so far, with provenance; top_k.json
    tensorboard/         reward, best reward and controller health per controller step
    tune/                Ray Tune's own experiment folder (per-trial logs)
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nasfpn import config as config_io
from nasfpn import rewards
from nasfpn.controller import make_algorithm
from nasfpn.proxy_train import data as proxy_data
from nasfpn.search.config import SearchConfig, load_search_config
from nasfpn.search.export import export_results
from nasfpn.search.ledger import LEDGER_FILE, Ledger
from nasfpn.search.searcher import STATE_FILE, NASSearcher

CONFIG_FILE = "search_config.yaml"
PROXY_FILE = "proxy.yaml"
HEALTH_FILE = "controller.jsonl"


@dataclass
class SearchSummary:
    out: Path
    trials: int  # controller samples recorded (duplicates included)
    best: dict[str, Any] | None
    seconds: float
    reevaluations: int = 0  # extra-seed runs of the top architectures


class Progress:
    """One line per finished trial: counts, best AP, unique architectures, time left.

    ``total`` counts the re-evaluation trials planned at the end; ``timeouts`` are trials the
    proxy's safety net stopped (status ``timeout``), ``failed`` the others that gave no reward.
    """

    def __init__(
        self, searcher: NASSearcher, total: int, writer: Any, health: Path | None, log=print
    ) -> None:
        self.searcher, self.total, self.writer, self.log = searcher, total, writer, log
        self.health = health
        self.start = time.time()
        self.done_at_start = len(searcher.ledger)

    def __call__(self, record: dict[str, Any]) -> None:
        records = self.searcher.ledger.records
        n = len(records)
        failed = sum(r["status"] in ("error", "failed", "diverged") for r in records)
        timeouts = sum(r["status"] == "timeout" for r in records)
        dups = sum(r["status"] == "duplicate" for r in records)
        trained = [r["reward"] for r in records if r["status"] in ("ok", "early_stopped")]
        best = max(trained, default=0.0)
        unique = len({r["key"] for r in records})
        elapsed = time.time() - self.start
        new = n - self.done_at_start
        left = (self.total - n) * elapsed / new if new else float("nan")
        running = len(self.searcher.live) + len(self.searcher.reevaluating)
        tag = " (re-evaluation)" if record.get("phase") == "reevaluation" else ""
        self.log(
            f"[{n:>4}/{self.total}] {record['status']:<13} AP {record['reward']:.4f}{tag} | "
            f"running {running}, failed {failed}, timeouts {timeouts}, duplicates {dups} | "
            f"best AP {best:.4f} | unique {unique} | {_clock(elapsed)} elapsed, "
            f"~{_clock(left)} left",
            flush=True,
        )
        health = {
            name: float(value)
            for name, value in self.searcher.algorithm.diagnostics().items()
            if isinstance(value, int | float) and math.isfinite(value)
        }
        if self.health is not None:
            # read by nasfpn.analysis (no torch there); a line per ledger record, JSON
            line = {"ledger_records": n, "time": time.time(), **health}
            with open(self.health, "a") as f:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
        if self.writer is not None:
            self.writer.add_scalar("search/reward", record["reward"], n)
            self.writer.add_scalar("search/best_reward", best, n)
            self.writer.add_scalar("search/unique_architectures", unique, n)
            for name, value in health.items():
                self.writer.add_scalar(f"controller/{name}", value, n)
            self.writer.flush()


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: not known yet
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else (
        f"{seconds // 60}m{seconds % 60:02d}s")  # fmt: skip


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def init_ray(cfg: SearchConfig) -> None:
    """Join ``cfg.address`` or the cluster of ``ray job submit``, or start a local instance on
    127.0.0.1 with ``cfg.num_cpus`` (nasfpn.ray_setup)."""
    from nasfpn.ray_setup import init_ray as start

    start(cfg.address, num_cpus=cfg.num_cpus, dashboard=cfg.dashboard)


def prepare_out(
    out: Path,
    cfg: SearchConfig | None,
    resume: bool,
    trials: int | None = None,
    address: str | None = None,
) -> SearchConfig:
    """Write (new search) or read back (resume) the resolved configuration."""
    cfg_path = out / CONFIG_FILE
    if resume:
        if not cfg_path.is_file():
            raise FileNotFoundError(
                f"{str(out)!r} holds no {CONFIG_FILE}: it is not a search folder; "
                "give the --out folder of the search to resume"
            )
        cfg = load_search_config(str(cfg_path))
        # a resumed search may ask for more trials (or run on another cluster); nothing else
        if trials is not None:
            cfg = replace(cfg, trials=trials)
        if address is not None:
            cfg = replace(cfg, address=address)
    else:
        if cfg is None:
            raise ValueError("a new search needs a configuration")
        if (out / LEDGER_FILE).exists():
            raise ValueError(
                f"{str(out)!r} already holds a search; resume it with --resume {out} or choose "
                "a new --out folder"
            )
        out.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, cfg_path)
    return cfg


def run_search(
    cfg: SearchConfig | None,
    out: str | Path,
    resume: bool = False,
    trials: int | None = None,
    address: str | None = None,
    log=print,
) -> SearchSummary:
    """Run (or resume) a search into ``out``; returns where things are and the best result."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from tensorboardX import SummaryWriter

    from nasfpn.search.trainable import proxy_trainable

    start = time.time()
    out = Path(out).resolve()
    if cfg is not None:
        cfg.proxy_config()  # refuse a bad proxy key before anything is written
    cfg = prepare_out(out, cfg, resume, trials, address)
    space = cfg.space()
    proxy = cfg.proxy_config()
    # Make the dataset and the proxy split here, once, before any worker needs them; workers
    # get absolute paths (on a cluster, put the data on storage every node sees).
    proxy = proxy_data.with_split_files(proxy)
    config_io.save(proxy, out / PROXY_FILE)
    proxy_hash = config_io.config_hash(proxy)

    algorithm = make_algorithm(cfg.algorithm, space, seed=cfg.seed, **cfg.algorithm_options)
    ledger = Ledger(out / LEDGER_FILE)
    writer = SummaryWriter(str(out / "tensorboard"))
    searcher = NASSearcher(algorithm, ledger, out / STATE_FILE, cfg, proxy_hash, seed=proxy.seed)
    progress = Progress(searcher, cfg.trials + cfg.reevaluations, writer, out / HEALTH_FILE, log)
    searcher.on_record = progress
    searcher.log = log
    seeds = f"{cfg.reevaluate_seeds} more seed{'s' if cfg.reevaluate_seeds > 1 else ''}"
    reeval = (f", then the top {cfg.reevaluate_top} re-evaluated with {seeds} each"
              if cfg.reevaluations else "")  # fmt: skip
    log(f"search: {cfg.algorithm} over {space.size(ordered=False):.3g} architectures, "
        f"{cfg.trials} trials{reeval} ({len(ledger)} records done), {cfg.concurrent} at a "
        f"time, proxy '{cfg.proxy_preset}'; writing to {out}", flush=True)  # fmt: skip

    if not searcher.finished:
        init_ray(cfg)
        resources = {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial}
        trainable = tune.with_resources(
            tune.with_parameters(proxy_trainable, proxy=config_io.to_dict(proxy)), resources
        )
        scheduler = None
        if cfg.asha:
            scheduler = ASHAScheduler(
                metric="AP", mode="max", time_attr="epoch", max_t=proxy.epochs,
                grace_period=cfg.asha_grace_epochs, reduction_factor=cfg.asha_reduction,
            )  # fmt: skip
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=-1,  # the searcher says when it is finished
                max_concurrent_trials=cfg.concurrent,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
                # keep each worker process for the next trial: starting a fresh one (a Python
                # process importing torch) cost ~10 s a trial, 12% of a 1-minute trial's slot
                # (benchmarks/README.md, "Search overhead")
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(out),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
            ),
        )
        tuner.fit()
    writer.close()
    best = export_results(out, ledger.records, space, cfg.top_k, proxy_hash)
    extra = sum(rewards.phase(r) == rewards.REEVALUATION for r in ledger.records)
    return SearchSummary(out, len(ledger) - extra, best, time.time() - start, extra)
