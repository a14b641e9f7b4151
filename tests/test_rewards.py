"""Rewards from ledger records and the ranking every export shares (hand-made records)."""

import pytest

from nasfpn.rewards import mean_std, phase, rank, top_search_keys


def rec(trial, key, reward, status="ok", *, step=0, seed=0, phase=None, dup=None):
    record = {"trial_id": trial, "key": key, "reward": reward, "status": status,
              "controller_step": step, "seed": seed, "duplicate_of": dup}  # fmt: skip
    if phase is not None:
        record["phase"] = phase
    return record


def test_mean_std_by_hand() -> None:
    assert mean_std([0.2]) == (0.2, None)
    mean, std = mean_std([0.1, 0.2, 0.3])
    assert mean == pytest.approx(0.2) and std == pytest.approx(0.1)  # sample std (n - 1)
    with pytest.raises(ValueError, match="no reward to average"):
        mean_std([])


def test_phase_defaults_to_search() -> None:
    assert phase({}) == "search" and phase({"phase": "reevaluation"}) == "reevaluation"


def test_rank_averages_runs_and_puts_reevaluated_first() -> None:
    records = [
        rec("t0", "a", 0.30, step=0),
        rec("t1", "b", 0.25, step=1),
        rec("t2", "c", 0.40, step=2),
        rec("dup-3", "a", 0.30, "duplicate", step=3, seed=None, dup="t0"),  # replays, not adds
        rec("t4", "d", 0.0, "diverged", step=4),  # never ok: not ranked
        rec("t5", "e", 0.35, "early_stopped", step=5),  # a shorter schedule: not a reward
        rec("t6", "f", 0.0, "timeout", step=6),  # the machine's, not the architecture's
        rec("r1", "c", 0.20, seed=1, phase="reevaluation", step=2),
        rec("r2", "c", 0.0, "diverged", seed=2, phase="reevaluation", step=2),  # counts: penalty
        rec("r3", "a", 0.26, seed=1, phase="reevaluation", step=0),
        rec("r4", "a", 0.0, "error", seed=2, phase="reevaluation", step=0),  # no reward
    ]
    ranked = rank(records)
    assert [e["key"] for e in ranked] == ["a", "c", "b"]
    a, c, b = ranked
    assert a["rewards"] == [0.30, 0.26] and a["seeds"] == [0, 1] and a["evaluations"] == 2
    assert a["reward_mean"] == a["reward"] == pytest.approx(0.28)
    assert a["reward_std"] == pytest.approx(0.04 / 2**0.5)
    assert (a["samples"], a["trial_id"], a["record"], a["reevaluated"]) == (2, "t0", 1, True)
    # c's lucky 0.40 becomes a mean of 0.2 over three seeds, one of which diverged
    assert c["rewards"] == [0.40, 0.20, 0.0] and c["reward_mean"] == pytest.approx(0.2)
    # b was never re-evaluated: its single 0.25 does not overtake c's re-evaluated 0.2
    assert (b["reward_mean"], b["reward_std"], b["reevaluated"]) == (0.25, None, False)


def test_rank_ties_go_to_the_earlier_controller_step() -> None:
    ranked = rank([rec("t1", "x", 0.2, step=5), rec("t2", "y", 0.2, step=3)])
    assert [e["key"] for e in ranked] == ["y", "x"]


def test_top_search_keys_ignore_reevaluations() -> None:
    records = [rec("t0", "a", 0.3), rec("t1", "b", 0.2, step=1), rec("t2", "c", 0.1, step=2),
               rec("r1", "a", 0.0, seed=1, phase="reevaluation")]  # fmt: skip
    assert top_search_keys(records, 2) == ["a", "b"]  # a's poor re-evaluation does not count
    assert top_search_keys(records, 0) == []


def test_shared_weight_scores_never_average_with_stand_alone_runs() -> None:
    """A one-shot search: samples scored on shared weights, the top two then trained
    stand-alone (one of them diverged). Stand-alone runs rank first, by themselves."""

    def scored(trial, key, reward, step):
        return {**rec(trial, key, reward, step=step, seed=None), "reward_source": "supernet"}

    records = [
        scored("s0", "a", 0.18, 0),
        scored("s1", "b", 0.15, 1),
        scored("s2", "c", 0.12, 2),
        {
            **rec("dup-3", "a", 0.18, "duplicate", step=3, seed=None, dup="s0"),
            "reward_source": "supernet",
        },
        rec("r0", "a", 0.25, seed=0, phase="reevaluation", step=0),
        rec("r1", "b", 0.31, seed=0, phase="reevaluation", step=1),
    ]
    assert top_search_keys(records, 2) == ["a", "b"]  # chosen by score
    ranked = rank(records)
    assert [e["key"] for e in ranked] == ["b", "a", "c"]  # by stand-alone AP, then by score
    b, a, c = ranked
    assert (b["reward"], b["score"], b["reward_source"], b["seeds"]) == (0.31, 0.15, "proxy", [0])
    assert (a["rewards"], a["score"], a["samples"]) == ([0.25], 0.18, 2)
    assert (c["reward"], c["score"], c["reward_source"]) == (0.12, 0.12, "supernet")
    assert a["record"] == 1 and a["measured_record"] == 5  # the sample; the run ranked by
    # an architecture whose stand-alone run diverged keeps its score, behind stand-alone ones
    diverged = [*records[:4], rec("r0", "a", 0.0, "diverged", seed=0, phase="reevaluation")]
    ranked = rank(diverged)
    assert [e["key"] for e in ranked] == ["a", "b", "c"]
    assert ranked[0]["reward_source"] == "proxy" and ranked[0]["rewards"] == [0.0]
