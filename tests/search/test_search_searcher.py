"""The searcher's bookkeeping, driven by hand (no Ray cluster needed)."""

import random

import pytest
from ray.tune.search import Searcher

from nasfpn.controller import RandomSearch, make_algorithm
from nasfpn.search.config import SearchConfig
from nasfpn.search.ledger import Ledger, read_ledger
from nasfpn.search.searcher import NASSearcher
from nasfpn.space import SearchSpace

SPACE = SearchSpace()


class TwoArchitectures(RandomSearch):
    """Proposes architecture A, then B, then A, ... (to make duplicates on purpose)."""

    name = "two"

    def __init__(self, space, seed=0, config=None):
        super().__init__(space, seed, config)
        self.sequences = [space.sample(random.Random(1)), space.sample(random.Random(2))]
        self.i = 0

    def _propose(self):
        self.i += 1
        return self.sequences[(self.i - 1) % 2], {"origin": "random"}

    def _state(self):
        return {**super()._state(), "i": self.i}

    def _load_state(self, state):
        super()._load_state(state)
        self.i = int(state["i"])


def _searcher(tmp_path, algorithm=None, **cfg):
    algorithm = algorithm or make_algorithm("random", SPACE, seed=0)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    return NASSearcher(algorithm, ledger, tmp_path / "controller.pt", SearchConfig(**cfg))


def _ok(ap: float) -> dict:
    return {"final": True, "status": "ok", "reason": "", "AP": ap, "AP50": 2 * ap,
            "params": 10, "losses/loss_cls": 0.5, "node_ip": "127.0.0.1"}  # fmt: skip


def test_out_of_order_completion_fills_the_ledger(tmp_path) -> None:
    s = _searcher(tmp_path, trials=3)
    configs = {t: s.suggest(t) for t in ("t1", "t2", "t3")}
    assert [c["controller_step"] for c in configs.values()] == [0, 1, 2]
    assert s.suggest("t4") == Searcher.FINISHED
    for t, ap in (("t2", 0.2), ("t3", 0.3), ("t1", 0.1)):
        s.on_trial_complete(t, _ok(ap))
    records = read_ledger(tmp_path)
    assert [r["trial_id"] for r in records] == ["t2", "t3", "t1"]
    assert [r["reward"] for r in records] == [0.2, 0.3, 0.1]
    assert records[0]["metrics"]["AP50"] == 0.4 and records[0]["losses"] == {"loss_cls": 0.5}
    assert records[0]["node"] == "127.0.0.1" and records[0]["genotype"] == configs["t2"]["genotype"]
    assert s.finished and not s.algorithm.outstanding


def test_duplicates_are_replayed_not_trained(tmp_path) -> None:
    s = _searcher(tmp_path, algorithm=TwoArchitectures(SPACE), trials=4)
    a, b = s.suggest("t1"), s.suggest("t2")
    s.on_trial_complete("t1", _ok(0.3))
    # A again: replayed at once; B again: held until t2 ends; then the budget is used up
    assert s.suggest("t3") == Searcher.FINISHED
    s.on_trial_complete("t2", _ok(0.5))
    records = read_ledger(tmp_path)
    assert [(r["status"], r["key"], r["reward"]) for r in records] == [
        ("ok", a["key"], 0.3),
        ("duplicate", a["key"], 0.3),
        ("ok", b["key"], 0.5),
        ("duplicate", b["key"], 0.5),
    ]
    assert records[1]["duplicate_of"] == "t1" and records[3]["duplicate_of"] == "t2"
    assert s.algorithm.diagnostics()["feedbacks"] == 4


def test_reevaluate_trains_again_then_replays_the_mean(tmp_path) -> None:
    s = _searcher(
        tmp_path, algorithm=TwoArchitectures(SPACE), trials=5,
        duplicates="reevaluate", max_evaluations=2,
    )  # fmt: skip
    s.suggest("t1"), s.suggest("t2")
    s.on_trial_complete("t1", _ok(0.2))
    s.on_trial_complete("t2", _ok(0.6))
    s.suggest("t3"), s.suggest("t4")  # A and B once more: trained again
    s.on_trial_complete("t3", _ok(0.4))
    s.on_trial_complete("t4", _ok(0.6))
    assert s.suggest("t5") == Searcher.FINISHED  # A a third time: the mean is replayed
    records = read_ledger(tmp_path)
    assert [r["status"] for r in records] == ["ok"] * 4 + ["duplicate"]
    assert records[-1]["reward"] == pytest.approx(0.3)


def test_failures_and_divergence(tmp_path) -> None:
    s = _searcher(tmp_path, trials=4, penalty=-1.0)
    for t in ("t1", "t2", "t3", "t4"):
        s.suggest(t)
    s.on_trial_complete("t1", error=True)
    s.on_trial_complete("t2", {"final": True, "status": "diverged", "reason": "loss is nan",
                               "AP": 0.0, "losses/loss_cls": float("nan")})  # fmt: skip
    s.on_trial_complete("t3", {"final": False, "AP": 0.25, "epoch": 1})  # stopped by ASHA
    s.on_trial_complete("t4", {"final": True, "status": "failed", "reason": "boom", "AP": 0.0})
    records = read_ledger(tmp_path)
    assert [(r["status"], r["reward"]) for r in records] == [
        ("error", -1.0),
        ("diverged", -1.0),
        ("early_stopped", 0.25),
        ("failed", -1.0),
    ]
    assert "Ray retried it" in records[0]["error"] and records[1]["losses"] == {"loss_cls": None}
    diag = s.algorithm.diagnostics()
    assert (diag["feedbacks"], diag["discarded"]) == (2, 2)  # errors teach nothing


def test_resume_feeds_back_records_after_the_state_and_reruns_unfinished(tmp_path) -> None:
    s = _searcher(tmp_path, algorithm=make_algorithm("reinforce", SPACE, seed=3), trials=6)
    steps = [s.suggest(t)["controller_step"] for t in ("t1", "t2", "t3")]
    s.on_trial_complete("t2", _ok(0.2))
    # The driver dies after appending t1's record but before saving the controller state.
    s.ledger.append({**read_ledger(tmp_path)[0], "trial_id": "t1", "controller_step": steps[0]})

    resumed = _searcher(tmp_path, algorithm=make_algorithm("reinforce", SPACE, seed=3), trials=6)
    assert resumed.algorithm.diagnostics()["feedbacks"] == 2  # t2 from the state, t1 replayed
    assert [p.id for p in resumed.pending] == [steps[2]]  # t3 never finished: evaluated first
    assert resumed.suggest("t7")["controller_step"] == steps[2]
    assert resumed.suggest("t8")["controller_step"] == 3  # then new proposals
    assert len(resumed.ledger) == 2


def test_resume_refuses_a_ledger_without_state(tmp_path) -> None:
    Ledger(tmp_path / "ledger.jsonl").append({"trial_id": "x", "status": "ok", "key": "k",
                                              "reward": 0.1, "duplicate_of": None})  # fmt: skip
    with pytest.raises(ValueError, match=r"controller\.pt is missing"):
        _searcher(tmp_path)


def test_ledger_ignores_and_repairs_a_cut_last_line(tmp_path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "b"')
    assert read_ledger(path) == [{"a": 1}, {"a": 2}]
    ledger = Ledger(path)
    ledger.append({"a": 4})
    assert read_ledger(path) == [{"a": 1}, {"a": 2}, {"a": 4}]
    assert read_ledger(tmp_path / "missing.jsonl") == []
