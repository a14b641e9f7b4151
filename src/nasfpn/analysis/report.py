"""One self-contained HTML page about a search: its best architectures, curves, failures, cost.

Figures are embedded as base64 PNG (``data:`` URIs), the style sheet is inline: the page can be
mailed or archived on its own. ``nasfpn report DIR`` writes it (default ``DIR/report.html``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from os import PathLike
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from nasfpn.analysis.drawing import draw_genotype
from nasfpn.analysis.fidelity import REFERENCE_FILE, plot_fidelity, summarize
from nasfpn.analysis.ledger import (
    CONFIG_FILE,
    COST,
    HEALTH_FILE,
    load_controller,
    load_ledger,
    load_search_config,
    search_cost,
    top_k,
)
from nasfpn.analysis.oneshot import (
    load_supernet_log,
    plot_shared_vs_standalone,
    plot_supernet_training,
    shared_vs_standalone,
    supernet_folder,
)
from nasfpn.analysis.plots import (
    PARETO_AXES,
    health_fields,
    plot_controller,
    plot_decisions,
    plot_failures,
    plot_pareto,
    plot_rewards,
    plot_unique,
)

REPORT_FILE = "report.html"
PARETO_FILE = "pareto.json"  # a cost-measuring search writes it (nasfpn.search.export)
FIDELITY_DIR = "fidelity"  # where `nasfpn fidelity --from-search DIR` writes by default
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td.text { text-align: left; font-family: monospace; }
img { max-width: 100%; } .grid { display: flex; flex-wrap: wrap; gap: 8px; }
.note { color: #666; font-size: 0.9em; }
"""


def _png(fig: Figure, alt: str) -> str:
    """An <img> holding the figure as a base64 PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _panel(draw, *args, size: tuple[float, float] = (6.4, 3.6), **kwargs) -> str:
    """One plot function's Axes on a Figure of its own, as an <img> titled like the plot."""
    fig = Figure(figsize=size, layout="constrained")
    ax = draw(*args, ax=fig.add_subplot(), **kwargs)
    return _png(fig, ax.get_title())


