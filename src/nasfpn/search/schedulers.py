"""Ray Tune's FIFO and ASHA schedulers, choosing the next trial among the unfinished ones only.

Tune asks its scheduler for a trial to start at every step of its event loop, and the stock
``FIFOScheduler.choose_trial_to_run`` (which ASHA inherits) walks every trial of the Tune run,
finished ones included, for the first pending one: its cost per step grows with the trials run
(1.3 ms of driver time a trial on average over a 4,000-trial Tune run, benchmarks/README.md,
"Paper-scale driver"). These keep the trials not yet finished in the order Tune added them,
which is the order FIFO walks, and return the same trial as the stock method would.
"""

from __future__ import annotations

from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

_FINISHED = (Trial.TERMINATED, Trial.ERROR)


class _UnfinishedFirst:
    """Mixin for a ``FIFOScheduler`` subclass: the FIFO choice over the unfinished trials.

    A trial joins the queue when Tune adds it (also when Tune queues it again to retry it after
    its worker failed: it then goes to the end, as Tune moves it to the end of its own list) and
    leaves it when it completes, errs or is removed. A finished trial is never pending or
    paused, so the choice is the stock one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unfinished: dict[str, Trial] = {}  # trial id -> trial, in the order added

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        self._unfinished.pop(trial.trial_id, None)
        self._unfinished[trial.trial_id] = trial
        super().on_trial_add(tune_controller, trial)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        self._unfinished.pop(trial.trial_id, None)
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self._unfinished.pop(trial.trial_id, None)
        super().on_trial_error(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self._unfinished.pop(trial.trial_id, None)
        super().on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        finished = [t for t, trial in self._unfinished.items() if trial.status in _FINISHED]
        for trial_id in finished:  # stopped without a hook (the end of the experiment, say)
            del self._unfinished[trial_id]
        for status in (Trial.PENDING, Trial.PAUSED):
            for trial in self._unfinished.values():
                if trial.status == status:
                    return trial
        return None


class UnfinishedFIFOScheduler(_UnfinishedFirst, FIFOScheduler):
    """Tune's ``FIFOScheduler``, its choice among the unfinished trials only."""


class UnfinishedASHAScheduler(_UnfinishedFirst, ASHAScheduler):
    """Tune's ``ASHAScheduler`` (same arguments), its choice among the unfinished trials only."""
