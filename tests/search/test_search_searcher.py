"""The searcher's bookkeeping, driven by hand (no Ray cluster needed)."""

import math
import random
import shutil

import pytest
from ray.tune.search import Searcher

from nasfpn.analysis import load_ledger
from nasfpn.controller import RandomSearch, make_algorithm
from nasfpn.search import searcher as searcher_module
from nasfpn.search.config import SearchConfig
from nasfpn.search.export import rank
from nasfpn.search.ledger import Ledger, read_ledger
from nasfpn.search.searcher import NASSearcher
from nasfpn.search.trainable import trial_genotype
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
    """A searcher over a fresh or existing folder; no re-evaluation unless asked for."""
    algorithm = algorithm or make_algorithm("random", SPACE, seed=0)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    cfg = {"reevaluate_top": 0, **cfg}
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
    assert records[0]["node"] == "127.0.0.1" and records[0]["key"] == configs["t2"]["key"]
    assert records[0]["genotype"] == trial_genotype(configs["t2"], SPACE).to_dict()
    assert s.finished and not s.algorithm.outstanding


def test_a_trial_config_is_compact_and_names_its_architecture(tmp_path) -> None:
    # Tune keeps every trial's config in the driver's memory and its checkpoints
    s = _searcher(tmp_path, trials=1)
    config = s.suggest("t1")
    assert set(config) == {"actions", "key", "controller_step", "seed", "phase"}
    proposal = s.live["t1"][0]
    assert config["actions"] == ",".join(map(str, proposal.actions))
    assert trial_genotype(config, SPACE) == proposal.genotype
    other = {**config, "key": "0123456789abcdef"}
    with pytest.raises(ValueError, match=r"decode to architecture .* not 0123456789abcdef"):
        trial_genotype(other, SPACE)


def test_the_whole_result_comes_from_the_board(tmp_path) -> None:
    s = _searcher(tmp_path, trials=3)
    left = {"t1": {**_ok(0.3), "AP50": 0.7, "precision": "bf16"}}
    taken = []
    s.fetch_result = lambda t: (taken.append(t), left.pop(t, None))[1]
    for t in ("t1", "t2", "t3"):
        s.suggest(t)
    tune_result = {"AP": 0.3, "epoch": 2, "final": True, "status": "ok", "on_board": True}
    s.on_trial_complete("t1", tune_result)
    s.on_trial_complete("t2", tune_result)  # its board entry is gone (the board's node died)
    s.on_trial_complete("t3", error=True)
    assert taken == ["t1", "t2", "t3"]  # taken off the board whatever happened
    r1, r2, r3 = read_ledger(tmp_path)
    assert (r1["metrics"]["AP50"], r1["precision"], r1["error"]) == (0.7, "bf16", None)
    assert (r2["status"], r2["reward"], r2["metrics"]) == ("ok", 0.3, {"AP": 0.3})
    assert "lost with the driver's board" in r2["error"] and r3["status"] == "error"


def test_resume_makes_again_a_proposal_the_state_was_saved_before(tmp_path, monkeypatch) -> None:
    # the state is saved at records only: a proposal made after the last save, whose record
    # reached the ledger before the driver died, is proposed again (the same) on resume
    monkeypatch.setattr(searcher_module, "STATE_SECONDS", 0.0)  # save at every record
    s = _searcher(tmp_path, algorithm=make_algorithm("reinforce", SPACE, seed=3), trials=6)
    s.suggest("t1")
    s.on_trial_complete("t1", _ok(0.2))  # saved here
    configs = [s.suggest(t) for t in ("t2", "t3", "t4")]
    s.on_trial_complete("t3", _ok(0.4))  # saved here, with t2 and t4 outstanding
    fifth = s.suggest("t5")
    s.ledger.append({**read_ledger(tmp_path)[-1], "trial_id": "t5",
                     "controller_step": fifth["controller_step"], "key": fifth["key"]})  # fmt: skip
    # the driver died before saving the state after t5's record
    resumed = _searcher(tmp_path, algorithm=make_algorithm("reinforce", SPACE, seed=3), trials=6)
    assert resumed.algorithm.diagnostics()["feedbacks"] == 3
    assert [p.id for p in resumed.pending] == [configs[0]["controller_step"],
                                               configs[2]["controller_step"]]  # fmt: skip
    assert resumed.suggest("t6")["key"] == configs[0]["key"]
    assert resumed.suggest("t7")["key"] == configs[2]["key"]
    assert resumed.suggest("t8")["controller_step"] == fifth["controller_step"] + 1


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


