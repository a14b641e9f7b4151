"""What a running search shows and records about itself, beside the ledger.

- :class:`TrialBoard`, a Ray actor of no CPU on the driver's node: each running trial tells it
  where it is (epoch, step, loss) at most every ``BOARD_SECONDS``, for the display, and leaves
  its whole result there at its end, for the ledger. This keeps step-level progress and
  per-trial results out of Tune, which keeps every trial's results in the driver's memory and
  its experiment checkpoints (docs/search.md, "The console" and "Paper-scale driver").
- :class:`SearchProgress`, called by the searcher for every ledger record: the counts, best AP
  and time left, the controller's health line (``controller.jsonl``) and TensorBoard points.
- :class:`SearchDisplay`: on a terminal a live table of the running trials (epoch / step /
  elapsed) under the finished-trial lines, with the finished count, failures, best AP and time
  left; elsewhere one plain line per trial started or finished, and every ``every`` seconds a
  line of where the running trials are (nasfpn.console).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ray.tune import Callback

from nasfpn.console import clock, live_allowed

BOARD_SECONDS = 10.0  # a trial updates the board at most this often (and at its last step)


class TrialBoard:
    """Where each running trial is: ``trial id -> {epoch, epochs, iteration, iterations, loss,
    time}``, and the results of the trials that ended. Run as a Ray actor
    (:func:`start_board`); a trial's entry goes when it ends, its result when the driver takes
    it."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.results: dict[str, dict[str, Any]] = {}

    def finish(self, trial_id: str, result: dict[str, Any]) -> None:
        self.results[trial_id] = result

    def take(self, trial_id: str) -> dict[str, Any] | None:
        """The result a trial left (None if it left none), removed from the board."""
        return self.results.pop(trial_id, None)

    def update(self, trial_id: str, entry: dict[str, Any]) -> None:
        self.entries[trial_id] = entry

    def forget(self, trial_id: str) -> None:
        self.entries.pop(trial_id, None)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return dict(self.entries)


