"""Curves of a search, each on one Matplotlib Axes.

Every function takes a ledger DataFrame (:func:`load_ledger`) or a search folder, and an
optional ``ax``; with none it draws on a new ``matplotlib.figure.Figure`` (no pyplot, so it
works without a display and leaves no global state). Each returns the Axes it drew on; in a
notebook ``plot_rewards(df).figure`` shows it. The x axis of every ledger curve is ``record``,
the number of architectures sampled so far, as in the paper's Figure 5.
"""

from __future__ import annotations

import math
from os import PathLike

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nasfpn.analysis.ledger import (
    FAILED,
    LEARNT,
    load_controller,
    load_ledger,
    space_of,
)
from nasfpn.space import GROUPS, SearchSpace

Data = pd.DataFrame | str | PathLike[str]
STATUS_STYLE = {  # marker, colour, label of each ledger status in the reward plot
    "ok": ("o", "#4c72b0", "ok"),
    "early_stopped": ("s", "#8172b2", "early stopped"),
    "duplicate": ("o", "#bbbbbb", "duplicate (replayed)"),
    "diverged": ("v", "#dd8452", "diverged (penalty)"),
    "timeout": ("1", "#937860", "timeout (safety limit)"),
    "failed": ("x", "#c44e52", "failed"),
    "error": ("x", "#8c1c13", "error (discarded)"),
}
PARETO_AXES = {"params": "parameters", "flops": "FLOPs", "latency_ms": "latency (ms)",
               "cost_flops": "FLOPs of the costed model"}  # fmt: skip
# the controller's health figures worth a panel, in the order a report shows them
HEALTH_FIELDS = (
    "unique_fraction", "best_reward", "reward_mean", "baseline", "policy_entropy_per_decision",
    "policy_entropy", "loss", "advantage_std", "approx_kl", "clip_fraction",
    "population_mean_reward", "population_best_reward", "outstanding",
)  # fmt: skip


def _ledger(data: Data) -> pd.DataFrame:
    return data if isinstance(data, pd.DataFrame) else load_ledger(data)


def searched(df: pd.DataFrame) -> pd.DataFrame:
    """The controller's samples: a ledger frame without its re-evaluation runs."""
    return df[df["phase"] != "reevaluation"] if "phase" in df else df