def test_resume_feeds_back_records_after_the_state_and_reruns_unfinished(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(searcher_module, "STATE_SECONDS", 0.0)  # save at every record
    s = _searcher(tmp_path, algorithm=make_algorithm("reinforce", SPACE, seed=3), trials=6)
    configs = [s.suggest(t) for t in ("t1", "t2", "t3")]
    steps = [c["controller_step"] for c in configs]
    s.on_trial_complete("t2", _ok(0.2))
    # The driver dies after appending t1's record but before saving the controller state.
    s.ledger.append({**read_ledger(tmp_path)[0], "trial_id": "t1", "controller_step": steps[0],
                     "key": configs[0]["key"]})  # fmt: skip

    resumed = _searcher(tmp_path, algorithm=make_algorithm("reinforce", SPACE, seed=3), trials=6)
    assert resumed.algorithm.diagnostics()["feedbacks"] == 2  # t2 from the state, t1 replayed
    assert [p.id for p in resumed.pending] == [steps[2]]  # t3 never finished: evaluated first
    assert resumed.suggest("t7")["controller_step"] == steps[2]
    assert resumed.suggest("t8")["controller_step"] == 3  # then new proposals
    assert len(resumed.ledger) == 2


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo", "evolution"])
@pytest.mark.parametrize("period", [0.0, math.inf], ids=["saved-each-record", "never-saved"])
def test_a_resumed_controller_is_the_one_that_died(tmp_path, monkeypatch, algorithm, period):
    # Proposals and feedback interleave (three trials in flight, finishing out of order); the
    # state is saved at every record, or only when the search started. Either way the searcher
    # resumed from the folder holds the same controller as the one that died: it learnt from
    # the same records after the same proposals, so it proposes the same next.
    monkeypatch.setattr(searcher_module, "STATE_SECONDS", period)
    # small batches and populations, so that the controller learns within these 14 records
    options = {"population_size": 4, "sample_size": 2} if algorithm == "evolution" else {
        "batch_size": 2}  # fmt: skip

    def make():
        return make_algorithm(algorithm, SPACE, seed=5, **options)

    s = _searcher(tmp_path / "died", algorithm=make(), trials=40)
    live, n = [], 0
    for step in range(14):
        while len(live) < 3:
            n += 1
            live.append(f"t{n}")
            s.suggest(live[-1])
        done = live.pop(step % len(live))
        s.on_trial_complete(done, _ok(random.Random(done).uniform(0.1, 0.5)))
    records = read_ledger(tmp_path / "died")
    assert all(r["controller_proposals"] > r["controller_step"] for r in records)
    assert load_ledger(tmp_path / "died")["controller_proposals"].dtype == "Int64"
    shutil.copytree(tmp_path / "died", tmp_path / "resumed")
    resumed = _searcher(tmp_path / "resumed", algorithm=make(), trials=40)
    assert resumed.algorithm.num_proposals == s.algorithm.num_proposals
    assert sorted(p.id for p in resumed.pending) == sorted(s.live[t][0].id for t in live)
    assert _same(resumed.algorithm.diagnostics(), s.algorithm.diagnostics())
    assert [resumed.algorithm.propose().key for _ in range(6)] == [
        s.algorithm.propose().key for _ in range(6)
    ]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a
    )


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


def test_trials_get_the_proxy_seed_and_reevaluate_gets_new_ones(tmp_path) -> None:
    s = _searcher(tmp_path, algorithm=TwoArchitectures(SPACE), trials=5,
                  duplicates="reevaluate", max_evaluations=2)  # fmt: skip
    a1, b1 = s.suggest("t1"), s.suggest("t2")
    assert (a1["seed"], b1["seed"], a1["phase"]) == (0, 0, "search")
    a2 = s.suggest("t3")  # A again while A trains: a second evaluation, another seed
    assert a2["key"] == a1["key"] and a2["seed"] == 1
    s.on_trial_complete("t1", error=True)  # A's seed-0 run failed: its seed is free again
    s.on_trial_complete("t3", _ok(0.4))
    assert s.suggest("t4")["seed"] == 1  # B's second evaluation
    assert s.suggest("t5")["seed"] == 0  # A's second evaluation takes the freed seed
    assert [(r["status"], r["seed"]) for r in read_ledger(tmp_path)] == [("error", 0), ("ok", 1)]