def start_board() -> Any:
    """The board actor of this driver, on the driver's own node (Ray must be initialised):
    a worker node that leaves the cluster takes no finished result with it."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return ray.remote(num_cpus=0)(TrialBoard).options(scheduling_strategy=here).remote()


def board_results(board: Any, timeout: float = 60.0) -> Callable[[str], dict[str, Any] | None]:
    """The searcher's ``fetch_result``: takes a trial's result off ``board``; None (and the
    searcher records what Tune had) when the board cannot be reached."""
    import ray

    def fetch(trial_id: str) -> dict[str, Any] | None:
        try:
            return ray.get(board.take.remote(trial_id), timeout=timeout)
        except Exception:  # a lost board must not stop the search
            return None

    return fetch


def board_reporter(send: Callable[[dict[str, Any]], Any], every: float = BOARD_SECONDS):
    """A ``progress`` callback for :func:`nasfpn.proxy_train.run` that calls ``send`` with the
    trial's position (and the time) at the first step, then at most every ``every`` seconds and
    at the last step. The trainable's ``send`` is a board actor's ``update.remote``: fire and
    forget, a trial never waits on the board."""
    last = [-math.inf]

    def report(entry: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - last[0] >= every or entry["iteration"] >= entry["iterations"]:
            last[0] = now
            send({**entry, "time": time.time()})

    return report


SCORE_LINE_SECONDS = 5.0


class SearchProgress:
    """For each ledger record: counts, best AP, unique architectures and time left, shown by
    ``display``; the controller's health figures to ``health`` (a JSON line per record) and
    TensorBoard points to ``writer``.

    ``total`` counts the re-evaluation trials planned at the end; ``timeouts`` are trials the
    proxy's safety net stopped (status ``timeout``), ``failed`` the others that gave no reward.
    """

    def __init__(
        self, searcher: Any, total: int, writer: Any, health: Path | None, display: SearchDisplay
    ) -> None:
        self.searcher, self.total, self.writer, self.display = searcher, total, writer, display
        self.health = health
        self.start = time.time()
        self.done_at_start = len(searcher.ledger)
        # running counts, updated per record (a scan of the ledger per record grows with it)
        self.counts = {"done": 0, "failed": 0, "timeouts": 0, "duplicates": 0}
        self.best: float | None = None  # of the search's own rewards (shared-weight scores...)
        cfg = getattr(searcher, "cfg", None)
        self.source = getattr(cfg, "reward", "proxy")
        # a cost-aware search's reward is its objective's value, not the AP
        self.cost_aware = getattr(getattr(cfg, "objective", None), "active", False)
        self.reward_name = "reward" if self.cost_aware else "AP"
        self.best_name = "best score" if self.source == "supernet" else f"best {self.reward_name}"
        self.last_line = -math.inf  # time.monotonic() of the last score's line
        self.keys: set[str] = set()
        for record in searcher.ledger.records:
            self._count(record)
        self.stats = self._stats()
        display.summary = self.summary

    def _count(self, record: dict[str, Any]) -> None:
        status = record["status"]
        self.counts["done"] += 1
        self.counts["failed"] += status in ("error", "failed", "diverged")
        self.counts["timeouts"] += status == "timeout"
        self.counts["duplicates"] += status == "duplicate"
        if (
            status in ("ok", "early_stopped")
            and record.get("reward_source", "proxy") == self.source
        ):
            reward = record["reward"]
            self.best = reward if self.best is None else max(self.best, reward)
        self.keys.add(record["key"])

    def _stats(self) -> dict[str, Any]:
        n = self.counts["done"]
        elapsed = time.time() - self.start
        new = n - self.done_at_start
        return {
            **self.counts,
            "best": self.best,
            "unique": len(self.keys),
            "elapsed": elapsed,
            "left": (self.total - n) * elapsed / new if new else float("nan"),
        }

    def _counts(self, s: dict[str, Any], best: str, elapsed: float) -> str:
        """``failed ..., timeouts ..., duplicates ... | best AP ... | unique ... | times``."""
        return (f"failed {s['failed']}, timeouts {s['timeouts']}, duplicates {s['duplicates']} "
                f"| {self.best_name} {best} | unique {s['unique']} | {clock(elapsed)} elapsed, "
                f"~{clock(s['left'])} left")  # fmt: skip

    def summary(self) -> str:
        """The one-line state of the search (the live display's footer)."""
        s = self.stats
        best = f"{s['best']:.4f}" if s["best"] is not None else "-"
        return f"{s['done']}/{self.total} done, {self._counts(s, best, time.time() - self.start)}"

    def __call__(self, record: dict[str, Any]) -> None:
        self._count(record)
        self.stats = s = self._stats()
        running = len(self.searcher.live) + len(self.searcher.reevaluating)
        tag = " (re-evaluation)" if record.get("phase") == "reevaluation" else ""
        best = s["best"] if s["best"] is not None else 0.0
        # shared-weight scores come every second or two: a line at most every SCORE_LINE_SECONDS
        score = record.get("reward_source") == "supernet"
        now = time.monotonic()
        if not score or now - self.last_line >= SCORE_LINE_SECONDS or s["done"] >= self.total:
            self.last_line = now
            name = "score" if score else self.reward_name
            ap = (record.get("metrics") or {}).get("AP")
            if self.cost_aware and not score and ap is not None:
                tag = f" (AP {ap:.4f}){tag}"
            self.display.log(
                f"[{s['done']:>4}/{self.total}] {record['status']:<13} {name} "
                f"{record['reward']:.4f}{tag} | running {running}, "
                f"{self._counts(s, f'{best:.4f}', s['elapsed'])}"
            )
        health = {
            name: float(value)
            for name, value in self.searcher.algorithm.diagnostics().items()
            if isinstance(value, int | float) and math.isfinite(value)
        }
        if self.health is not None:
            # read by nasfpn.analysis (no torch there); a line per ledger record, JSON
            line = {"ledger_records": s["done"], "time": time.time(), **health}
            with open(self.health, "a") as f:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
        if self.writer is not None:
            n = s["done"]
            self.writer.add_scalar("search/reward", record["reward"], n)
            self.writer.add_scalar("search/best_reward", best, n)
            self.writer.add_scalar("search/unique_architectures", s["unique"], n)
            for name, value in health.items():
                self.writer.add_scalar(f"controller/{name}", value, n)


class RetryNotices(Callback):
    """Tune callback: one console line when Ray runs a trial again after its worker failed, and
    when it gives up (the ledger then records the trial as ``error``)."""

    def __init__(self, log: Callable[[str], None], max_failures: int) -> None:
        self.log, self.max_failures = log, max_failures

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log(f"[retry] {_short(trial.trial_id)}: its worker failed; Ray runs it again "
                 f"(failure {trial.num_failures} of at most {self.max_failures})")  # fmt: skip

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log(f"[error] {_short(trial.trial_id)}: its worker failed {trial.num_failures} "
                 "times; Ray gives up on it (the traceback is in ray.log)")  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        # Tune may pickle its callbacks with the experiment; the console stays behind
        return {"log": print, "max_failures": self.max_failures}


def _position(entry: dict[str, Any] | None) -> tuple[str, str, str]:
    """(epoch, step, loss) columns of a board entry; a trial not yet on the board is starting."""
    if entry is None:
        return "starting", "", ""
    return (f"{entry['epoch']}/{entry['epochs']}", f"{entry['iteration']}/{entry['iterations']}",
            f"{entry['loss']:.3f}")  # fmt: skip


class SearchDisplay:
    """The search's console (see the module docstring). Use as a context manager around the
    Tune run; ``log`` prints a line (above the live table on a terminal).

    ``searcher`` gives the running trials (its ``live`` and ``reevaluating`` maps), ``board``
    (a :class:`TrialBoard` actor, or None) where they are; ``stream`` is the console (the
    original stdout, kept while the libraries' output goes to a file).
    """

    def __init__(
        self,
        searcher: Any,
        board: Any = None,
        stream: IO[str] | None = None,
        live: bool | None = None,
        every: float = 60.0,
        poll: float = 2.0,
    ) -> None:
        self.searcher, self.board = searcher, board
        self.stream = stream if stream is not None else sys.stdout
        self.live = live_allowed(self.stream) if live is None else live
        self.every, self.poll = every, poll
        self.summary = lambda: ""  # set by SearchProgress
        self.positions: dict[str, dict[str, Any]] = {}
        self._live = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rows: list[tuple[str, ...]] = []

    # -- lines ---------------------------------------------------------------------------------

    def log(self, line: str, **_: Any) -> None:
        if self._live is not None:
            self._live.console.print(line, highlight=False, markup=False, soft_wrap=True)
        else:
            print(line, file=self.stream, flush=True)

    def started(self, trial_id: str, config: dict[str, Any]) -> None:
        """A trial was handed to Tune (a plain line; the live table shows it by itself)."""
        if self._live is None:
            tag = ", re-evaluation" if config.get("phase") == "reevaluation" else ""
            self.log(f"[start] {_short(trial_id)} {config['key']} (controller step "
                     f"{config['controller_step']}, seed {config['seed']}{tag})")  # fmt: skip

    # -- the running trials --------------------------------------------------------------------

    def running(self) -> list[tuple[str, ...]]:
        """(trial, key, phase, seed, epoch, step, loss, elapsed) of each running trial."""
        now = time.time()
        try:
            search = [(t, p.key, "search", s, start)
                      for t, (p, start, s) in list(self.searcher.live.items())]  # fmt: skip
            again = [(t, job.key, "re-eval", job.seed, start)
                     for t, (job, start) in list(self.searcher.reevaluating.items())]  # fmt: skip
        except RuntimeError:  # the driver thread changed a map while it was copied
            return self._rows
        rows = []
        for trial, key, phase, seed, start in sorted(search + again, key=lambda r: r[4]):
            epoch, step, loss = _position(self.positions.get(trial))
            rows.append((_short(trial), key, phase, str(seed), epoch, step, loss,
                         clock(now - start)))  # fmt: skip
        self._rows = rows
        return rows

    def _refresh_positions(self) -> None:
        if self.board is None:
            return
        import ray

        # a display must never stop a search: on any failure keep the last positions
        with contextlib.suppress(Exception):
            self.positions = ray.get(self.board.snapshot.remote(), timeout=10)

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, header_style="bold")
        for name in ("trial", "architecture", "phase", "seed", "epoch", "step", "loss",
                     "elapsed"):  # fmt: skip
            table.add_column(name, justify="right" if name in ("seed", "loss") else "left")
        for row in self.running():
            table.add_row(*row)
        return Group(table, Text(self.summary(), style="bold"))

    def _plain_line(self) -> None:
        rows = self.running()
        if not rows:
            return
        where = "; ".join(
            f"{trial} epoch {epoch} step {step} ({elapsed})" if step else f"{trial} {epoch}"
            for trial, _, _, _, epoch, step, _, elapsed in rows
        )
        self.log(f"[running {len(rows)}] {where} | {self.summary()}")

    def _loop(self) -> None:
        last_line = time.monotonic()
        while not self._stop.wait(self.poll):
            self._refresh_positions()
            if self._live is None and time.monotonic() - last_line >= self.every:
                last_line = time.monotonic()
                self._plain_line()

    # -- context -------------------------------------------------------------------------------

    def __enter__(self) -> SearchDisplay:
        if self.live:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self, console=Console(file=self.stream), refresh_per_second=2,
                              redirect_stdout=False, redirect_stderr=False)  # fmt: skip
            self._live.start()
        self._thread = threading.Thread(target=self._loop, name="nasfpn-display", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._live is not None:
            self._live.stop()
            self._live = None


def _short(trial_id: str) -> str:
    return f"trial_{trial_id}"
