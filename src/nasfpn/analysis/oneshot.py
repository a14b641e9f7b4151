"""A one-shot search's own figures: how its shared-weight scores compare with the stand-alone
rewards of the architectures it re-evaluated, and how its supernet trained (docs/oneshot.md).

Reads the search folder (``ledger.jsonl``, ``search_config.yaml``) and the supernet folder it
used (``supernet`` of its configuration, else ``OUT/supernet``): its ``train_log.jsonl``, one
line per training step. No torch and no Ray, like the rest of nasfpn.analysis.
"""

from __future__ import annotations

import math
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from scipy import stats

from nasfpn.analysis.ledger import load_search_config, read_jsonl, top_k
from nasfpn.analysis.plots import Data, _axes, _ledger

TRAIN_LOG = "train_log.jsonl"  # nasfpn.supernet.train's names; a test checks that they agree
SUPERNET_DIR = "supernet"  # where a search trains its own (nasfpn.search.scoring)


def supernet_folder(search: str | PathLike[str]) -> Path | None:
    """The supernet folder a one-shot search scored on, or None for a proxy search."""
    search = Path(search)
    config = load_search_config(search)
    if config.get("reward") != "supernet":
        return None
    return Path(config["supernet"]) if config.get("supernet") else search / SUPERNET_DIR


def load_supernet_log(folder: str | PathLike[str]) -> pd.DataFrame:
    """A supernet's ``train_log.jsonl``: one row per step (``step``, ``loss``, its parts,
    ``lr``, ``seconds``; ``paths``, the keys of the step's genotypes, as lists)."""
    file = Path(folder) / TRAIN_LOG
    if not file.is_file():
        raise FileNotFoundError(
            f"{str(file)!r} does not exist: give a `nasfpn supernet train` folder (a one-shot "
            "search's is OUT/supernet unless its configuration names one)"
        )
    return pd.DataFrame(read_jsonl(file))


def shared_vs_standalone(data: Data) -> dict[str, Any]:
    """The re-evaluated architectures of a one-shot search: ``rows`` (a DataFrame with
    ``key``, ``score``, ``reward`` (the mean stand-alone AP), ``reward_std``, ``evaluations``)
    and Kendall tau-b of score against stand-alone AP (``kendall_tau``, ``kendall_p``, ``n``;
    None with fewer than two, or one side constant)."""
    df = _ledger(data)
    ranked = top_k(df, len(df))
    rows = ranked[(ranked["reward_source"] == "proxy") & ranked["score"].notna()]
    rows = rows[["key", "score", "reward", "reward_std", "evaluations"]].reset_index(drop=True)
    out: dict[str, Any] = {"rows": rows, "n": len(rows), "kendall_tau": None, "kendall_p": None}
    x, y = rows["score"].to_numpy(float), rows["reward"].to_numpy(float)
    if len(rows) >= 2 and len(set(x)) > 1 and len(set(y)) > 1:
        tau = stats.kendalltau(x, y)
        out.update(kendall_tau=float(tau.statistic), kendall_p=float(tau.pvalue))
    return out


def plot_shared_vs_standalone(data: Data, ax: Axes | None = None) -> Axes:
    """Each re-evaluated architecture's shared-weight score against its stand-alone AP (mean
    and std over its runs), with Kendall tau in the title."""
    found, ax = shared_vs_standalone(data), _axes(ax)
    rows = found["rows"]
    ax.set_xlabel("shared-weight score (AP)")
    ax.set_ylabel("stand-alone proxy AP")
    title = "score against stand-alone training"
    if found["kendall_tau"] is not None:
        title += f": tau {found['kendall_tau']:.2f} (n {found['n']})"
    ax.set_title(title, fontsize=9)
    if rows.empty:
        ax.text(0.5, 0.5, "no re-evaluated architecture yet", ha="center", va="center",
                transform=ax.transAxes, color="0.4")  # fmt: skip
        return ax
    ax.errorbar(rows["score"], rows["reward"], yerr=rows["reward_std"].fillna(0.0), fmt="o",
                color="#c44e52", ecolor="0.6", capsize=2, markersize=5)  # fmt: skip
    return ax


def plot_supernet_training(data: pd.DataFrame | str | PathLike[str], ax: Axes | None = None,
                           window: int = 50) -> Axes:  # fmt: skip
    """A supernet's training loss by step (each step's, and a ``window``-step running mean:
    each step trains another path, so single steps scatter widely)."""
    log = data if isinstance(data, pd.DataFrame) else load_supernet_log(data)
    ax = _axes(ax)
    ax.plot(log["step"], log["loss"], color="0.75", linewidth=0.6, label="step")
    mean = log["loss"].rolling(window, min_periods=1).mean()
    ax.plot(log["step"], mean, color="#4c72b0", linewidth=1.5, label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    last = log["loss"].iloc[-1] if len(log) else math.nan
    ax.set_title(f"shared weights: {len(log)} steps, last loss {last:.3f}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return ax
