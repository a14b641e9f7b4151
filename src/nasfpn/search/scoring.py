"""A search's samples scored on shared weights (``reward: supernet``, docs/oneshot.md).

Before the search's samples, the supernet: the folder the configuration names (checked against
the search's space and proxy task), or one the search trains into ``OUT/supernet`` (a Ray task;
a killed search resumes its training there). Then the controller's samples go to a
:class:`~nasfpn.supernet.remote.ScoringPool` instead of Tune trials: the driver asks the
searcher for each sample (:meth:`NASSearcher.suggest_search`), queues it on the pool, and
hands each score back to the searcher as a finished trial, which records it in the ledger
(``reward_source: supernet``) and feeds the controller, exactly as for a proxy trial (duplicates,
the ledger first, the saved state). The re-evaluation of the top architectures by stand-alone
proxy training then runs as Tune trials, as after any search.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasfpn.proxy_train import ProxyConfig
from nasfpn.search.config import SearchConfig
from nasfpn.search.searcher import NASSearcher
from nasfpn.space import SearchSpace

SUPERNET_DIR = "supernet"  # where a search trains its own supernet, inside its folder


def supernet_folder(
    cfg: SearchConfig,
    out: Path,
    space: SearchSpace,
    proxy: ProxyConfig,
    proxy_hash: str,
    log: Callable[[str], None],
) -> Path:
    """The finished supernet folder this search scores on: ``cfg.supernet``, checked, or
    ``out/supernet``, trained (or its training resumed) first."""
    from nasfpn.supernet import check_match
    from nasfpn.supernet.remote import train_remote
    from nasfpn.supernet.train import CONFIG, SUMMARY, TRAIN_LOG

    if cfg.supernet:
        folder = Path(cfg.supernet).resolve()
        summary = check_match(folder, space, proxy, proxy_hash)
        log(f"shared weights: {folder} ({summary['steps']} steps, {summary['precision']})")
        return folder
    folder = out / SUPERNET_DIR
    if not (folder / SUMMARY).is_file():
        resume = (folder / CONFIG).is_file()
        supernet = None if resume else cfg.supernet_config()
        steps = supernet.steps if supernet is not None else "its"
        again = " (resumed)" if resume else ""
        log(f"training the shared weights first: {steps} steps into {folder}{again}; "
            "`nasfpn supernet eval` scores on them too")  # fmt: skip

        def waiting(seconds: float) -> None:
            step = _last_step(folder / TRAIN_LOG)
            where = f"step {step}" if step is not None else "no step logged yet"
            log(f"  shared weights: {where} ({seconds / 60:.1f} min)")

        summary = train_remote(supernet, folder, resume=resume, cpus=cfg.cpus_per_trial,
                               gpus=cfg.gpus_per_trial, wait=waiting,
                               every=cfg.console_every)  # fmt: skip
        log(f"shared weights trained: {summary['status']}, {summary['steps']} steps in "
            f"{summary['seconds'] / 60:.1f} min ({summary['precision']})")  # fmt: skip
    check_match(folder, space, proxy, proxy_hash)  # a diverged training ends here
    return folder


def _last_step(train_log: Path) -> int | None:
    """The step of the training log's last complete line (its tail only: the log of a long
    training grows to megabytes), or None."""
    if not train_log.exists():
        return None
    with train_log.open("rb") as f:
        start = max(f.seek(0, os.SEEK_END) - 4096, 0)
        f.seek(start)
        lines = f.read().split(b"\n")[1 if start else 0 :]  # a cut first line left out
    for line in reversed([line for line in lines if line.strip()]):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError):  # a line being written
            continue
    return None


def score_samples(
    searcher: NASSearcher,
    cfg: SearchConfig,
    folder: Path,
    log: Callable[[str], None],
    worker: type | None = None,
) -> None:
    """Score the controller's samples on the supernet in ``folder`` until every one of
    ``cfg.trials`` is recorded: ``cfg.concurrent`` scoring actors of ``cfg.cpus_per_trial``
    CPUs (and ``gpus_per_trial`` GPUs) each (``worker``: another actor class, see
    :class:`~nasfpn.supernet.remote.ScoringPool`)."""
    from nasfpn.supernet.remote import ScoringPool

    if not (searcher.pending or searcher.issued < cfg.trials):
        return
    start, done = time.monotonic(), len(searcher.ledger)
    pool = ScoringPool(folder, cfg.concurrent, cpus=cfg.cpus_per_trial, gpus=cfg.gpus_per_trial,
                       max_failures=cfg.max_failures, worker=worker)  # fmt: skip
    token = os.urandom(3).hex()  # trial ids unique across resumes
    count = 0
    on_start, searcher.on_start = searcher.on_start, None  # no line per two-second score
    try:
        while True:
            while pool.free:
                trial_id = f"score_{token}_{count:05d}"
                config: dict[str, Any] | None = searcher.suggest_search(trial_id)
                if config is None:
                    break
                count += 1
                pool.submit(trial_id, searcher.live[trial_id][0].genotype)
            if not pool.busy:
                break
            trial_id, result = pool.next()
            searcher.on_trial_complete(trial_id, result)
    finally:
        searcher.on_start = on_start
        pool.close()
        searcher.flush()
    scored = len(searcher.ledger) - done
    minutes = (time.monotonic() - start) / 60
    log(f"scored on shared weights: {scored} records in {minutes:.1f} min "
        f"({scored / max(minutes, 1e-9) * 60:.0f} an hour, {cfg.concurrent} workers)")  # fmt: skip
