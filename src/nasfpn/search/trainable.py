"""The Ray Tune trainable: one proxy trial on a worker.

What Tune holds of a trial stays small, because Tune keeps every trial of an experiment in the
driver's memory and in each experiment checkpoint (benchmarks/README.md, "Paper-scale driver"):
the trial's config names the architecture by its actions (``"1,0,2,..."``), and its reports
carry only what the scheduler reads (AP, epoch). The whole result goes to the driver's
:class:`~nasfpn.search.progress.TrialBoard`, from which the searcher takes it into the ledger.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from ray import tune

from nasfpn import config as config_io
from nasfpn.proxy_train import ProxyConfig
from nasfpn.proxy_train import run as proxy_run
from nasfpn.search.progress import board_reporter
from nasfpn.space import Genotype, SearchSpace


def actions_text(actions: Sequence[int]) -> str:
    """A trial config's form of a genotype's actions: ``"1,0,2,..."``."""
    return ",".join(str(int(a)) for a in actions)


def trial_genotype(config: dict[str, Any], space: SearchSpace) -> Genotype:
    """The genotype a trial config names (its ``actions`` in ``space``), checked against its
    ``key``: a config from another search space fails here, before any training."""
    actions = [int(a) for a in str(config["actions"]).split(",")]
    genotype = space.decode(actions)
    if genotype.key() != config["key"]:
        raise ValueError(
            f"trial config actions {config['actions']!r} decode to architecture "
            f"{genotype.key()} in this search space, not {config['key']}: the trial was "
            "made for another search space; resume the search with its own search_config.yaml"
        )
    return genotype


def proxy_trainable(
    config: dict[str, Any],
    proxy: dict[str, Any],
    space: SearchSpace,
    board: Any = None,
    board_seconds: float = 10.0,
    train: Callable[..., Any] = proxy_run,
    scheduled: bool = True,
    objective: dict[str, Any] | None = None,
) -> None:
    """Train the architecture of ``config`` (see :func:`trial_genotype`) with the proxy
    settings ``proxy`` and the trial's own ``config["seed"]``.

    With a scheduler (``scheduled``, ASHA), a search trial reports every evaluation (``{"AP",
    "epoch", "final": False}``) so that ASHA can stop it early; a re-evaluation
    (``config["phase"]``) reports only its end, so that no scheduler cuts it, and so does every
    trial of a search without a scheduler (nothing else reads the reports). At its end the whole
    result (every AP figure, losses, times, node) goes to ``board`` (a
    :class:`~nasfpn.search.progress.TrialBoard` actor), and the last report says so (``final:
    True, on_board: True``); without a board, or when the board cannot be reached, the last
    report carries the whole result itself. Where the trial is goes to the board at most every
    ``board_seconds``, for the driver's display.

    Exceptions inside the trial end it as ``failed`` (``proxy_train.run`` catches them); errors
    before training (a bad configuration, missing data) are raised so that Tune records the
    trial as errored. When the driver asks (``config["measure_cost"]``: the architecture's
    first training), a trial that ended ``ok`` then measures its cost under ``objective``
    (:func:`nasfpn.cost.measure.architecture_cost`: latency and FLOPs, on this worker) into its
    result; a failed measurement is recorded (``cost_error``), not raised. ``train`` is the
    function that trains one trial,
    :func:`nasfpn.proxy_train.run` or one with its signature and result (the driver
    benchmark's instant trial).
    """
    worker_start = time.time()  # the trial's compute, as the search-overhead benchmark counts it
    genotype = trial_genotype(config, space)
    cfg = config_io.from_dict(ProxyConfig, {**proxy, "seed": config.get("seed", proxy["seed"])})
    node = socket.gethostname()

    def report(entry: dict[str, Any]) -> None:
        tune.report({"AP": entry["AP"], "epoch": entry["epoch"], "final": False})

    intermediate = scheduled and config.get("phase", "search") == "search"
    progress = None
    trial_id = tune.get_context().get_trial_id()
    if board is not None:
        progress = board_reporter(
            lambda entry: board.update.remote(trial_id, entry), every=board_seconds
        )
    try:
        result = train(genotype, cfg, report=report if intermediate else None,
                       progress=progress)  # fmt: skip
    finally:
        if board is not None:
            board.forget.remote(trial_id)
    final = result.to_dict()
    if config.get("measure_cost") and result.status == "ok":
        final.update(_cost(genotype, cfg, objective or {}))
    history = final.pop("history")
    final.update(epoch=result.epochs, final=True, node=node, evaluations=len(history),
                 worker_start=worker_start, worker_end=time.time())  # fmt: skip
    if board is not None and _to_board(board, trial_id, final):
        tune.report({"AP": result.AP, "epoch": result.epochs, "final": True,
                     "status": result.status, "on_board": True})  # fmt: skip
    else:
        tune.report(final)


def _to_board(board: Any, trial_id: str, result: dict[str, Any]) -> bool:
    """Leave ``result`` on the board for the driver; False when the board is unreachable."""
    import ray

    try:
        # waited for, so that the result is there before Tune tells the driver the trial ended
        ray.get(board.finish.remote(trial_id, result), timeout=60)
    except Exception:  # any failure: the result goes through Tune instead
        return False
    return True


def _cost(genotype: Genotype, cfg: ProxyConfig, objective: dict[str, Any]) -> dict[str, Any]:
    """The architecture's cost for the trial's result, or why it could not be measured."""
    from nasfpn.cost import Objective
    from nasfpn.cost.measure import architecture_cost

    try:
        return architecture_cost(genotype, cfg, config_io.from_dict(Objective, objective))
    except Exception as err:  # the trial's training stands; its cost is missing, and why
        return {"cost_error": f"{type(err).__name__}: {err}"}
