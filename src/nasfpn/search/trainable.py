"""The Ray Tune trainable: one proxy trial on a worker."""

from __future__ import annotations

import socket
import time
from typing import Any

from ray import tune

from nasfpn import config as config_io
from nasfpn.proxy_train import ProxyConfig
from nasfpn.proxy_train import run as proxy_run
from nasfpn.space import Genotype


def proxy_trainable(config: dict[str, Any], proxy: dict[str, Any]) -> None:
    """Train ``config["genotype"]`` with the proxy settings ``proxy`` and the trial's own
    ``config["seed"]``; report to Tune.

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
    result = proxy_run(genotype, cfg, report=report if intermediate else None)
    final = result.to_dict()
    history = final.pop("history")
    tune.report({**final, "epoch": result.epochs, "final": True, "node": node,
                 "evaluations": len(history), "worker_start": worker_start,
                 "worker_end": time.time()})  # fmt: skip
