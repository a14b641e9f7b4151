"""Run a search: a Ray Tune experiment whose searcher is the controller (docs/search.md).

The output folder holds everything a search leaves behind:

    search_config.yaml   the resolved search configuration (and proxy.yaml, the proxy task's)
    ledger.jsonl         one record per trial, appended by this driver alone
    controller.pt        the controller's state and the ledger position it reflects
    controller.jsonl     the controller's health figures after each ledger record
    best_genotype.json   the best architecture so far, with provenance; top_k.json
    pareto.json          when costs are measured: the AP-latency and AP-FLOPs Pareto fronts
    tensorboard/         reward, best reward and controller health per controller step
    tune/                Ray Tune's own experiment folder (its experiment state; no per-trial
                         logs: the ledger has every trial, see TUNE_SETTINGS)
    ray.log              what Ray and Tune print on the driver (their banners, warnings); with
                         --verbose it goes to the console instead
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nasfpn import config as config_io
from nasfpn import rewards
from nasfpn.console import library_output_to
from nasfpn.controller import make_algorithm
from nasfpn.proxy_train import data as proxy_data
from nasfpn.search.config import SearchConfig, load_search_config
from nasfpn.search.export import export_pareto, export_results
from nasfpn.search.ledger import LEDGER_FILE, Ledger
from nasfpn.search.progress import (
    RetryNotices,
    SearchDisplay,
    SearchProgress,
    board_results,
    start_board,
)
from nasfpn.search.scoring import score_samples, supernet_folder
from nasfpn.search.searcher import STATE_FILE, NASSearcher

CONFIG_FILE = "search_config.yaml"
PROXY_FILE = "proxy.yaml"
HEALTH_FILE = "controller.jsonl"
RAY_LOG = "ray.log"

# Ray Tune's settings for an experiment of thousands of trials (benchmarks/README.md,
# "Paper-scale driver"); each applies unless the environment sets it already.
TUNE_SETTINGS = {
    # no per-trial result.json, progress.csv or TensorBoard files: the ledger has every trial
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Tune's experiment checkpoint (its trials' state) at most every 5 minutes: a search
    # resumes from the ledger and controller.pt, never from Tune's state ("auto" rewrote the
    # growing state file as often as every few seconds)
    "TUNE_GLOBAL_CHECKPOINT_S": "300",
}


@dataclass
class SearchSummary:
    out: Path
    trials: int  # controller samples recorded (duplicates included)
    best: dict[str, Any] | None
    seconds: float
    reevaluations: int = 0  # extra-seed runs of the top architectures


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
    """Write (new search) or read back (resume) the resolved configuration.

    A cluster to join by address (``address``, or the configuration's) is reached first
    (nasfpn.ray_setup.check_address): a search that cannot join it ends in one line with
    nothing written, no folder made, no saved configuration rewritten. A local Ray instance
    starts later, with its messages going to the folder's ray.log.
    """
    from nasfpn.ray_setup import check_address

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
    check_address(cfg.address)
    out.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, cfg_path)
    return cfg


@contextlib.contextmanager
def _tune_settings() -> Iterator[None]:
    """TUNE_SETTINGS in the environment (Tune reads them when the run starts), then as before."""
    before = {name: os.environ.get(name) for name in TUNE_SETTINGS}
    for name, value in TUNE_SETTINGS.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """The controller's torch work on one thread: its tensors are tiny, and with two threads on
    cores the trials keep busy each step waited on the other thread (a PPO proposal took 91 ms
    instead of 3.9 ms on 2 cores, benchmarks/README.md "Paper-scale driver")."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _survivors_frozen() -> Iterator[Callable[[], None]]:
    """Yields ``freeze``, to call before each Tune run: it collects the garbage and moves what
    is left (the searcher's bookkeeping, Ray's and Tune's modules, what earlier runs left) to
    Python's permanent generation, so that the collector's full passes stop walking it again
    and again. Without it the driver's time in the collector grew from 0.1 to 0.8-1.0 ms a
    trial over 10,000 instant trials (benchmarks/README.md, "Paper-scale driver"). All is
    unfrozen at the end; nothing is frozen when the caller has frozen objects of its own."""
    ours = gc.get_freeze_count() == 0

    def freeze() -> None:
        if ours:
            gc.collect()
            gc.freeze()

    try:
        yield freeze
    finally:
        if ours:
            gc.unfreeze()


def _drop_finished_tune_state(folder: Path) -> None:
    """After a Tune run: remove its experiment state files (its trials are all finished and in
    the ledger; a search resumes from the ledger, never from Tune's state) and the trial
    folders it left empty, so that a long search's tune/ folder does not grow with its trials."""
    if not folder.is_dir():
        return
    for path in [*folder.glob("experiment_state-*.json"), *folder.glob("search_gen_state-*")]:
        path.unlink(missing_ok=True)
    for path in folder.glob("trial_*"):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def run_search(
    cfg: SearchConfig | None,
    out: str | Path,
    resume: bool = False,
    trials: int | None = None,
    address: str | None = None,
    log=print,
    verbose: bool = False,
    train: Callable[..., Any] | None = None,
    score_worker: type | None = None,
) -> SearchSummary:
    """Run (or resume) a search into ``out``; returns where things are and the best result.

    With the default ``log`` (print) the console is the search's own (nasfpn.search.progress):
    a live table on a terminal, plain lines elsewhere, and what Ray and Tune print goes to
    ``out/ray.log`` unless ``verbose``. A caller's own ``log`` gets the plain lines.

    ``train`` replaces :func:`nasfpn.proxy_train.run` in the trials (a function with its
    signature and result): benchmarks/search_scale.py runs the real driver with an instant one;
    ``score_worker`` likewise replaces the scoring actor of a one-shot search
    (:class:`~nasfpn.supernet.remote.ScoringPool`).
    """
    from ray import tune
    from tensorboardX import SummaryWriter

    from nasfpn.search.schedulers import UnfinishedASHAScheduler, UnfinishedFIFOScheduler
    from nasfpn.search.trainable import proxy_trainable

    start = time.time()
    out = Path(out).resolve()
    if cfg is not None:
        cfg.proxy_config()  # refuse a bad proxy key before anything is written
        # and a space whose pyramids the proxy's model cannot build (a backbone without its
        # levels), and a costed model that cannot be built
        from nasfpn.cost.measure import check_objective_model

        check_objective_model(cfg.objective, cfg.proxy_config(), cfg.space())
        if cfg.reward == rewards.SUPERNET and cfg.supernet:  # and shared weights that won't do
            from nasfpn.supernet import check_match

            given = cfg.proxy_config()
            check_match(cfg.supernet, cfg.space(), given, proxy_data.config_hash(given))
    cfg = prepare_out(out, cfg, resume, trials, address)
    space = cfg.space()
    proxy = cfg.proxy_config()
    # Make the dataset and the proxy split here, once, before any worker needs them; workers
    # get absolute paths (on a cluster, put the data on storage every node sees).
    proxy = proxy_data.with_split_files(proxy)
    config_io.save(proxy, out / PROXY_FILE)
    proxy_hash = proxy_data.config_hash(proxy)  # the data's content, not its paths

    algorithm = make_algorithm(cfg.algorithm, space, seed=cfg.seed, **cfg.algorithm_options)
    ledger = Ledger(out / LEDGER_FILE)
    writer = SummaryWriter(str(out / "tensorboard"), flush_secs=10)
    searcher = NASSearcher(algorithm, ledger, out / STATE_FILE, cfg, proxy_hash, seed=proxy.seed)
    ours = log is print  # the console is ours: live display, libraries' output to a file
    display = SearchDisplay(searcher, live=None if ours else False, every=cfg.console_every)
    if not ours:
        display.log = lambda line, **_: log(line, flush=True)
    # re-evaluations that ended without a reward run again (if still among the top): a record more
    total = cfg.trials + cfg.reevaluations + searcher.reevaluations_lost
    progress = SearchProgress(searcher, total, writer, out / HEALTH_FILE, display)
    searcher.on_record = progress
    searcher.on_start = display.started
    searcher.log = display.log
    oneshot = cfg.reward == rewards.SUPERNET
    plural = "s" if cfg.reevaluate_seeds > 1 else ""
    seeds = (f"{cfg.reevaluate_seeds} stand-alone run{plural}" if oneshot
             else f"{cfg.reevaluate_seeds} more seed{plural}")  # fmt: skip
    reeval = (f", then the top {cfg.reevaluate_top} re-evaluated with {seeds} each"
              if cfg.reevaluations else "")  # fmt: skip
    scored = " scored on shared weights" if oneshot else ""
    display.log(f"search: {cfg.algorithm} over {space.size(ordered=False):.3g} architectures, "
                f"{cfg.trials} trials{scored}{reeval} ({len(ledger)} records done), "
                f"{cfg.concurrent} at a time, proxy '{cfg.proxy_preset}'; "
                f"writing to {out}")  # fmt: skip

    if not searcher.finished:
        quiet = ours and not verbose
        if quiet:
            display.log(f"Ray's own messages: {out / RAY_LOG} (--verbose shows them here)")
        output = library_output_to(out / RAY_LOG) if quiet else nullcontext()
        with output, _tune_settings(), _one_torch_thread(), _survivors_frozen() as freeze:
            init_ray(cfg)
            display.board = start_board()
            searcher.fetch_result = board_results(display.board)
            resources = {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial}
            trainable = tune.with_resources(
                tune.with_parameters(proxy_trainable, proxy=config_io.to_dict(proxy),
                                     space=space, board=display.board,
                                     board_seconds=cfg.progress_seconds, scheduled=cfg.asha,
                                     objective=config_io.to_dict(cfg.objective),
                                     **({} if train is None else {"train": train})),
                resources,
            )  # fmt: skip

            def tune_run() -> None:
                # Tune's FIFO or ASHA, choosing among the unfinished trials (schedulers.py)
                scheduler = UnfinishedFIFOScheduler()
                if cfg.asha:
                    scheduler = UnfinishedASHAScheduler(
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
                        # keep each worker process for the next trial: starting a fresh one (a
                        # Python process importing torch) cost ~10 s a trial, 12% of a 1-minute
                        # trial's slot (benchmarks/README.md, "Search overhead")
                        reuse_actors=True,
                    ),
                    run_config=tune.RunConfig(
                        name="tune",
                        storage_path=str(out),
                        verbose=0,
                        failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
                        callbacks=[RetryNotices(display.log, cfg.max_failures)],
                    ),
                )
                tuner.fit()

            with display:
                if oneshot and (searcher.pending or searcher.issued < cfg.trials):
                    folder = supernet_folder(cfg, out, space, proxy, proxy_hash, display.log)
                    score_samples(searcher, cfg, folder, display.log, worker=score_worker)
                # consecutive Tune runs of at most tune_run_trials trials (SearchConfig)
                runs = 0
                while not searcher.finished:
                    done = len(ledger)
                    runs += 1
                    if runs > 1:
                        size = cfg.tune_run_trials or "remaining"
                        display.log(f"[tune run {runs}] the next {size} trials "
                                    "(tune_run_trials) in a new Tune run", flush=True)  # fmt: skip
                    freeze()  # what the runs before left, and Ray's and Tune's modules
                    searcher.start_run(cfg.tune_run_trials or None)
                    tune_run()
                    searcher.flush()
                    _drop_finished_tune_state(out / "tune")
                    if len(ledger) == done and not searcher.finished:
                        raise RuntimeError(
                            f"a Tune run ended with no new ledger record in {out}, and the "
                            f"search is not finished; see {out / RAY_LOG}"
                        )
    writer.close()
    records = ledger.records
    best = export_results(out, records, space, cfg.top_k, proxy_hash)
    if cfg.costs_measured:
        export_pareto(out, records)
    extra = sum(rewards.phase(r) == rewards.REEVALUATION for r in records)
    return SearchSummary(out, len(ledger) - extra, best, time.time() - start, extra)
