"""Searches whose rewards are shared-weight scores (reward: supernet), on a real local Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import TINY_PROXY

from nasfpn import rewards
from nasfpn.analysis import load_ledger, top_k
from nasfpn.proxy_train import data as proxy_data
from nasfpn.search import BEST_FILE, SearchConfig, load_search_config, read_ledger, run_search
from nasfpn.space import Genotype, SearchSpace
from nasfpn.supernet import Scorer, check_match, train_supernet
from nasfpn.supernet.train import TRAIN_LOG

PROXY = {k: v for k, v in TINY_PROXY.items() if k != "max_train_seconds"}
SUPERNET = {"steps": 4, "bn_batches": 1, "threads": 1, "checkpoint_every": 2}
QUIET = {"log": lambda *args, **kwargs: None}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))
    yield monkeypatch
    import ray

    ray.shutdown()


def _cfg(data, **changes) -> SearchConfig:
    values = {"proxy": {**PROXY, "data": str(data)}, "reward": "supernet", "num_cpus": 2,
              "concurrent": 2, "trials": 10, "algorithm": "random", "reevaluate_top": 2,
              "reevaluate_seeds": 1, "supernet_options": SUPERNET, **changes}  # fmt: skip
    return SearchConfig(**values)


def test_a_one_shot_search_trains_its_weights_scores_and_ranks_by_stand_alone_runs(
    tiny_synth, tmp_path, env
) -> None:
    out = tmp_path / "search"
    summary = run_search(_cfg(tiny_synth), out, **QUIET)
    folder = out / "supernet"
    trained = json.loads((folder / "supernet.json").read_text())
    assert (trained["status"], trained["steps"]) == ("ok", SUPERNET["steps"])

    records = read_ledger(out)
    search = [r for r in records if r["phase"] == "search"]
    extra = [r for r in records if r["phase"] == "reevaluation"]
    assert len(search) == 10 and len({r["controller_step"] for r in search}) == 10
    assert {r["reward_source"] for r in search} == {"supernet"}
    scored = [r for r in search if r["status"] == "ok"]
    assert scored and all(r["seed"] is None and r["metrics"]["eval_seconds"] > 0 for r in scored)
    assert {r["status"] for r in search} <= {"ok", "duplicate"}
    # the top 2 by shared-weight score, each trained once stand-alone with the proxy's seed
    top = rewards.top_search_keys(search, 2)
    assert sorted(r["key"] for r in extra) == sorted(top)  # in the order they finished
    assert all(r["reward_source"] == "proxy" and r["seed"] == 0 for r in extra)

    # the ranking rests on the stand-alone runs: the best is one of them, with its score beside
    best = json.loads((out / BEST_FILE).read_text())
    standalone = {r["key"]: r["reward"] for r in extra if r["status"] == "ok"}
    top_ap = max(standalone.values())  # (ties, likely with weights this small: any of them)
    assert standalone[best["key"]] == top_ap and best["key"] == summary.best["key"]
    assert best["reward_source"] == "proxy" and best["rewards"] == [standalone[best["key"]]]
    first = next(r for r in scored if r["key"] == best["key"])
    assert best["score"] == first["reward"]  # (test_rewards: the two are never averaged)

    # a score is what the library's Scorer gives on the same weights
    scorer = Scorer(folder, threads=1)
    again = scorer.score(Genotype.from_dict(first["genotype"]))
    assert abs(again.AP - first["reward"]) < 1e-9

    frame = load_ledger(out)
    assert set(frame["reward_source"]) == {"supernet", "proxy"}
    table = top_k(frame, 3)
    assert list(table["reward_source"])[:2] == ["proxy", "proxy"]
    assert table["score"].notna().all()


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo", "evolution"])
def test_every_algorithm_searches_on_given_weights(algorithm, tiny_synth, tmp_path, env) -> None:
    folder = tmp_path / "supernet"
    cfg = _cfg(tiny_synth, algorithm=algorithm, trials=8, reevaluate_top=1)
    train_supernet(replace(cfg.supernet_config(), steps=2), folder)
    options = {"batch_size": 2} if algorithm in ("reinforce", "ppo") else {}
    if algorithm == "evolution":
        options = {"population_size": 4, "sample_size": 2}
    cfg = replace(cfg, supernet=str(folder), algorithm_options=options)
    run_search(cfg, tmp_path / "search", **QUIET)
    records = read_ledger(tmp_path / "search")
    assert not (tmp_path / "search" / "supernet").exists()  # the given weights, not its own
    search = [r for r in records if r["phase"] == "search"]
    assert len(search) == 8 and {r["reward_source"] for r in search} == {"supernet"}
    assert [r["phase"] for r in records[8:]] == ["reevaluation"]
    health = (tmp_path / "search" / "controller.jsonl").read_text().splitlines()
    assert len(health) == len(records)  # the controller learnt from every record


def test_killed_while_training_and_while_scoring_resumes_without_loss(
    tiny_synth, tmp_path, env
) -> None:
    out = tmp_path / "search"
    supernet = "{steps: 6, bn_batches: 1, threads: 1, checkpoint_every: 2}"
    args = [sys.executable, "-m", "nasfpn", "search", "--reward", "supernet", "--out", str(out),
            "--trials", "12", "--algorithm", "reinforce", "--set", "num_cpus=2",
            "--set", "reevaluate_top=1", "--set", f"supernet_options={supernet}"]  # fmt: skip
    for key, value in {**PROXY, "data": str(tiny_synth)}.items():
        args += ["--set", f"proxy.{key}={'null' if value is None else value}"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    log = out / "supernet" / TRAIN_LOG

    def kill_when(ready, process) -> None:
        deadline = time.time() + 300
        while not ready() and time.time() < deadline and process.poll() is None:
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def steps() -> list[int]:
        return [json.loads(line)["step"] for line in log.read_text().splitlines()]

    first = subprocess.Popen(args, start_new_session=True, **quiet)
    kill_when(lambda: log.exists() and len(steps()) >= 3, first)
    assert not (out / "supernet" / "supernet.json").exists(), "training ended before the kill"

    resume = [sys.executable, "-m", "nasfpn", "search", "--resume", str(out)]
    second = subprocess.Popen(resume, start_new_session=True, **quiet)
    kill_when(lambda: len(read_ledger(out)) >= 3, second)
    before = read_ledger(out)
    assert 3 <= len(before) < 12, "the scoring ended before it could be killed"
    assert steps() == [1, 2, 3, 4, 5, 6]  # the training continued from its checkpoint

    resumed = subprocess.run(resume, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = read_ledger(out)
    assert after[: len(before)] == before  # nothing finished is lost or rewritten
    search = [r for r in after if r["phase"] == "search"]
    assert len(search) == 12 and len({r["controller_step"] for r in search}) == 12
    scored = [r["trial_id"] for r in search if r["status"] != "duplicate"]
    assert len(set(scored)) == len(scored)
    assert [r["phase"] for r in after[12:]] == ["reevaluation"]
    assert "shared-weight score" in resumed.stdout


def test_weights_of_another_space_width_or_task_are_refused(tiny_synth, tmp_path, env) -> None:
    folder = tmp_path / "supernet"
    cfg = _cfg(tiny_synth)
    with pytest.raises(FileNotFoundError, match="does not exist; train one"):
        check_match(folder, cfg.space(), cfg.proxy_config(), "x")
    supernet = replace(cfg.supernet_config(), steps=2)
    train_supernet(supernet, folder)
    proxy = supernet.proxy_config()
    digest = proxy_data.config_hash(proxy)
    assert check_match(folder, cfg.space(), proxy, digest)["steps"] == 2
    with pytest.raises(ValueError, match=r"space P3\.\.P7 with 7 cells .*not this search's P3"):
        check_match(folder, SearchSpace(max_level=6, num_cells=6), proxy, digest)
    with pytest.raises(ValueError, match="has width=16, this search's proxy task width=32"):
        check_match(folder, cfg.space(), replace(proxy, width=32), digest)
    with pytest.raises(ValueError, match="another proxy task or data"):
        check_match(folder, cfg.space(), proxy, "0123456789ab")
    # the search says so before it scores anything
    other = replace(cfg, supernet=str(folder), proxy={**cfg.proxy, "epochs": 2})
    with pytest.raises(ValueError, match="another proxy task"):
        run_search(other, tmp_path / "search", **QUIET)
    assert not (tmp_path / "search").exists()  # nothing written
    (folder / "supernet.json").unlink()
    with pytest.raises(ValueError, match="has not finished training"):
        check_match(folder, cfg.space(), proxy, digest)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("reward=oneshot", "reward='oneshot' is unknown"),
        ("asha=true", "ASHA stops proxy trainings early"),
        ("duplicates=reevaluate", "a shared-weight score is the same every time"),
        ("reevaluate_top=0", "must train its best architectures stand-alone"),
        ("reevaluate_feedback=true", "would mix stand-alone APs"),
        ("supernet_options={num_cells: 5}", "supernet_options sets num_cells"),
    ],
)
def test_settings_a_one_shot_search_cannot_use_are_refused(override, message) -> None:
    with pytest.raises(ValueError, match=message):
        load_search_config(None, ["reward=supernet", override])


def test_the_analysis_reads_a_one_shot_search(tiny_synth, tmp_path, env) -> None:
    """The report's one-shot section, the score-against-stand-alone figures and the supernet's
    training curve, on a real one-shot search."""
    from nasfpn.analysis import (
        load_supernet_log,
        plot_shared_vs_standalone,
        plot_supernet_training,
        report_html,
        shared_vs_standalone,
        supernet_folder,
    )
    from nasfpn.analysis import oneshot as analysis_oneshot
    from nasfpn.search import scoring
    from nasfpn.supernet import train as supernet_train

    assert analysis_oneshot.TRAIN_LOG == supernet_train.TRAIN_LOG
    assert analysis_oneshot.SUPERNET_DIR == scoring.SUPERNET_DIR
    out = tmp_path / "search"
    run_search(_cfg(tiny_synth, trials=6, reevaluate_top=3), out, **QUIET)
    assert supernet_folder(out) == out / "supernet"
    log = load_supernet_log(out / "supernet")
    assert list(log["step"]) == [1, 2, 3, 4] and log["loss"].notna().all()
    found = shared_vs_standalone(out)
    extra = [r for r in read_ledger(out) if r["phase"] == "reevaluation" and r["status"] == "ok"]
    assert found["n"] == len(extra) == 3
    assert sorted(found["rows"]["reward"]) == sorted(r["reward"] for r in extra)
    assert plot_shared_vs_standalone(out).get_xlabel() == "shared-weight score (AP)"
    assert len(plot_supernet_training(log).lines) == 2
    page = report_html(out)
    assert "One-shot: shared weights" in page and "trained stand-alone" in page

    # the reward-curves notebook shows both figures for it, in a real kernel
    import nbformat
    from nbclient import NotebookClient

    env.setenv("NASFPN_SEARCH_DIR", str(out))  # the kernel inherits it
    notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    nb = nbformat.read(notebooks / "reward_curves.ipynb", as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=180,
                   resources={"metadata": {"path": str(notebooks)}}).execute()  # fmt: skip
    last = nb.cells[-1]
    assert "supernet_folder(SEARCH)" in last.source
    assert sum("image/png" in o.get("data", {}) for o in last.outputs) == 2