def _axes(ax: Axes | None, size: tuple[float, float] = (6.4, 3.6)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def plot_rewards(data: Data, ax: Axes | None = None, window: int = 10) -> Axes:
    """The reward of every sampled architecture, its moving average and the best so far.

    Points are coloured by status. The moving average (over ``window`` records) runs over the
    rewards the controller learnt from (duplicates replay theirs, errors are discarded); the
    best so far counts trained architectures only (status ok or early_stopped). The extra-seed
    runs of the re-evaluation at the end of a search are drawn as diamonds, outside both.
    """
    if window < 1:
        raise ValueError(f"window={window}: the moving average needs a window of 1 or more")
    data = _ledger(data)
    df, extra, ax = searched(data), data[data["phase"] == "reevaluation"], _axes(ax)
    for status, (marker, color, label) in STATUS_STYLE.items():
        part = df[df["status"] == status]
        if not part.empty:
            ax.scatter(part["record"], part["reward"], marker=marker, color=color, s=18,
                       label=label, zorder=2)  # fmt: skip
    if not extra.empty:
        ax.scatter(extra["record"], extra["reward"], marker="D", color="#55a868", s=18,
                   label="re-evaluation (extra seed)", zorder=2)  # fmt: skip
    learnt = df[df["status"].isin(LEARNT)]
    if not learnt.empty:
        mean = learnt["reward"].rolling(window, min_periods=1).mean()
        ax.plot(learnt["record"], mean, color="black", linewidth=1.5,
                label=f"moving average ({window})")  # fmt: skip
    if df["best_so_far"].notna().any():
        ax.step(df["record"], df["best_so_far"], where="post", color="#55a868", linewidth=1.5,
                label="best so far")  # fmt: skip
    ax.set_xlabel("sampled architectures")
    ax.set_ylabel("reward (proxy AP)")
    ax.set_title("reward per trial")
    ax.legend(fontsize=7, loc="best")
    return ax


def plot_unique(data: Data, ax: Axes | None = None) -> Axes:
    """Unique architectures against all sampled ones (the paper's Figure 5, right).

    The dashed diagonal is a search that never samples an architecture twice; a controller
    that converges bends away from it. Re-evaluation runs are not samples: they are left out.
    """
    df, ax = searched(_ledger(data)), _axes(ax)
    n = int(df["record"].max())
    ax.plot([0, n], [0, n], linestyle="--", color="0.6", linewidth=1, label="all unique")
    ax.step(df["record"], df["unique"], where="post", color="#4c72b0", linewidth=1.5,
            label="unique architectures")  # fmt: skip
    ax.set_xlabel("sampled architectures")
    ax.set_ylabel("unique architectures")
    ax.set_title("unique architectures")
    ax.set_xlim(0, n + 0.5)
    ax.set_ylim(0, n + 0.5)
    ax.legend(fontsize=7, loc="upper left")
    return ax


def choice_frequencies(
    data: Data, group: str, window: int | None = None, space: SearchSpace | None = None
) -> pd.DataFrame:
    """How often each choice of a decision group was taken, per window of records.

    Rows: one per window of ``window`` consecutive records (default: about 10 windows), indexed
    by the window's first and last record; columns: the group's choices (``P3``.. for
    ``level``, ``sum``/``global_pool`` for ``op``, node names ``P3``.. ``n5``.. for ``input``),
    each the fraction of that group's decisions in the window, so a row sums to 1.
    """
    df = _ledger(data)
    groups = sorted(set(GROUPS.values()))
    if group not in groups:
        raise ValueError(f"group={group!r}: expected one of {groups} (the decision groups)")
    if window is not None and window < 1:
        raise ValueError(f"window={window}: expected a window of 1 or more records")
    space = space or space_of(df)
    decisions = [d for d in space.decisions if d.group == group]
    names = _choice_names(space, group)
    sampled = df[df["actions"].map(lambda a: isinstance(a, list))]
    if sampled.empty:
        raise ValueError("no record of this ledger holds its actions; nothing to count")
    size = window or max(1, math.ceil(len(sampled) / 10))
    rows, index = [], []
    for start in range(0, len(sampled), size):
        part = sampled.iloc[start : start + size]
        counts = np.zeros(len(names))
        for actions in part["actions"]:
            for d in decisions:
                counts[actions[d.index]] += 1
        rows.append(counts / counts.sum())
        index.append((int(part["record"].iloc[0]), int(part["record"].iloc[-1])))
    return pd.DataFrame(
        rows, columns=names, index=pd.MultiIndex.from_tuples(index, names=["first", "last"])
    )


def _choice_names(space: SearchSpace, group: str) -> list[str]:
    if group == "level":
        return [f"P{level}" for level in space.levels]
    if group == "op":
        return list(space.ops)
    inputs = len(space.levels)
    return [f"P{lv}" for lv in space.levels] + [
        f"n{inputs + k}" for k in range(space.num_cells - 1)
    ]


def plot_decisions(
    data: Data,
    group: str,
    ax: Axes | None = None,
    window: int | None = None,
    space: SearchSpace | None = None,
) -> Axes:
    """The controller's choices over time for one group (``input``, ``level`` or ``op``).

    A stacked area of :func:`choice_frequencies`: each band is one choice's share of the
    group's decisions in a window of records. A policy that converges lets a few bands grow.
    The space is read from the ledger's genotypes unless given.
    """
    freq = choice_frequencies(data, group, window, space)
    ax = _axes(ax)
    # piecewise constant over each window: x runs over window edges, the last row repeats
    edges = [first - 0.5 for first, _ in freq.index] + [freq.index[-1][1] + 0.5]
    values = np.vstack([freq.to_numpy(), freq.to_numpy()[-1:]]).T
    colors = _palette(group, list(freq.columns))
    ax.stackplot(edges, values, labels=list(freq.columns), step="post", colors=colors)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, 1)
    ax.set_xlabel("sampled architectures")
    ax.set_ylabel("share of decisions")
    ax.set_title(f"{group} decisions")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
              ncol=2 if len(freq.columns) > 8 else 1)  # fmt: skip
    return ax


def _palette(group: str, names: list[str]) -> list:
    from matplotlib import colormaps

    if group == "input":  # inputs in greens, earlier cells in blues
        inputs = [n for n in names if n.startswith("P")]
        greens = colormaps["Greens"](np.linspace(0.35, 0.9, len(inputs)))
        blues = colormaps["Blues"](np.linspace(0.35, 0.9, max(1, len(names) - len(inputs))))
        return [*greens, *blues][: len(names)]
    return list(colormaps["tab10"](np.arange(len(names)) % 10))


