"""Proxy fidelity: how well the proxy's ranking of architectures agrees with full training's.

Reads the folder ``nasfpn fidelity`` writes (docs/fidelity.md): ``genotypes.json`` (the
reference set) and ``fidelity.jsonl`` (one record per finished job: a proxy run of one seed, a
retraining, or with ``--supernet`` a score on shared weights, docs/oneshot.md).
:func:`fidelity_table` gives one row per architecture (proxy AP mean and std over seeds,
retrain AP, ranks), :func:`correlations` the rank statistics Vertex AI NAS gates a
search on: Kendall's tau-b with its p-value and a bootstrap 95% interval, Spearman's rho, and
tau between the proxy AP after each epoch and the final retrain AP (how short the proxy could
be). No torch and no Ray: a notebook can follow a running study.
"""

from __future__ import annotations

import json
import math
import statistics
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy import stats

from nasfpn.analysis.ledger import read_jsonl

FIDELITY_FILE = "fidelity.jsonl"
REFERENCE_FILE = "genotypes.json"
SUMMARY_FILE = "fidelity.json"
FIGURE_FILE = "fidelity.png"
PathArg = str | PathLike[str]


def _folder(path: PathArg) -> Path:
    folder = Path(path)
    if not (folder / REFERENCE_FILE).is_file():
        raise FileNotFoundError(
            f"{str(folder)!r} holds no {REFERENCE_FILE}: it is not the --out folder of a "
            "`nasfpn fidelity` study (a search's study is in its fidelity/ folder)"
        )
    return folder


def load_reference(path: PathArg) -> list[dict[str, Any]]:
    """The reference set: ``name``, ``key`` and ``genotype`` of each architecture, in order."""
    return json.loads((_folder(path) / REFERENCE_FILE).read_text())["genotypes"]


def load_fidelity(path: PathArg) -> list[dict[str, Any]]:
    """The study's job records, the latest one per job (a job that failed on a broken worker
    and ran again on resume keeps its last record)."""
    file = _folder(path) / FIDELITY_FILE
    latest: dict[str, dict[str, Any]] = {}
    for record in read_jsonl(file) if file.is_file() else []:  # none until a job has ended
        latest[record["job"]] = record
    return list(latest.values())


