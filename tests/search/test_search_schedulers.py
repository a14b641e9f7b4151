"""The schedulers that choose among unfinished trials pick what Tune's stock ones pick."""

import random
from dataclasses import dataclass

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from nasfpn.search.schedulers import UnfinishedASHAScheduler, UnfinishedFIFOScheduler


@dataclass(eq=False)
class FakeTrial:
    trial_id: str
    status: str = Trial.PENDING


class FakeController:
    """What the schedulers read of Tune's controller: its trials, in Tune's order."""

    def __init__(self) -> None:
        self.trials: list[FakeTrial] = []

    def get_trials(self) -> list[FakeTrial]:
        return self.trials


def _asha_pair():
    kwargs = {"metric": "AP", "mode": "max", "time_attr": "epoch", "max_t": 8,
              "grace_period": 1, "reduction_factor": 2}  # fmt: skip
    return ASHAScheduler(**kwargs), UnfinishedASHAScheduler(**kwargs)


@pytest.mark.parametrize("pair", [lambda: (FIFOScheduler(), UnfinishedFIFOScheduler()),
                                  _asha_pair], ids=["fifo", "asha"])  # fmt: skip
def test_same_choice_as_stock_scheduler(pair):
    """A random life of 600 trials as Tune drives it: added, started, paused, completed, failed
    and queued again for a retry (Tune moves it to the end of its list and adds it again),
    errored for good, removed. At each step both schedulers choose the same trial."""
    stock, ours = pair()
    controller = FakeController()
    rng = random.Random(0)
    made = choices = 0
    for _ in range(6000):
        event = rng.random()
        live = [t for t in controller.trials if t.status not in (Trial.TERMINATED, Trial.ERROR)]
        if event < 0.15 and made < 600:
            trial = FakeTrial(f"t{made}")
            made += 1
            controller.trials.append(trial)
            for scheduler in (stock, ours):
                scheduler.on_trial_add(controller, trial)
        elif live:
            trial = rng.choice(live)
            if event < 0.45 and trial.status in (Trial.PENDING, Trial.PAUSED):
                trial.status = Trial.RUNNING
            elif event < 0.55 and trial.status == Trial.RUNNING:
                trial.status = Trial.PAUSED
            elif event < 0.8 and trial.status == Trial.RUNNING:
                for scheduler in (stock, ours):
                    scheduler.on_trial_complete(controller, trial, {"AP": 0.1, "epoch": 1})
                trial.status = Trial.TERMINATED
            elif event < 0.88 and trial.status == Trial.RUNNING:  # retried: Tune requeues it
                for scheduler in (stock, ours):
                    scheduler.on_trial_error(controller, trial)
                trial.status = Trial.PENDING
                controller.trials.remove(trial)
                controller.trials.append(trial)
                for scheduler in (stock, ours):
                    scheduler.on_trial_add(controller, trial)
            elif event < 0.93:
                for scheduler in (stock, ours):
                    scheduler.on_trial_error(controller, trial)
                trial.status = Trial.ERROR
            elif event < 0.95 and trial.status in (Trial.PENDING, Trial.PAUSED):
                for scheduler in (stock, ours):
                    scheduler.on_trial_remove(controller, trial)
                trial.status = Trial.TERMINATED
            elif event < 0.97:  # stopped with no scheduler hook (the experiment's end)
                trial.status = Trial.TERMINATED
        expected = stock.choose_trial_to_run(controller)
        assert ours.choose_trial_to_run(controller) is expected
        choices += expected is not None
    assert made == 600 and choices > 500  # the walk exercised the choice, not only None
    # the finished trials left the queue: it holds only the unfinished ones
    unfinished = {t.trial_id for t in controller.trials
                  if t.status not in (Trial.TERMINATED, Trial.ERROR)}  # fmt: skip
    assert set(ours._unfinished) == unfinished