def test_timeouts_are_discarded_or_penalised_as_configured(tmp_path) -> None:
    timeout = {"final": True, "status": "timeout", "AP": 0.0,
               "reason": "training ran past its 600 s safety limit"}  # fmt: skip
    for policy, feedbacks in (("discard", 0), ("penalty", 1)):
        folder = tmp_path / policy
        folder.mkdir()
        s = _searcher(folder, trials=1, on_timeout=policy, penalty=-0.5)
        s.suggest("t1")
        s.on_trial_complete("t1", timeout)
        (record,) = read_ledger(folder)
        assert (record["status"], record["reward"]) == ("timeout", -0.5)
        assert "safety limit" in record["error"]
        diag = s.algorithm.diagnostics()
        assert (diag["feedbacks"], diag["discarded"]) == (feedbacks, 1 - feedbacks)


def _finish_search(s, rewards: dict[str, float]) -> list[dict]:
    configs = {t: s.suggest(t) for t in rewards}
    for t, ap in rewards.items():
        s.on_trial_complete(t, _ok(ap))
    return configs


def test_the_search_ends_by_reevaluating_its_top_k(tmp_path) -> None:
    s = _searcher(tmp_path, trials=3, reevaluate_top=2, reevaluate_seeds=2)
    configs = {t: s.suggest(t) for t in ("t1", "t2", "t3")}
    assert s.suggest("t4") is None  # trials still run: the ranking is not known yet
    for t, ap in (("t1", 0.1), ("t2", 0.3), ("t3", 0.2)):
        s.on_trial_complete(t, _ok(ap))
    assert not s.finished
    jobs = {t: s.suggest(t) for t in ("r1", "r2", "r3", "r4")}
    assert s.suggest("r5") == Searcher.FINISHED
    # the top 2 by search reward (t2, then t3), seeds 1 and 2 each
    assert [(j["key"], j["seed"], j["phase"]) for j in jobs.values()] == [
        (configs["t2"]["key"], 1, "reevaluation"), (configs["t2"]["key"], 2, "reevaluation"),
        (configs["t3"]["key"], 1, "reevaluation"), (configs["t3"]["key"], 2, "reevaluation"),
    ]  # fmt: skip
    diag = s.algorithm.diagnostics()
    for t, ap in (("r1", 0.1), ("r2", 0.14), ("r3", 0.22), ("r4", 0.18)):
        s.on_trial_complete(t, _ok(ap))
    assert s.finished and s.algorithm.diagnostics() == diag  # the controller learnt nothing
    records = read_ledger(tmp_path)
    extra = records[3:]
    assert [r["phase"] for r in records] == ["search"] * 3 + ["reevaluation"] * 4
    assert [r["reevaluation_of"] for r in extra] == ["t2", "t2", "t3", "t3"]
    assert [r["controller_step"] for r in extra] == [1, 1, 2, 2]
    ranked = rank(records)
    # t2's architecture drew a lucky 0.3 once; its mean over three seeds is 0.18, t3's 0.2
    assert [e["trial_id"] for e in ranked] == ["t3", "t2", "t1"]
    assert ranked[0]["rewards"] == [0.2, 0.22, 0.18] and ranked[0]["seeds"] == [0, 1, 2]
    assert ranked[0]["reward_mean"] == pytest.approx(0.2) and ranked[0]["evaluations"] == 3
    assert ranked[0]["reward_std"] == pytest.approx(0.02)
    assert ranked[2]["reevaluated"] is False and ranked[2]["reward_std"] is None