def pareto_front(df: pd.DataFrame, cost: str) -> pd.DataFrame:
    """The trials no other trial beats on both AP (higher) and ``cost`` (lower), by cost."""
    points = df[df["AP"].notna() & df[cost].notna()]
    points = points.sort_values([cost, "AP"], ascending=[True, False])
    front, best = [], -math.inf
    for i, ap in zip(points.index, points["AP"]):
        if ap > best:
            front.append(i)
            best = ap
    return points.loc[front]


def plot_pareto(data: Data, cost: str = "params", ax: Axes | None = None) -> Axes:
    """AP against ``cost`` (``params``, ``flops``, or a cost-measuring search's ``latency_ms``
    and ``cost_flops``) for the trained trials, with the Pareto
    front: the architectures that no other beats with both a higher AP and a lower cost."""
    if cost not in PARETO_AXES:
        raise ValueError(f"cost={cost!r}: expected one of {sorted(PARETO_AXES)}")
    df, ax = _ledger(data), _axes(ax)
    points = df[df["AP"].notna() & df[cost].notna()]
    ax.set_xlabel(PARETO_AXES[cost])
    ax.set_ylabel("AP")
    ax.set_title(f"AP against {PARETO_AXES[cost]}")
    if points.empty:
        ax.text(0.5, 0.5, "no trial with metrics yet", ha="center", va="center",
                transform=ax.transAxes, color="0.4")  # fmt: skip
        return ax
    ax.scatter(points[cost], points["AP"], s=18, color="#4c72b0", alpha=0.7, label="trials")
    front = pareto_front(df, cost)
    ax.step(front[cost], front["AP"], where="post", color="#c44e52", linewidth=1.2)
    ax.scatter(front[cost], front["AP"], s=30, facecolor="none", edgecolor="#c44e52",
               label="Pareto front")  # fmt: skip
    ax.legend(fontsize=7, loc="lower right")
    return ax


def plot_failures(data: Data, ax: Axes | None = None) -> Axes:
    """Cumulative counts of duplicates and of each failure status against sampled records."""
    df, ax = _ledger(data), _axes(ax)
    for status in ("duplicate", *FAILED, "early_stopped"):
        counts = (df["status"] == status).cumsum()
        if counts.iloc[-1]:
            _, color, label = STATUS_STYLE[status]
            ax.step(df["record"], counts, where="post", color=color, label=label)
    failed = int(df["failed"].sum())
    ax.set_xlabel("sampled architectures")
    ax.set_ylabel("records so far")
    ax.set_title(f"failures ({failed}) and duplicates ({int((df['status'] == 'duplicate').sum())})")
    ax.set_xlim(0, int(df["record"].max()) + 0.5)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no failures, no duplicates", ha="center", va="center",
                transform=ax.transAxes, color="0.4")  # fmt: skip
    return ax


def health_fields(health: pd.DataFrame) -> list[str]:
    """The health figures of a controller.jsonl frame that have a value, the usual ones first."""
    present = [c for c in health.columns if c not in ("ledger_records", "time")]
    present = [c for c in present if health[c].notna().any()]
    known = [c for c in HEALTH_FIELDS if c in present]
    return known + [c for c in present if c not in known]


def plot_controller(data: Data, field: str, ax: Axes | None = None) -> Axes:
    """One of the controller's health figures (``controller.jsonl``) against ledger records.

    ``data`` is :func:`load_controller`'s frame or a search folder; :func:`health_fields` lists
    the figures it holds (they differ between algorithms).
    """
    health = data if isinstance(data, pd.DataFrame) else load_controller(data)
    if field not in health.columns or field in ("ledger_records", "time"):
        raise ValueError(
            f"field={field!r} is not among this controller's health figures; it has "
            f"{', '.join(health_fields(health)) or 'none'}"
        )
    ax = _axes(ax, size=(4.0, 2.6))
    ax.plot(health["ledger_records"], health[field], marker=".", color="#4c72b0", linewidth=1.2)
    ax.set_xlabel("ledger records")
    ax.set_title(field, fontsize=9)
    return ax