def _fmt(value: object, digits: int = 4) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame, text: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for name, value in zip(frame.columns, row):
            css = ' class="text"' if name in text else ""
            cells.append(f"<td{css}>{_fmt(value)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _cost(directory: Path, df: pd.DataFrame) -> str:
    try:
        cost = search_cost(directory, df)
    except (FileNotFoundError, ValueError) as err:
        return f'<p class="note">search cost unknown: {html.escape(str(err))}</p>'
    return (
        f"<p>{cost['trial_hours']:.3f} trial-hours (the sum over records of end - start) at "
        f"{cost['cpus_per_trial']:g} CPU and {cost['gpus_per_trial']:g} GPU per trial: "
        f"<b>{cost['cpu_hours']:.3f} CPU-hours</b>, <b>{cost['gpu_hours']:.3f} GPU-hours</b>; "
        f"{cost['wall_hours']:.3f} hours from the first trial's start to the last one's end.</p>"
    )


def _rewards(values: list[float]) -> str:
    return ", ".join(f"{v:.4f}" for v in values)


def _reevaluation(df: pd.DataFrame) -> str:
    """The re-evaluated architectures: their search reward against the mean over all seeds."""
    extra = df[df["phase"] == "reevaluation"]
    if extra.empty:
        return '<p class="note">this search re-evaluated no architecture (reevaluate_top 0).</p>'
    ranked = top_k(df, len(df))
    chosen = ranked[ranked["reevaluated"]].copy()
    search = top_k(df[df["phase"] == "search"], len(df)).reset_index().set_index("key")
    chosen.insert(0, "rank", [int(i) + 1 for i in chosen.index])
    chosen.insert(1, "search rank", [int(search.loc[key, "index"]) + 1 for key in chosen["key"]])
    chosen["search reward"] = [float(search.loc[key, "reward"]) for key in chosen["key"]]
    chosen["rewards"] = chosen["rewards"].map(_rewards)
    table = chosen[["rank", "search rank", "key", "search reward", "reward", "reward_std",
                    "evaluations", "rewards"]]  # fmt: skip
    table = table.rename(columns={"reward": "mean reward", "reward_std": "std"})
    if (df["reward_source"] == "supernet").any():
        text = (f"<p>The search's top {len(chosen)} architectures (by their shared-weight score, "
                f"the search reward here) were trained stand-alone: {len(extra)} runs. The "
                "ranking uses the stand-alone mean alone, never the score.</p>")  # fmt: skip
    else:
        text = (f"<p>The search's top {len(chosen)} architectures (by their search reward) were "
                f"trained again: {len(extra)} runs with other seeds. A single reward is a noisy "
                "draw and the best of many draws is biased upward; the mean over seeds is the "
                "estimate the ranking uses.</p>")  # fmt: skip
    return text + _table(table, text=("key", "rewards"))


def _oneshot(df: pd.DataFrame, folder: Path) -> str:
    """A one-shot search: its scores against the stand-alone runs, and its supernet's curve."""
    found = shared_vs_standalone(df)
    if found["kendall_tau"] is None:
        head = (f'<p class="note">{found["n"]} re-evaluated architectures with both a score and a '
                "stand-alone run: no rank correlation.</p>")  # fmt: skip
    else:
        head = (f"<p>The samples were scored on shared weights ({html.escape(str(folder))}); "
                f"the top {found['n']} were then trained stand-alone. Kendall tau-b of score "
                f"against stand-alone AP: <b>{found['kendall_tau']:.3f}</b> (p "
                f"{found['kendall_p']:.2g}, n {found['n']}; a ranking among the best only: "
                "docs/oneshot.md has the fidelity over a wider set).</p>")  # fmt: skip
    names = {"score": "shared-weight score", "reward": "stand-alone AP", "reward_std": "std"}
    table = found["rows"].rename(columns=names)
    parts = [head, _table(table, text=("key",)), "<div class='grid'>",
             _panel(plot_shared_vs_standalone, df)]  # fmt: skip
    try:
        parts.append(_panel(plot_supernet_training, load_supernet_log(folder)))
    except FileNotFoundError:
        parts.append(f'<p class="note">no training log in {html.escape(str(folder))}.</p>')
    return "".join(parts) + "</div>"


def _fidelity(folder: Path) -> str:
    """The fidelity study beside the search (``nasfpn fidelity --from-search DIR``)."""
    summary = summarize(folder)
    if summary["kendall_tau"] is None:
        head = (f'<p class="note">{summary["complete"]} of {summary["genotypes"]} architectures '
                "have both a proxy and a retrain result: no rank correlation yet.</p>")  # fmt: skip
    else:
        low, high = summary["tau_ci"] or (math.nan, math.nan)
        head = (f"<p>Kendall tau-b <b>{summary['kendall_tau']:.3f}</b> (p "
                f"{summary['kendall_p']:.2g}, 95% bootstrap interval {low:.2f} to {high:.2f}), "
                f"Spearman rho {summary['spearman']:.3f}, over {summary['n']} architectures "
                f"(the goal is tau >= 0.65; docs/fidelity.md).</p>")  # fmt: skip
    names = {"proxy_ap": "proxy AP", "proxy_std": "std", "proxy_runs": "seeds",
             "retrain_ap": "retrain AP", "proxy_rank": "proxy rank",
             "retrain_rank": "retrain rank"}  # fmt: skip
    table = pd.DataFrame(summary["rows"]).rename(columns=names)
    fig = plot_fidelity(summary)
    return head + _table(table, text=("name", "key")) + _png(fig, "proxy against retraining")


def _pareto(directory: Path, config: dict) -> str:
    """The members of the search's Pareto fronts (pareto.json), by cost."""
    doc = json.loads((directory / PARETO_FILE).read_text())
    objective = config.get("objective") or {}
    what = html.escape(str(objective.get("metric", "none")))
    parts = [
        f"<p class='note'>{doc['architectures']} costed architectures; objective metric: "
        f"{what}. Each architecture's AP is the mean of its stand-alone runs; its cost was "
        "measured once (docs/cost.md). A member: no other architecture has a higher AP at no "
        "more cost.</p>"
    ]
    for cost in COST:
        front = pd.DataFrame(doc["fronts"][cost], columns=["key", "AP", "runs", *COST])
        parts.append(f"<h3>Against {PARETO_AXES[cost]}</h3>" + _table(front, text=("key",)))
    return "".join(parts)


def report_html(directory: str | PathLike[str], k: int = 5) -> str:
    """The report of the search in ``directory`` as one HTML document (a str)."""
    directory = Path(directory)
    df = load_ledger(directory)
    parts = [f"<h1>NAS-FPN search: {html.escape(str(directory))}</h1>"]
    config = {}
    if (directory / CONFIG_FILE).is_file():
        config = load_search_config(directory)
    counts = df["status"].value_counts()
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    best = df["best_so_far"].max()
    algorithm = html.escape(str(config.get("algorithm", "?")))
    planned = html.escape(str(config.get("trials", "?")))
    parts.append(
        f"<p>{len(df)} sampled architectures ({summary}); {int(df['unique'].iloc[-1])} unique; "
        f"best reward {_fmt(float(best))}. Algorithm: {algorithm}, planned trials: {planned}. "
        f"Written {time.strftime('%Y-%m-%d %H:%M')}.</p>"
    )
    parts.append("<h2>Search cost</h2>" + _cost(directory, df))

    best_k = top_k(df, k)
    parts.append(f"<h2>Top {k} architectures</h2>")
    if best_k.empty:
        parts.append('<p class="note">no trial has finished successfully yet.</p>')
    else:
        parts.append(
            '<p class="note">Ranked by the mean reward over each architecture\'s runs; the '
            "architectures the search re-evaluated with more seeds come first.</p>"
        )
        columns = ["key", "reward", "reward_std", "evaluations", "rewards", "samples",
                   "trial_id", "controller_step", "AP50", "params", "flops"]  # fmt: skip
        table = best_k[columns].rename(columns={"reward": "mean reward", "reward_std": "std"})
        table["rewards"] = table["rewards"].map(_rewards)
        table.insert(0, "rank", range(1, len(table) + 1))
        parts.append(_table(table, text=("key", "trial_id", "rewards")))
        drawings = []
        for rank, row in enumerate(best_k.itertuples(index=False), start=1):
            title = f"#{rank}  {row.key}  reward {row.reward:.4f}"
            drawings.append(_panel(draw_genotype, row.genotype, title=title, size=(9.5, 4.0)))
        parts.append("<h3>Their architectures</h3>" + "".join(drawings))

    parts.append("<h2>Re-evaluation</h2>" + _reevaluation(df))
    if (directory / PARETO_FILE).is_file():
        parts.append("<h2>Pareto fronts: AP against cost</h2>" + _pareto(directory, config))
    shared = supernet_folder(directory) if (directory / CONFIG_FILE).is_file() else None
    if shared is not None:
        parts.append("<h2>One-shot: shared weights</h2>" + _oneshot(df, shared))
    if (directory / FIDELITY_DIR / REFERENCE_FILE).is_file():
        parts.append("<h2>Proxy fidelity</h2>" + _fidelity(directory / FIDELITY_DIR))

    parts.append("<h2>Curves</h2><div class='grid'>")
    parts += [_panel(plot_rewards, df), _panel(plot_unique, df)]
    costs = [c for c in COST if df[c].notna().any()]
    parts += [_panel(plot_pareto, df, cost) for cost in ("params", "flops", *costs)]
    parts += [_panel(plot_decisions, df, group) for group in ("op", "level", "input")]
    parts.append("</div>")

    parts.append("<h2>Controller health</h2>")
    if (directory / HEALTH_FILE).is_file():
        health = load_controller(directory)
        panels = [_panel(plot_controller, health, name, size=(3.6, 2.4))
                  for name in health_fields(health)]  # fmt: skip
        parts.append("<div class='grid'>" + "".join(panels) + "</div>")
    else:
        parts.append(f'<p class="note">no {HEALTH_FILE} in this folder.</p>')

    parts.append("<h2>Failures and duplicates</h2>" + _panel(plot_failures, df))
    failed = df[df["failed"]]
    if failed.empty:
        parts.append('<p class="note">no trial failed.</p>')
    else:
        columns = ["record", "trial_id", "controller_step", "status", "key", "error"]
        parts.append(_table(failed[columns], text=("trial_id", "status", "key", "error")))

    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>NAS-FPN search report</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_report(
    directory: str | PathLike[str], out: str | PathLike[str] | None = None, k: int = 5
) -> Path:
    """Write :func:`report_html` to ``out`` (default ``directory/report.html``); returns it."""
    target = Path(out) if out is not None else Path(directory) / REPORT_FILE
    text = report_html(directory, k)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
