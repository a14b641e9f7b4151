"""End-to-end searches on a real local Ray instance (tiny proxy trials of a few seconds)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TINY_PROXY

from nasfpn.cli import main
from nasfpn.search import BEST_FILE, SearchConfig, read_ledger, run_search
from nasfpn.space import get_genotype


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))
    yield
    import ray

    ray.shutdown()


def trial_workers() -> list[int]:
    """The Tune trial worker processes of this test's Ray: their environment holds its
    NASFPN_CACHE (set by the env fixture), so a search running beside the suite is left
    alone."""
    marker = f"NASFPN_CACHE={os.environ['NASFPN_CACHE']}".encode()
    found = subprocess.run(["pgrep", "-f", "ray::ImplicitFunc"], capture_output=True,
                           text=True).stdout.split()  # fmt: skip
    mine = []
    for pid in found:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:  # it ended meanwhile, or is not ours to read
            continue
        if marker in environ:
            mine.append(int(pid))
    return mine


def _cfg(synth, proxy=None, **kwargs) -> SearchConfig:
    """A tiny search on 2 local CPUs; no re-evaluation at the end unless asked for."""
    return SearchConfig(
        proxy={**TINY_PROXY, "data": str(synth), **(proxy or {})},
        num_cpus=2,
        concurrent=2,
        **{"reevaluate_top": 0, **kwargs},
    )


def test_small_search_end_to_end_with_asha(tiny_synth, tmp_path, env, capsys) -> None:
    out = tmp_path / "search"
    # at most 2 trials per Tune run: the 4 trials and the re-evaluation take 3 Tune runs
    cfg = _cfg(tiny_synth, proxy={"epochs": 2}, trials=4, algorithm="random", asha=True,
               asha_grace_epochs=1, reevaluate_top=1, reevaluate_seeds=1,
               tune_run_trials=2)  # fmt: skip
    summary = run_search(cfg, out)
    import ray

    # under `uv run` (how the suite and the quick start run) Ray must not ship the project
    # folder, virtualenv included, to its workers: no working_dir in the job's runtime env
    assert "working_dir" not in ray.get_runtime_context().runtime_env
    every = read_ledger(out)
    records = [r for r in every if r["phase"] == "search"]
    assert len(records) == 4 and (summary.trials, summary.reevaluations) == (4, 1)
    assert {r["status"] for r in records} <= {"ok", "duplicate", "early_stopped"}
    finished = [r for r in records if r["status"] == "ok"]
    assert finished and all(r["metrics"]["epochs"] == 2 for r in finished)
    assert sorted(r["controller_step"] for r in records) == [0, 1, 2, 3]
    assert all(r["seed"] == 0 for r in finished) and {r["precision"] for r in finished} <= {
        "fp32", "bf16"
    }  # fmt: skip
    # the best search trial, trained again with seed 1 to its end (ASHA does not cut it)
    (extra,) = [r for r in every if r["phase"] == "reevaluation"]
    assert every[-1] is extra and extra["status"] == "ok" and extra["seed"] == 1
    assert extra["metrics"]["epochs"] == 2
    top = min(finished, key=lambda r: (-r["reward"], r["controller_step"]))  # ties: earlier
    assert (extra["key"], extra["reevaluation_of"]) == (top["key"], top["trial_id"])
    for r in records:
        assert r["end_time"] >= r["start_time"] and r["config_hash"]
    # where each trained one ran: rewards are reproducible per CPU model and precision
    assert all(r["cpu_model"] and r["gpu_model"] is None for r in [*finished, extra])
    for r in finished:  # the trial function's own span lies inside the driver's
        m = r["metrics"]
        assert r["start_time"] <= m["worker_start"] < m["worker_end"] <= r["end_time"]
    best = get_genotype(str(out / BEST_FILE))  # nasfpn retrain / inspect read it as it is
    assert best.key() == summary.best["key"]
    provenance = json.loads((out / BEST_FILE).read_text())
    assert {"reward", "trial_id", "config_hash"} <= set(provenance)
    exported = json.loads((out / "top_k.json").read_text())["top_k"]
    assert exported[0]["key"] == best.key() == extra["key"]  # the re-evaluated one ranks first
    assert exported[0]["rewards"] == [top["reward"], extra["reward"]]
    assert provenance["rewards"] == exported[0]["rewards"] and provenance["evaluations"] == 2
    assert provenance["reward_mean"] == pytest.approx((top["reward"] + extra["reward"]) / 2)
    assert list((out / "tensorboard").glob("events.*"))
    # per-trial data stays out of Tune: no per-trial loggers (the ledger has every trial), and
    # the ledger's metrics came from the driver's board, not from Tune's results
    assert not [
        p.name
        for p in (out / "tune").rglob("*")
        if p.name in ("result.json", "progress.csv") or p.name.startswith("events.")
    ]
    assert all({"AP50", "params", "train_seconds"} <= set(r["metrics"]) for r in finished)
    assert all(r["losses"] for r in finished)
    health = [json.loads(line) for line in (out / "controller.jsonl").read_text().splitlines()]
    assert [h["ledger_records"] for h in health] == [1, 2, 3, 4, 5]
    assert health[-1]["proposals"] >= 4 and 0 < health[-1]["unique_fraction"] <= 1
    printed = capsys.readouterr().out
    assert "[   5/5] ok" in printed and "(re-evaluation)" in printed
    runs = [line for line in printed.splitlines() if line.startswith("[tune run")]
    assert [line.split("]")[0] for line in runs] == ["[tune run 2", "[tune run 3"]
    # a finished Tune run leaves neither its state nor empty trial folders behind
    assert not list((out / "tune").glob("experiment_state-*.json"))
    assert not [p for p in (out / "tune").glob("trial_*") if not any(p.iterdir())]
    assert main(["inspect", str(out / BEST_FILE), "--backbone", "resnet10", "--width", "16",
                 "--repeats", "1", "--image-size", "128", "--json"]) == 0  # fmt: skip
    with pytest.raises(ValueError, match="already holds a search"):
        run_search(_cfg(tiny_synth, trials=4), out)


def _kill_when(driver: subprocess.Popen, out, records: int) -> list[dict]:
    """SIGKILL the driver (and the Ray instance it started) once the ledger holds ``records``."""
    deadline = time.time() + 240
    while len(read_ledger(out)) < records and time.time() < deadline and driver.poll() is None:
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    return read_ledger(out)


def test_driver_killed_with_sigkill_resumes_without_loss(tiny_synth, tmp_path, env) -> None:
    """Killed mid-search, then again during the re-evaluation at the end: each resume trains
    only what is missing, and the finished search has every sample and every extra seed."""
    out = tmp_path / "search"
    args = [sys.executable, "-m", "nasfpn", "search", "--out", str(out), "--trials", "6",
            "--algorithm", "reinforce", "--set", "num_cpus=2", "--set", "reevaluate_top=2",
            "--set", "reevaluate_seeds=1"]  # fmt: skip
    for key, value in {**TINY_PROXY, "data": str(tiny_synth)}.items():
        args += ["--set", f"proxy.{key}={'null' if value is None else value}"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    before = _kill_when(subprocess.Popen(args, start_new_session=True, **quiet), out, 2)
    assert 2 <= len(before) < 6, "the search ended before it could be killed"

    resume = [sys.executable, "-m", "nasfpn", "search", "--resume", str(out)]
    middle = _kill_when(subprocess.Popen(resume, start_new_session=True, **quiet), out, 6)
    assert middle[: len(before)] == before  # nothing finished is lost or rewritten
    resumed = subprocess.run(resume, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = read_ledger(out)
    assert after[: len(middle)] == middle
    search = [r for r in after if r["phase"] == "search"]
    extra = [r for r in after if r["phase"] == "reevaluation"]
    assert len(search) == 6 and len({r["controller_step"] for r in search}) == 6
    trained = [r["trial_id"] for r in search if r["status"] != "duplicate"]
    assert len(set(trained)) == len(trained)  # no proposal recorded (or trained) twice
    ok_keys = {r["key"] for r in search if r["status"] == "ok"}
    assert len(extra) == min(2, len(ok_keys)) and {r["seed"] for r in extra} == {1}
    assert len({r["key"] for r in extra}) == len(extra)  # each top architecture once


def test_a_reevaluation_that_failed_runs_again_on_resume(tiny_synth, tmp_path, env) -> None:
    """The re-evaluation's first training fails (an injected instant trial; a marker file
    makes the next one succeed, in whichever Ray worker it runs); the search ends with it
    failed, and a resume trains it again, with the same seed, and the export counts it."""
    marker = tmp_path / "failed-once"

    def train(genotype, config, report=None, progress=None):
        from nasfpn.proxy_train.run import ProxyResult

        if config.seed != 0 and not marker.exists():  # the re-evaluation's first try
            marker.touch()
            return ProxyResult(status="failed", reason="injected", seed=config.seed)
        ap = int(genotype.key()[:4], 16) / 65536 + config.seed / 100  # stable per architecture
        return ProxyResult(status="ok", seed=config.seed, AP=ap, epochs=config.epochs,
                           iterations=1, history=[{"epoch": 1, "AP": ap}])  # fmt: skip

    out = tmp_path / "search"
    cfg = _cfg(tiny_synth, trials=2, algorithm="random", reevaluate_top=1, reevaluate_seeds=1)
    first = run_search(cfg, out, log=lambda *args, **kwargs: None, train=train)
    (failed,) = [r for r in read_ledger(out) if r["phase"] == "reevaluation"]
    assert (failed["status"], failed["error"], failed["seed"]) == ("failed", "injected", 1)
    assert first.best["evaluations"] == 1  # no re-evaluated reward yet

    summary = run_search(None, out, resume=True, log=lambda *args, **kwargs: None, train=train)
    records = read_ledger(out)
    *_, rerun = records
    assert [r["phase"] for r in records] == ["search", "search", "reevaluation", "reevaluation"]
    assert (rerun["status"], rerun["seed"], rerun["key"]) == ("ok", 1, failed["key"])
    assert rerun["reevaluation_of"] == failed["reevaluation_of"]
    best = json.loads((out / BEST_FILE).read_text())
    assert best["key"] == failed["key"] == summary.best["key"]
    assert best["evaluations"] == 2 and best["seeds"] == [0, 1]
    assert best["rewards"][1] == rerun["reward"]


def test_a_killed_worker_is_retried(tiny_synth, tmp_path, env) -> None:
    """Infrastructure failures: the worker process of a running trial is SIGKILLed; Ray
    restarts the trial (max_failures) and the search still ends with every trial trained."""
    out = tmp_path / "search"
    args = [sys.executable, "-m", "nasfpn", "search", "--out", str(out), "--trials", "2",
            "--algorithm", "random", "--set", "num_cpus=2", "--set", "concurrent=1",
            "--set", "proxy.epochs=6", "--set", "reevaluate_top=0"]  # fmt: skip
    for key, value in {**TINY_PROXY, "data": str(tiny_synth)}.items():
        if key != "epochs":
            args += ["--set", f"proxy.{key}={'null' if value is None else value}"]
    driver = subprocess.Popen(args, start_new_session=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    killed = None
    deadline = time.time() + 240
    while killed is None and time.time() < deadline and driver.poll() is None:
        found = trial_workers()
        if found:
            time.sleep(1)  # let the trial start training
            try:
                os.kill(found[0], signal.SIGKILL)
                killed = found[0]
            except ProcessLookupError:  # that trial ended meanwhile: wait for the next one
                pass
        time.sleep(0.5)
    output, _ = driver.communicate(timeout=400)
    assert killed is not None, "no trial worker was found to kill"
    assert driver.returncode == 0, output[-3000:]
    # the kill was seen as a trial failure: on our console as a retry, in Ray's log as an error
    assert "[retry] trial_" in output, output[-3000:]
    assert "errored" in (out / "ray.log").read_text()
    records = read_ledger(out)
    assert len(records) == 2 and all(r["status"] == "ok" for r in records), records


def test_a_worker_node_removed_mid_search(tiny_synth, tmp_path, env) -> None:
    """Multi-node: a head with no CPUs and two 1-CPU worker nodes (ray.cluster_utils.Cluster,
    real raylets). One worker node is removed while both run a trial; Ray retries the lost
    trial on the remaining node and every trial is recorded."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        doomed = cluster.add_node(num_cpus=1)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        cfg = _cfg(tiny_synth, proxy={"epochs": 6}, trials=3, algorithm="random",
                   max_failures=2, address=cluster.address)  # fmt: skip
        removed = threading.Event()

        def remove_when_both_nodes_train() -> None:
            deadline = time.time() + 180
            while time.time() < deadline:
                if len(trial_workers()) >= 2:
                    time.sleep(1)
                    cluster.remove_node(doomed, allow_graceful=False)
                    removed.set()
                    return
                time.sleep(0.5)

        remover = threading.Thread(target=remove_when_both_nodes_train, daemon=True)
        remover.start()
        summary = run_search(cfg, tmp_path / "search")
        remover.join(timeout=5)
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    assert removed.is_set(), "the search ended before a worker node could be removed"
    records = read_ledger(tmp_path / "search")
    assert summary.trials == 3 and len(records) == 3
    assert sorted(r["controller_step"] for r in records) == [0, 1, 2]
    assert all(r["status"] == "ok" for r in records), [r["status"] for r in records]


def test_trials_cut_by_the_safety_limit_are_timeouts(tiny_synth, tmp_path, env, capsys) -> None:
    cfg = _cfg(tiny_synth, proxy={"max_train_seconds": 1e-6}, trials=2, algorithm="random")
    summary = run_search(cfg, tmp_path / "search")
    records = read_ledger(tmp_path / "search")
    assert [r["status"] for r in records] == ["timeout", "timeout"]
    assert all("safety limit" in r["error"] and r["metrics"]["iterations"] == 1 for r in records)
    assert summary.best is None  # a timeout is no reward
    assert "timeouts 2" in capsys.readouterr().out
