"""The Ray Tune trainable: one proxy trial on a worker."""

from __future__ import annotations

import socket
import time
from typing import Any

from ray import tune

from nasfpn import config as config_io
from nasfpn.proxy_train import ProxyConfig
from nasfpn.proxy_train import run as proxy_run
from nasfpn.search.progress import board_reporter
from nasfpn.space import Genotype


def proxy_trainable(
    config: dict[str, Any], proxy: dict[str, Any], board: Any = None, board_seconds: float = 10.0
) -> None:
    """Train ``config["genotype"]`` with the proxy settings ``proxy`` and the trial's own
    ``config["seed"]``; report to Tune, and where the trial is to ``board`` (a
    :class:`~nasfpn.search.progress.TrialBoard` actor) for the driver's display, at most every
    ``board_seconds``.

    A search trial reports every evaluation (``final: False``) so that ASHA can stop it early; a
    re-evaluation (``config["phase"]``) reports only its end, so that no scheduler cuts it. The
    last report carries the whole result and ``final: True``. Exceptions inside the trial end
    it as ``failed`` (``proxy_train.run`` catches them); errors before training (a bad
    configuration, missing data) are raised so that Tune records the trial as errored.
    """
    worker_start = time.time()  # the trial's compute, as the search-overhead benchmark counts it
    genotype = Genotype.from_dict(config["genotype"])
    cfg = config_io.from_dict(ProxyConfig, {**proxy, "seed": config.get("seed", proxy["seed"])})
    node = socket.gethostname()

    def report(entry: dict[str, Any]) -> None:
        tune.report({**entry, "final": False, "node": node})

    intermediate = config.get("phase", "search") == "search"
    progress = None
    if board is not None:
        trial_id = tune.get_context().get_trial_id()
        progress = board_reporter(
            lambda entry: board.update.remote(trial_id, entry), every=board_seconds
        )
    try:
        result = proxy_run(genotype, cfg, report=report if intermediate else None,
                           progress=progress)  # fmt: skip
    finally:
        if board is not None:
            board.forget.remote(trial_id)
    final = result.to_dict()
    history = final.pop("history")
    tune.report({**final, "epoch": result.epochs, "final": True, "node": node,
                 "evaluations": len(history), "worker_start": worker_start,
                 "worker_end": time.time()})  # fmt: skip
