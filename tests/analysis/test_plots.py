"""Every plot on ledgers with failures and duplicates, with a single trial, and with no success."""

import io

import numpy as np
import pytest
from analysis_helpers import actions, health_lines, mixed_records, record, write_search
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from nasfpn.analysis import (
    choice_frequencies,
    health_fields,
    load_controller,
    load_ledger,
    pareto_front,
    plot_controller,
    plot_decisions,
    plot_failures,
    plot_pareto,
    plot_rewards,
    plot_unique,
)

LEDGERS = {
    "mixed": mixed_records,
    "single": lambda: [record(0, reward=0.3)],
    "failed only": lambda: [record(0, "failed", 0.0, metrics=None, error="boom")],
}
PLOTS = {
    "rewards": plot_rewards,
    "unique": plot_unique,
    "decisions input": lambda df, ax=None: plot_decisions(df, "input", ax=ax),
    "decisions level": lambda df, ax=None: plot_decisions(df, "level", ax=ax),
    "decisions op": lambda df, ax=None: plot_decisions(df, "op", ax=ax),
    "pareto params": lambda df, ax=None: plot_pareto(df, "params", ax=ax),
    "pareto flops": lambda df, ax=None: plot_pareto(df, "flops", ax=ax),
    "failures": plot_failures,
}


@pytest.fixture
def mixed(tmp_path):
    return load_ledger(write_search(tmp_path / "mixed", mixed_records()))


def _lines(ax) -> dict[str, np.ndarray]:
    return {line.get_label(): np.asarray(line.get_ydata(), float) for line in ax.get_lines()}


def _scatter(ax, label: str) -> np.ndarray:
    found = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label() == label]
    assert len(found) == 1, [c.get_label() for c in ax.collections]
    return found[0].get_offsets()


@pytest.mark.parametrize("ledger", sorted(LEDGERS))
@pytest.mark.parametrize("plot", sorted(PLOTS))
def test_every_plot_draws_every_ledger(plot, ledger, tmp_path) -> None:
    folder = write_search(tmp_path / "s", LEDGERS[ledger]())
    ax = PLOTS[plot](load_ledger(folder))
    assert isinstance(ax.figure, Figure) and ax.get_title() and ax.get_xlabel()
    assert ax.has_data() or ax.texts  # something drawn, or a note saying why not
    png = io.BytesIO()
    ax.figure.savefig(png, format="png")  # renders without a display (Agg)
    assert png.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    # a search folder works as well as a DataFrame, and a given Axes is used
    given = Figure().add_subplot()
    assert PLOTS[plot](folder, ax=given) is given


def test_rewards_points_moving_average_and_best(mixed) -> None:
    ax = plot_rewards(mixed, window=2)
    assert _scatter(ax, "ok")[:, 0].tolist() == [1, 2, 3, 9]
    assert _scatter(ax, "duplicate (replayed)")[:, 1].tolist() == [0.30]
    assert _scatter(ax, "error (discarded)")[:, 0].tolist() == [7]
    # over the rewards the controller learnt from: not the failed (5) nor the error (7) record
    lines = _lines(ax)
    average = [0.30, 0.275, 0.325, 0.35, 0.15, 0.175, 0.275]
    assert lines["moving average (2)"] == pytest.approx(average)
    assert lines["best so far"] == pytest.approx([0.30, 0.30] + [0.40] * 7)
    with pytest.raises(ValueError, match="window=0"):
        plot_rewards(mixed, window=0)


def test_unique_against_sampled(mixed) -> None:
    lines = _lines(plot_unique(mixed))
    assert lines["unique architectures"].tolist() == [1, 2, 3, 3, 4, 5, 6, 7, 8]
    assert lines["all unique"].tolist() == [0, 9]


def test_choice_frequencies_by_hand(tmp_path) -> None:
    records = [record(i) for i in range(4)]
    df = load_ledger(write_search(tmp_path / "s", records))
    freq = choice_frequencies(df, "op", window=2)
    assert list(freq.columns) == ["sum", "global_pool"]
    assert list(freq.index) == [(1, 2), (3, 4)]
    for (first, last), row in freq.iterrows():
        ops = [a for i in range(first - 1, last) for a in actions(i)[3::4]]  # op is every 4th
        assert row["global_pool"] == pytest.approx(sum(ops) / len(ops))
    levels = choice_frequencies(df, "level")
    assert list(levels.columns) == ["P3", "P4", "P5", "P6", "P7"]
    assert len(levels) == 4  # about 10 windows: one record each here
    assert np.allclose(levels.sum(axis=1), 1)
    inputs = choice_frequencies(df, "input", window=4)
    assert list(inputs.columns) == ["P3", "P4", "P5", "P6", "P7", *(f"n{i}" for i in range(5, 11))]
    reads = [a for i in range(4) for k in range(7) for a in actions(i)[4 * k : 4 * k + 2]]
    assert inputs.iloc[0]["n5"] == pytest.approx(reads.count(5) / len(reads))


def test_decisions_draw_one_band_per_choice(mixed) -> None:
    ax = plot_decisions(mixed, "level", window=3)
    assert [c.get_label() for c in ax.collections] == ["P3", "P4", "P5", "P6", "P7"]
    assert ax.get_xlim() == (0.5, 9.5)


def test_decision_errors(mixed) -> None:
    with pytest.raises(ValueError, match=r"group='cells'.*\['input', 'level', 'op'\]"):
        plot_decisions(mixed, "cells")
    with pytest.raises(ValueError, match="window=0"):
        choice_frequencies(mixed, "op", window=0)
    with pytest.raises(ValueError, match="no record of this ledger holds its actions"):
        choice_frequencies(mixed.assign(actions=None), "op")


def test_pareto_front_by_hand(mixed) -> None:
    # (params, AP): (1.0M, .30) (1.001M, .25) (0.9M, .40) (1.006M, .35) (0.8M, .20)
    assert pareto_front(mixed, "params")["record"].tolist() == [9, 3]
    # (flops, AP): (5e8, .30) (5.01e8, .25) (6e8, .40) (5.06e8, .35) (4e8, .20)
    assert pareto_front(mixed, "flops")["record"].tolist() == [9, 1, 8, 3]
    ax = plot_pareto(mixed, "flops")
    assert len(_scatter(ax, "trials")) == 5
    assert _scatter(ax, "Pareto front")[:, 1].tolist() == [0.20, 0.30, 0.35, 0.40]
    with pytest.raises(
        ValueError, match=r"cost='time'.*\['cost_flops', 'flops', 'latency_ms', 'params'\]"
    ):
        plot_pareto(mixed, "time")


def test_failures_count_up(mixed) -> None:
    lines = _lines(plot_failures(mixed))
    assert lines["duplicate (replayed)"].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert lines["failed"].tolist()[-1] == 1 and lines["error (discarded)"].tolist()[-1] == 1
    assert lines["diverged (penalty)"].tolist()[4:6] == [0, 1]


def test_controller_health_panels(tmp_path) -> None:
    folder = write_search(tmp_path / "s", [record(i) for i in range(5)], health=health_lines(5))
    health = load_controller(folder)
    assert health_fields(health) == ["unique_fraction", "baseline", "policy_entropy",
                                     "proposals"]  # fmt: skip
    ax = plot_controller(folder, "baseline")
    (line,) = ax.get_lines()
    assert line.get_xdata().tolist() == [1, 2, 3, 4, 5]
    assert np.isnan(line.get_ydata()[:2]).all() and line.get_ydata()[4] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"field='entropy'.*unique_fraction, baseline"):
        plot_controller(health, "entropy")
