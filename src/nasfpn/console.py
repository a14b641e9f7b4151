"""What long commands show while they run: live displays on a terminal, plain lines elsewhere.

On a terminal (standard output is a TTY) the search draws a live table and the retraining a
progress bar per epoch, with rich. Anywhere else (CI, a log file, ``nohup``, a pipe) they print
one plain line per event and periodic progress lines instead, which read well in a file.
``NASFPN_PROGRESS=plain`` (or ``live``) overrides the detection.

:func:`library_output_to` keeps the libraries' own chatter (Ray's banners and warnings, anything
written to standard error by C++ code) out of the console and in a file, for the commands whose
console is ours. No torch, no Ray here: callers pass what they measure.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

PROGRESS_ENV = "NASFPN_PROGRESS"


def live_allowed(stream: IO[str] | None = None) -> bool:
    """Whether to draw live displays on ``stream`` (default stdout): it is a terminal, unless
    ``NASFPN_PROGRESS`` says ``plain`` or ``live``."""
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced in ("plain", "live"):
        return forced == "live"
    if forced:
        raise ValueError(f"{PROGRESS_ENV}={forced!r}: expected plain, live or unset (auto)")
    stream = stream if stream is not None else sys.stdout
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False


def clock(seconds: float) -> str:
    """``1h05m``, ``4m07s``; ``?`` for an unknown (NaN) duration."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = max(int(seconds), 0)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


@contextmanager
def library_output_to(path: Path) -> Iterator[None]:
    """Send what libraries print during the block to ``path`` instead of the console.

    Python's ``sys.stdout`` and ``sys.stderr`` (Tune's banners and tables, warnings), the
    handlers of the ``ray`` loggers, and file descriptor 2 (what C++ code logs) all go to the
    file; file descriptor 1 is left alone, so a display holding the original ``sys.stdout``
    object still reaches the terminal. Everything is restored on the way out, before an
    exception propagates, so a traceback reaches the console.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sink = open(path, "a", buffering=1)  # noqa: SIM115 - closed below, after the restore
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fd2 = os.dup(2)
    os.dup2(sink.fileno(), 2)
    saved_streams = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = sink
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger("ray")] + [
        logger
        for name, logger in logging.root.manager.loggerDict.items()
        if name.startswith("ray.") and isinstance(logger, logging.Logger) and logger.handlers
    ]
    saved_handlers = [(lg, lg.handlers[:], lg.propagate) for lg in loggers]
    for logger in loggers:
        logger.handlers = [handler]
        logger.propagate = False
    try:
        yield
    finally:
        for logger, handlers, propagate in saved_handlers:
            logger.handlers, logger.propagate = handlers, propagate
        sys.stdout, sys.stderr = saved_streams
        sink.flush()
        os.dup2(saved_fd2, 2)
        os.close(saved_fd2)
        sink.close()


class EpochProgress:
    """Per-epoch progress of a training run: a rich bar on a terminal, plain lines elsewhere.

    ``step(...)`` is called after every iteration. On a terminal the bar shows the iteration,
    loss, images/s and the epoch's time left, and every finished epoch leaves its line. Off a
    terminal, every ``every`` iterations one line: epoch, iteration, loss, lr, images/s,
    s/iter and the time left of the epoch and of the run. ``log`` lines (evaluations) print
    above the bar.
    """

    def __init__(
        self,
        epochs: int,
        iters_per_epoch: int,
        images_per_iter: int,
        every: int = 50,
        log: Callable[..., Any] = print,
        live: bool | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.epochs, self.iters, self.images = epochs, iters_per_epoch, images_per_iter
        self.every, self._log = max(int(every), 1), log
        self.stream = stream if stream is not None else sys.stdout
        self.live = live_allowed(self.stream) if live is None else live
        self._bar = None
        self._task = None
        self._epoch = -1
        self._mark = (time.perf_counter(), 0)  # (time, iteration) of the last line / rate window
        self._epoch_start = time.perf_counter()
        self._run_start = time.perf_counter()
        self._run_first_iter: int | None = None
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]} img/s"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._bar.start()

    def log(self, line: str) -> None:
        """A line above the bar (or a plain line)."""
        if self._bar is not None:
            self._bar.console.print(line, highlight=False, markup=False)
        else:
            self._log(line)

    def _rate(self, iteration: int) -> tuple[float, float]:
        """(images/s, s/iter) since the last mark; the mark moves to now."""
        now = time.perf_counter()
        then, first = self._mark
        self._mark = (now, iteration)
        done = iteration - first
        per_iter = (now - then) / done if done > 0 else float("nan")
        return (self.images / per_iter if per_iter > 0 else float("nan")), per_iter

    def step(self, epoch: int, iteration: int, loss: float, lr: float) -> None:
        """After an iteration: ``epoch`` counts from 0, ``iteration`` is the run's total."""
        if self._run_first_iter is None:
            self._run_first_iter = iteration - 1
            self._mark = (self._run_start, iteration - 1)
        in_epoch = iteration - epoch * self.iters
        if epoch != self._epoch:
            self._epoch = epoch
            self._epoch_start = time.perf_counter()
            if self._bar is not None:
                self._task = self._bar.add_task(
                    f"epoch {epoch + 1}/{self.epochs}", total=self.iters,
                    completed=in_epoch - 1, loss="-", rate="-",
                )  # fmt: skip
        if self._bar is not None:
            fields = {"loss": f"{loss:.4f}"}
            if in_epoch % max(min(self.every, 10), 1) == 0 or in_epoch == self.iters:
                fields["rate"] = f"{self._rate(iteration)[0]:.1f}"
            self._bar.update(self._task, completed=in_epoch, **fields)
            return
        if iteration % self.every and in_epoch != self.iters:
            return
        rate, per_iter = self._rate(iteration)
        done_iters = iteration - self._run_first_iter
        spent = time.perf_counter() - self._run_start
        run_left = (self.epochs * self.iters - iteration) * spent / max(done_iters, 1)
        epoch_left = (self.iters - in_epoch) * spent / max(done_iters, 1)
        self._log(
            f"epoch {epoch + 1}/{self.epochs} iter {in_epoch}/{self.iters}  loss {loss:.4f}  "
            f"lr {lr:.5f}  {rate:.1f} img/s  {per_iter:.3f} s/iter  left: epoch "
            f"{clock(epoch_left)}, run {clock(run_left)}"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