def fidelity_table(records: list[dict[str, Any]], reference: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per architecture of ``reference``: ``name``, ``key``, ``proxy_ap`` (mean over
    its ``ok`` proxy runs), ``proxy_std`` (sample std; NaN for one run), ``proxy_runs``,
    ``proxy_by_epoch`` (epoch -> mean proxy AP), ``retrain_ap`` (NaN until its retraining
    ended ``ok``), ``supernet_ap`` (its shared-weight score; NaN in a study without one),
    ``proxy_rank`` and ``retrain_rank`` (1 = best, among the complete rows) and ``complete``
    (proxy and retraining both measured)."""
    rows = []
    for entry in reference:
        mine = [r for r in records if r["key"] == entry["key"] and r["status"] == "ok"]
        proxy = [r for r in mine if r["kind"] == "proxy"]
        retrain = [r for r in mine if r["kind"] == "retrain"]
        shared = [r for r in mine if r["kind"] == "supernet"]
        aps = [float(r["AP"]) for r in proxy]
        by_epoch: dict[int, list[float]] = {}
        for r in proxy:
            for h in r.get("history", []):
                by_epoch.setdefault(int(h["epoch"]), []).append(float(h["AP"]))
        rows.append({
            "name": entry["name"],
            "key": entry["key"],
            "proxy_ap": statistics.fmean(aps) if aps else math.nan,
            "proxy_std": statistics.stdev(aps) if len(aps) > 1 else math.nan,
            "proxy_runs": len(aps),
            "proxy_by_epoch": {e: statistics.fmean(v) for e, v in sorted(by_epoch.items())
                               if len(v) == len(aps)},
            "retrain_ap": float(retrain[-1]["AP"]) if retrain else math.nan,
            "supernet_ap": float(shared[-1]["AP"]) if shared else math.nan,
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=["name", "key", "proxy_ap", "proxy_std", "proxy_runs",
                                        "proxy_by_epoch", "retrain_ap", "supernet_ap"])  # fmt: skip
    table["complete"] = table["proxy_ap"].notna() & table["retrain_ap"].notna()
    done = table[table["complete"]]
    table["proxy_rank"] = done["proxy_ap"].rank(ascending=False, method="min").astype("Int64")
    table["retrain_rank"] = done["retrain_ap"].rank(ascending=False, method="min").astype("Int64")
    return table


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan  # no ranking on one side: tau is undefined
    return float(stats.kendalltau(x, y).statistic)


def correlations(
    table: pd.DataFrame, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """Rank agreement of the complete rows of :func:`fidelity_table`.

    ``kendall_tau`` (tau-b, which handles ties) and ``kendall_p`` (two-sided, scipy's exact test
    for small sets without ties), ``spearman`` and ``spearman_p``, ``tau_ci`` (a percentile
    bootstrap interval at ``level``: architectures resampled with replacement ``resamples``
    times with ``seed``; resamples with no ranking on a side are left out), ``tau_by_epoch``
    (``[{"epoch", "tau"}]``: the mean proxy AP after each epoch against the retrain AP) and
    ``n``, the architectures used. Undefined figures (fewer than 2 complete rows, or a side
    with one value) are None.
    """
    done = table[table["complete"]]
    n = len(done)
    x, y = done["proxy_ap"].to_numpy(float), done["retrain_ap"].to_numpy(float)
    out: dict[str, Any] = {"n": n, "kendall_tau": None, "kendall_p": None, "spearman": None,
                           "spearman_p": None, "tau_ci": None, "tau_by_epoch": []}  # fmt: skip
    tau = _tau(x, y)
    if math.isnan(tau):
        return out
    kendall, spearman = stats.kendalltau(x, y), stats.spearmanr(x, y)
    out.update(kendall_tau=float(kendall.statistic), kendall_p=float(kendall.pvalue),
               spearman=float(spearman.statistic), spearman_p=float(spearman.pvalue))  # fmt: skip
    out["tau_ci"] = _tau_interval(x, y, resamples, seed, level)
    epochs = sorted(set().union(*(d.keys() for d in done["proxy_by_epoch"])))
    for epoch in epochs:
        if all(epoch in d for d in done["proxy_by_epoch"]):
            early = np.array([d[epoch] for d in done["proxy_by_epoch"]], dtype=float)
            value = _tau(early, y)
            out["tau_by_epoch"].append({"epoch": epoch,
                                        "tau": None if math.isnan(value) else value})  # fmt: skip
    return out


def _tau_interval(
    x: np.ndarray, y: np.ndarray, resamples: int, seed: int, level: float
) -> list[float] | None:
    """A percentile bootstrap interval of tau-b: pairs resampled with replacement."""
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(resamples):
        pick = rng.integers(0, len(x), len(x))
        value = _tau(x[pick], y[pick])
        if not math.isnan(value):
            taus.append(value)
    if not taus:
        return None
    low, high = np.quantile(taus, [(1 - level) / 2, (1 + level) / 2])
    return [float(low), float(high)]


def supernet_correlations(
    table: pd.DataFrame, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, Any] | None:
    """How the shared-weight scores of :func:`fidelity_table` rank: against the retrain AP
    (``vs_retrain``) and the proxy AP (``vs_proxy``), each ``{n, kendall_tau, kendall_p,
    tau_ci}`` over the rows with both figures (bootstrap as in :func:`correlations`); None for
    a study without scores."""
    if table["supernet_ap"].isna().all():
        return None
    out: dict[str, Any] = {}
    for side, column in (("vs_retrain", "retrain_ap"), ("vs_proxy", "proxy_ap")):
        done = table[table["supernet_ap"].notna() & table[column].notna()]
        x, y = done["supernet_ap"].to_numpy(float), done[column].to_numpy(float)
        entry: dict[str, Any] = {"n": len(done), "kendall_tau": None, "kendall_p": None,
                                 "tau_ci": None}  # fmt: skip
        if not math.isnan(_tau(x, y)):
            kendall = stats.kendalltau(x, y)
            entry.update(kendall_tau=float(kendall.statistic), kendall_p=float(kendall.pvalue),
                         tau_ci=_tau_interval(x, y, resamples, seed, level))  # fmt: skip
        out[side] = entry
    return out


def summarize(path: PathArg, resamples: int = 2000) -> dict[str, Any]:
    """The study in ``path`` as one JSON-ready object: :func:`correlations`' figures, ``rows``
    (each with ``name``, ``key``, ``proxy_ap``, ``proxy_std``, ``proxy_runs``, ``retrain_ap``,
    ``supernet_ap``, ``proxy_rank``, ``retrain_rank``), ``complete`` (architectures with both
    sides), ``genotypes`` (the reference set's size) and ``supernet``
    (:func:`supernet_correlations`, None without shared-weight scores)."""
    reference = load_reference(path)
    table = fidelity_table(load_fidelity(path), reference)
    out = correlations(table, resamples=resamples)
    rows = []
    for row in table.itertuples(index=False):
        rows.append({
            "name": row.name, "key": row.key,
            "proxy_ap": _num(row.proxy_ap), "proxy_std": _num(row.proxy_std),
            "proxy_runs": int(row.proxy_runs), "retrain_ap": _num(row.retrain_ap),
            "supernet_ap": _num(row.supernet_ap),
            "proxy_rank": None if pd.isna(row.proxy_rank) else int(row.proxy_rank),
            "retrain_rank": None if pd.isna(row.retrain_rank) else int(row.retrain_rank),
        })  # fmt: skip
    return {**out, "genotypes": len(reference), "complete": int(table["complete"].sum()),
            "rows": rows,
            "supernet": supernet_correlations(table, resamples=resamples)}  # fmt: skip


def _num(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def plot_fidelity(path_or_summary: PathArg | dict[str, Any], fig: Figure | None = None) -> Figure:
    """Two panels: proxy AP (mean +- std over seeds) against retrain AP, one point per
    architecture, with tau and rho in the title; and tau by proxy epoch. A study with
    shared-weight scores gets a third: the score against the retrain AP, with its tau."""
    summary = (path_or_summary if isinstance(path_or_summary, dict)
               else summarize(path_or_summary))  # fmt: skip
    shared = summary.get("supernet")
    fig = fig or Figure(figsize=(13.6 if shared else 9.6, 3.8), layout="constrained")
    if shared:
        left, right, third = fig.subplots(1, 3, width_ratios=[1.6, 1, 1.6])
        _plot_shared(third, summary)
    else:
        left, right = fig.subplots(1, 2, width_ratios=[1.6, 1])
    rows = [r for r in summary["rows"] if r["proxy_ap"] is not None and r["retrain_ap"] is not None]
    if rows:
        left.errorbar([r["proxy_ap"] for r in rows], [r["retrain_ap"] for r in rows],
                      xerr=[r["proxy_std"] or 0.0 for r in rows], fmt="o", color="#4c72b0",
                      ecolor="0.6", capsize=2, markersize=5)  # fmt: skip
        for r in rows:
            left.annotate(r["name"], (r["proxy_ap"], r["retrain_ap"]), fontsize=6,
                          xytext=(3, 3), textcoords="offset points")  # fmt: skip
    tau, rho = summary["kendall_tau"], summary["spearman"]
    title = "proxy against retraining"
    if tau is not None:
        title += f": tau {tau:.2f}, rho {rho:.2f} (n {summary['n']})"
    left.set_title(title, fontsize=9)
    left.set_xlabel("proxy AP (mean over seeds)")
    left.set_ylabel("retrain AP")
    by_epoch = [e for e in summary["tau_by_epoch"] if e["tau"] is not None]
    if by_epoch:
        right.plot([e["epoch"] for e in by_epoch], [e["tau"] for e in by_epoch], marker="o",
                   color="#55a868")  # fmt: skip
    right.axhline(0.65, linestyle="--", color="0.6", linewidth=1, label="tau 0.65 (gate)")
    right.set_ylim(-1.05, 1.05)
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("proxy epoch")
    right.set_ylabel("Kendall tau")
    right.set_title("tau by proxy epoch", fontsize=9)
    right.legend(fontsize=7, loc="lower right")
    return fig


def _plot_shared(ax: Any, summary: dict[str, Any]) -> None:
    rows = [r for r in summary["rows"]
            if r.get("supernet_ap") is not None and r["retrain_ap"] is not None]  # fmt: skip
    ax.scatter([r["supernet_ap"] for r in rows], [r["retrain_ap"] for r in rows], s=22,
               color="#c44e52")  # fmt: skip
    title = "shared weights against retraining"
    side = summary["supernet"]["vs_retrain"]
    if side["kendall_tau"] is not None:
        title += f": tau {side['kendall_tau']:.2f} (n {side['n']})"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("shared-weight score (AP)")
    ax.set_ylabel("retrain AP")