def test_reevaluation_resumes_from_the_ledger(tmp_path) -> None:
    s = _searcher(tmp_path, trials=2, reevaluate_top=2, reevaluate_seeds=1)
    _finish_search(s, {"t1": 0.3, "t2": 0.2})
    first = s.suggest("r1")
    s.suggest("r2")
    s.on_trial_complete("r1", _ok(0.25))
    # the driver dies with r2 running; a new one derives the same plan, less what is done
    resumed = _searcher(tmp_path, trials=2, reevaluate_top=2, reevaluate_seeds=1)
    assert not resumed.finished
    job = resumed.suggest("r3")
    assert (job["key"], job["seed"]) != (first["key"], first["seed"])
    assert job["seed"] == 1 and resumed.suggest("r4") == Searcher.FINISHED
    resumed.on_trial_complete("r3", _ok(0.15))
    assert resumed.finished
    again = _searcher(tmp_path, trials=2, reevaluate_top=2, reevaluate_seeds=1)
    assert again.finished and again.suggest("x") == Searcher.FINISHED


def test_a_reevaluation_without_a_reward_runs_again_on_resume(tmp_path) -> None:
    """An errored or failed re-evaluation measured the machine: the next resume plans it
    again with its own seed. A diverged one is a result of training, done like an ok one."""
    settings = {"trials": 2, "reevaluate_top": 2, "reevaluate_seeds": 2, "penalty": -1.0}
    s = _searcher(tmp_path, **settings)
    configs = _finish_search(s, {"t1": 0.3, "t2": 0.2})
    jobs = {t: s.suggest(t) for t in ("r1", "r2", "r3", "r4")}
    s.on_trial_complete("r1", error=True)  # its worker died after Ray's retries
    s.on_trial_complete("r2", {"final": True, "status": "diverged", "reason": "nan", "AP": 0.0})
    s.on_trial_complete("r3", {"final": True, "status": "failed", "reason": "boom", "AP": 0.0})
    s.on_trial_complete("r4", _ok(0.25))
    assert s.finished  # not in this run: Ray has retried the error already
    assert (jobs["r1"]["key"], jobs["r1"]["seed"]) == (configs["t1"]["key"], 1)
    assert (jobs["r3"]["key"], jobs["r3"]["seed"]) == (configs["t2"]["key"], 1)

    resumed = _searcher(tmp_path, **settings)
    assert resumed.reevaluations_lost == 2 and not resumed.finished
    again = [resumed.suggest(t) for t in ("r5", "r6")]
    assert resumed.suggest("r7") == Searcher.FINISHED
    assert [(j["key"], j["seed"], j["phase"]) for j in again] == [
        (configs["t1"]["key"], 1, "reevaluation"), (configs["t2"]["key"], 1, "reevaluation"),
    ]  # fmt: skip
    resumed.on_trial_complete("r5", _ok(0.28))
    resumed.on_trial_complete("r6", _ok(0.22))
    assert resumed.finished and _searcher(tmp_path, **settings).finished
    records = read_ledger(tmp_path)
    assert [r["status"] for r in records[2:]] == ["error", "diverged", "failed", "ok", "ok", "ok"]
    first = next(e for e in rank(records) if e["key"] == configs["t1"]["key"])
    # the errored run is not among the architecture's runs; the diverged one is, at its penalty
    assert first["rewards"] == [0.3, -1.0, 0.28] and first["seeds"] == [0, 2, 1]


def test_reevaluate_feedback_changes_only_the_replayed_mean(tmp_path) -> None:
    for feedback, replayed in ((False, 0.3), (True, 0.2)):
        folder = tmp_path / str(feedback)
        folder.mkdir()
        s = _searcher(folder, algorithm=TwoArchitectures(SPACE), trials=1, reevaluate_top=1,
                      reevaluate_feedback=feedback)  # fmt: skip
        _finish_search(s, {"t1": 0.3})
        s.suggest("r1")
        s.on_trial_complete("r1", _ok(0.1))
        # resumed with more trials: A is sampled again (a duplicate), B is new
        more = _searcher(folder, algorithm=TwoArchitectures(SPACE), trials=3, reevaluate_top=1,
                         reevaluate_feedback=feedback)  # fmt: skip
        more.suggest("t2")
        assert more.suggest("t3") is None  # B is training
        dup = next(r for r in read_ledger(folder) if r["status"] == "duplicate")
        assert dup["reward"] == pytest.approx(replayed)


