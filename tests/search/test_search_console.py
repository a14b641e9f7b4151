"""The search's console: plain lines off a terminal, the live table, the trial board's pace,
and a real search whose console holds none of Ray's banners."""

import io
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import TINY_PROXY
from rich.console import Console

from nasfpn.console import live_allowed
from nasfpn.search.progress import SearchDisplay, board_reporter


def _searcher(now: float) -> SimpleNamespace:
    """The two maps of running trials the display reads, as NASSearcher holds them."""
    proposal = SimpleNamespace(key="40f48472a14f8574")
    job = SimpleNamespace(key="b9257f2103473c33", seed=1)
    return SimpleNamespace(live={"aaaa0001": (proposal, now - 65, 0)},
                           reevaluating={"bbbb0002": (job, now - 5)})  # fmt: skip


def test_plain_lines_for_starts_and_positions(monkeypatch) -> None:
    import time

    out = io.StringIO()
    display = SearchDisplay(_searcher(time.time()), stream=out, live=False)
    display.summary = lambda: "1/12 done"
    display.started("aaaa0001", {"key": "40f48472a14f8574", "controller_step": 3, "seed": 0})
    display.started("bbbb0002", {"key": "b9257f2103473c33", "controller_step": 1, "seed": 1,
                                 "phase": "reevaluation"})  # fmt: skip
    display.positions = {"aaaa0001": {"epoch": 2, "epochs": 2, "iteration": 160,
                                      "iterations": 246, "loss": 0.912}}  # fmt: skip
    display._plain_line()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[start] trial_aaaa0001 40f48472a14f8574 (controller step 3, seed 0)"
    assert lines[1].endswith("(controller step 1, seed 1, re-evaluation)")
    # the trial on the board shows its step; the one not on it yet is starting
    assert lines[2] == ("[running 2] trial_aaaa0001 epoch 2/2 step 160/246 (1m05s); "
                        "trial_bbbb0002 starting | 1/12 done")  # fmt: skip


def test_the_live_table_shows_each_running_trial() -> None:
    import time

    display = SearchDisplay(_searcher(time.time()), live=False)
    display.summary = lambda: "1/12 done, best AP 0.2480"
    display.positions = {"aaaa0001": {"epoch": 1, "epochs": 2, "iteration": 40,
                                      "iterations": 246, "loss": 1.274}}  # fmt: skip
    console = Console(file=io.StringIO(), width=120, record=True)
    console.print(display)
    text = console.export_text()
    row = next(line for line in text.splitlines() if "trial_aaaa0001" in line).split()
    assert row == ["trial_aaaa0001", "40f48472a14f8574", "search", "0", "1/2", "40/246", "1.274",
                   "1m05s"]  # fmt: skip
    assert "re-eval" in text and "starting" in text and "1/12 done, best AP 0.2480" in text


def test_the_board_hears_the_first_step_then_at_most_every_period(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("nasfpn.search.progress.time.monotonic", lambda: clock[0])
    sent: list[dict] = []
    report = board_reporter(sent.append, every=10.0)
    for step in range(1, 247):  # one step every 0.25 s: 61.5 s of training
        clock[0] += 0.25
        report({"epoch": 1 + (step > 123), "epochs": 2, "iteration": step, "iterations": 246,
                "loss": 1.0})  # fmt: skip
    assert [e["iteration"] for e in sent] == [1, 41, 81, 121, 161, 201, 241, 246]
    assert all("time" in e for e in sent)


def test_progress_detection_and_its_override(monkeypatch) -> None:
    monkeypatch.delenv("NASFPN_PROGRESS", raising=False)
    assert live_allowed(io.StringIO()) is False  # not a terminal
    monkeypatch.setenv("NASFPN_PROGRESS", "live")
    assert live_allowed(io.StringIO()) is True
    monkeypatch.setenv("NASFPN_PROGRESS", "fancy")
    with pytest.raises(ValueError, match="NASFPN_PROGRESS='fancy': expected plain, live"):
        live_allowed()


def test_a_search_console_is_ours(tiny_synth, tmp_path) -> None:
    """A real search as a process with a pipe for stdout: plain lines, the running trials'
    steps, and none of Ray's banners (they are in ray.log)."""
    out = tmp_path / "search"
    args = [sys.executable, "-m", "nasfpn", "search", "--out", str(out), "--trials", "2",
            "--algorithm", "random", "--set", "num_cpus=2", "--set", "reevaluate_top=0",
            "--set", "progress_seconds=0.2", "--set", "console_every=0.5",
            "--set", "proxy.epochs=8"]  # fmt: skip
    for key, value in {**TINY_PROXY, "data": str(tiny_synth)}.items():
        if key != "epochs":
            args += ["--set", f"proxy.{key}={'null' if value is None else value}"]
    env = {**os.environ, "NASFPN_CACHE": str(tmp_path / "cache")}
    env.pop("NASFPN_PROGRESS", None)
    env.pop("RAY_AUTH_MODE", None)  # as a user's shell has it: Ray then prints its token notice
    done = subprocess.run(args, capture_output=True, text=True, timeout=400, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    console = done.stdout + done.stderr
    for banner in ("Configuration for experiment", "Number of trials", "--logdir /tmp/ray",
                   "View detailed results here", "Token authentication"):  # fmt: skip
        assert banner not in console, console[-3000:]
    lines = done.stdout.splitlines()
    assert sum(line.startswith("[start] trial_") for line in lines) == 2
    assert sum(line.startswith("[   ") for line in lines) == 2  # "[   1/2] ok ..."
    steps = [line for line in lines if line.startswith("[running") and " step " in line]
    assert steps, done.stdout[-3000:]  # the trials told the driver where they were
    ray_log = (out / "ray.log").read_text()
    assert "Configuration for experiment" in ray_log and "Token authentication" in ray_log
