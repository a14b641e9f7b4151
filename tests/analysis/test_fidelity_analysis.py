"""Fidelity statistics on hand-made study records (no Ray, no training)."""

import json
import math

import pytest

from nasfpn.analysis.fidelity import (
    correlations,
    fidelity_table,
    load_fidelity,
    plot_fidelity,
    summarize,
)

NAMES = (("nasfpn", "a"), ("random-0", "b"), ("random-1", "c"), ("random-2", "d"))
REFERENCE = [{"name": n, "key": k, "genotype": {}} for n, k in NAMES]


def job(kind, key, ap, seed=0, status="ok", history=None):
    return {"job": f"{kind}-{key}-s{seed}", "kind": kind, "key": key, "seed": seed, "AP": ap,
            "status": status, "history": history or [{"epoch": 1, "AP": ap}]}  # fmt: skip


def records(retrain=(0.40, 0.30, 0.20, 0.10), proxy=((0.25, 0.27), (0.20, 0.22), (0.05, 0.07),
                                                      (0.12, 0.10))):  # fmt: skip
    out = []
    for key, ap in zip("abcd", retrain):
        out.append(job("retrain", key, ap))
    for key, aps in zip("abcd", proxy):
        for seed, ap in enumerate(aps):
            # the proxy AP after epoch 1 is half the final one: the same ranking at both epochs
            out.append(job("proxy", key, ap, seed, history=[{"epoch": 1, "AP": ap / 2},
                                                            {"epoch": 2, "AP": ap}]))  # fmt: skip
    return out


def test_table_means_stds_and_ranks() -> None:
    table = fidelity_table(records(), REFERENCE)
    assert table["name"].tolist() == ["nasfpn", "random-0", "random-1", "random-2"]
    assert table["proxy_ap"].tolist() == pytest.approx([0.26, 0.21, 0.06, 0.11])
    assert table["proxy_std"].tolist() == pytest.approx([0.02 / 2**0.5] * 4)
    assert table["proxy_runs"].tolist() == [2, 2, 2, 2]
    assert table["retrain_ap"].tolist() == [0.40, 0.30, 0.20, 0.10]
    assert table["proxy_rank"].tolist() == [1, 2, 4, 3] and table["retrain_rank"].tolist() == [
        1, 2, 3, 4
    ]  # fmt: skip
    assert table["proxy_by_epoch"][0] == pytest.approx({1: 0.13, 2: 0.26})


def test_correlations_by_hand() -> None:
    stats = correlations(fidelity_table(records(), REFERENCE), resamples=500)
    # one discordant pair (c, d) of six: tau = (5 - 1) / 6; rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert stats["kendall_tau"] == pytest.approx(4 / 6)
    assert stats["spearman"] == pytest.approx(0.8)
    assert stats["n"] == 4 and 0 < stats["kendall_p"] <= 1
    low, high = stats["tau_ci"]
    assert -1 <= low <= stats["kendall_tau"] <= high <= 1
    assert stats["tau_by_epoch"] == [{"epoch": 1, "tau": pytest.approx(4 / 6)},
                                     {"epoch": 2, "tau": pytest.approx(4 / 6)}]  # fmt: skip
    assert correlations(fidelity_table(records(), REFERENCE), resamples=500) == stats  # seeded


def test_a_perfect_and_a_reversed_proxy() -> None:
    same = records(proxy=((0.4,), (0.3,), (0.2,), (0.1,)))
    assert correlations(fidelity_table(same, REFERENCE))["kendall_tau"] == pytest.approx(1.0)
    back = records(proxy=((0.1,), (0.2,), (0.3,), (0.4,)))
    stats = correlations(fidelity_table(back, REFERENCE))
    assert stats["kendall_tau"] == pytest.approx(-1.0) and stats["spearman"] == pytest.approx(-1)


def test_incomplete_and_undefined_studies() -> None:
    partial = [r for r in records() if not (r["kind"] == "retrain" and r["key"] in "cd")]
    table = fidelity_table(partial, REFERENCE)
    assert table["complete"].tolist() == [True, True, False, False]
    assert math.isnan(table["retrain_ap"][2]) and table["retrain_rank"].isna().tolist()[2:] == [
        True, True
    ]  # fmt: skip
    stats = correlations(table)
    assert stats["n"] == 2 and stats["kendall_tau"] == pytest.approx(1.0)
    flat = records(retrain=(0.0, 0.0, 0.0, 0.0))  # no ranking on one side: tau undefined
    assert correlations(fidelity_table(flat, REFERENCE))["kendall_tau"] is None
    failed = [job("proxy", "a", 0.0, status="failed")]
    assert fidelity_table(failed, REFERENCE)["proxy_runs"].tolist() == [0, 0, 0, 0]


def test_summary_figure_and_latest_record_per_job(tmp_path) -> None:
    (tmp_path / "genotypes.json").write_text(json.dumps({"genotypes": REFERENCE}))
    lines = [job("retrain", "a", 0.0, status="error"), *records()]  # error, then a retry
    (tmp_path / "fidelity.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert len(load_fidelity(tmp_path)) == 12
    summary = summarize(tmp_path, resamples=200)
    assert summary["kendall_tau"] == pytest.approx(4 / 6) and summary["complete"] == 4
    first = {"name": "nasfpn", "key": "a", "proxy_ap": pytest.approx(0.26), "proxy_runs": 2,
             "proxy_std": pytest.approx(0.02 / 2**0.5), "retrain_ap": 0.40, "proxy_rank": 1,
             "retrain_rank": 1, "supernet_ap": None}  # fmt: skip
    assert summary["rows"][0] == first and summary["supernet"] is None
    json.dumps(summary)  # JSON-ready: no NaN, no numpy types
    fig = plot_fidelity(summary)
    assert len(fig.axes) == 2 and "tau 0.67" in fig.axes[0].get_title()
    with pytest.raises(FileNotFoundError, match="not the --out folder of a `nasfpn fidelity`"):
        summarize(tmp_path / "missing")