def test_config_refuses_bad_reevaluation_and_timeout_settings() -> None:
    with pytest.raises(ValueError, match=r"reevaluate_top=5 is larger than trials=3"):
        SearchConfig(trials=3, reevaluate_top=5)
    with pytest.raises(ValueError, match=r"reevaluate_seeds=-1 must be 0"):
        SearchConfig(reevaluate_seeds=-1)
    with pytest.raises(ValueError, match=r"on_timeout='retry' is unknown"):
        SearchConfig(on_timeout="retry")


def test_search_progress_counts_match_the_ledger(tmp_path) -> None:
    from nasfpn.search.progress import SearchDisplay, SearchProgress

    s = _searcher(tmp_path, algorithm=TwoArchitectures(SPACE), trials=6, penalty=-1.0)
    s.suggest("t1"), s.suggest("t2")
    s.on_trial_complete("t1", _ok(0.3))
    lines = []
    display = SearchDisplay(s, live=False)
    display.log = lambda line, **_: lines.append(line)
    # started over a ledger that has records already (a resumed search)
    s.on_record = progress = SearchProgress(s, 6, None, None, display)
    assert (progress.stats["done"], progress.stats["best"]) == (1, 0.3)
    s.on_trial_complete("t2", {"final": True, "status": "diverged", "reason": "nan", "AP": 0.0})
    assert s.suggest("t3") == Searcher.FINISHED  # A and B again and again: duplicates
    records = read_ledger(tmp_path)
    assert len(records) == 6 and progress.stats["duplicates"] == 4
    stats = progress.stats
    assert stats["done"] == len(records)
    assert stats["duplicates"] == sum(r["status"] == "duplicate" for r in records)
    assert stats["failed"] == 1 and stats["unique"] == len({r["key"] for r in records})
    assert stats["best"] == max(r["reward"] for r in records if r["status"] == "ok")
    assert len(lines) == len(records) - 1 and lines[-1].startswith("[   6/6] duplicate")


def test_tune_settings_apply_for_the_run_and_yield_to_the_environment(monkeypatch) -> None:
    import os

    from nasfpn.search.driver import TUNE_SETTINGS, _tune_settings

    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "60")  # the user's own setting wins
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)
    with _tune_settings():
        assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "60"
        assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1"
    assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in os.environ
    assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "60"
    assert set(TUNE_SETTINGS) == {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "TUNE_GLOBAL_CHECKPOINT_S"}


def test_a_tune_run_gets_at_most_its_share_of_trials(tmp_path) -> None:
    s = _searcher(tmp_path, trials=5)
    s.start_run(2)
    assert [s.suggest(t)["controller_step"] for t in ("t1", "t2")] == [0, 1]
    assert s.suggest("t3") == Searcher.FINISHED  # this Tune run is full
    s.on_trial_complete("t1", _ok(0.1))
    s.on_trial_complete("t2", _ok(0.2))
    s.start_run(2)  # the driver's next Tune run carries on where the last stopped
    assert [s.suggest(t)["controller_step"] for t in ("t4", "t5")] == [2, 3]
    s.start_run(None)
    assert s.suggest("t6")["controller_step"] == 4 and s.suggest("t7") == Searcher.FINISHED


def test_a_cost_aware_search_shows_its_reward_with_the_ap_beside_it(tmp_path) -> None:
    from nasfpn.cost import Objective
    from nasfpn.search.progress import SearchDisplay, SearchProgress

    objective = Objective(metric="flops", target=5.0, form="hard", weight=1.0)
    s = _searcher(tmp_path, trials=2, objective=objective)
    lines = []
    display = SearchDisplay(s, live=False)
    display.log = lambda line, **_: lines.append(line)
    s.on_record = progress = SearchProgress(s, 2, None, None, display)
    s.suggest("t1")
    s.on_trial_complete("t1", {**_ok(0.3), "cost_flops": 10.0})  # twice the target: half
    assert progress.stats["best"] == pytest.approx(0.15)
    assert "reward 0.1500 (AP 0.3000)" in lines[-1] and "best reward 0.1500" in lines[-1]
