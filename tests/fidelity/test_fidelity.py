"""The fidelity study: its reference set, its plan, its errors, and a tiny study on real Ray
that is SIGKILLed and resumed."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest
from scipy import stats

from nasfpn import config as config_io
from nasfpn.cli import main
from nasfpn.fidelity import FidelityConfig, plan, reference_set
from nasfpn.fidelity.study import reused
from nasfpn.search.ledger import Ledger
from nasfpn.space import NASFPN, SearchSpace

# a study of seconds on the tiny set: 8-epoch proxy runs (24 steps) and 16-step retrainings
# that reach a small but nonzero AP (so that the ranks mean something), one CPU thread each
PROXY = {"holdout": 8, "subset": 1.0, "image_size": 128, "repeats": 1, "width": 16,
         "head_convs": 1, "epochs": 8, "lr": 0.005, "batch_size": 8, "workers": 0,
         "threads": 1, "warmup_iters": 2}  # fmt: skip
RETRAIN = ["model.repeats=1", "model.width=16", "model.head_convs=1", "epochs=4",
           "optim.lr=0.005", "optim.warmup_iters=2", "data.workers=0", "threads=1"]  # fmt: skip


def test_reference_set_is_fixed_by_its_seed_and_has_no_repeats(tmp_path) -> None:
    cfg = FidelityConfig(genotypes=5, seed=3, include=("nasfpn",))
    first, again = reference_set(cfg), reference_set(cfg)
    assert first == again and [e["name"] for e in first] == ["nasfpn"] + [
        f"random-{i}" for i in range(5)
    ]  # fmt: skip
    assert first[0]["key"] == NASFPN.key() and len({e["key"] for e in first}) == 6
    other = reference_set(FidelityConfig(genotypes=5, seed=4))
    assert [e["key"] for e in other] != [e["key"] for e in first]
    path = tmp_path / "arch.json"
    SearchSpace().decode(SearchSpace().sample(random.Random(9))).save(path)
    named = reference_set(FidelityConfig(genotypes=0, published=False, include=(str(path),)))
    assert [e["name"] for e in named] == ["arch"]


def test_reference_set_takes_the_top_of_a_search(tmp_path) -> None:
    space = SearchSpace()
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for step, ap in enumerate((0.1, 0.3, 0.2)):
        genotype = space.decode(space.sample(random.Random(step)))
        ledger.append({"trial_id": f"t{step}", "controller_step": step, "key": genotype.key(),
                       "genotype": genotype.to_dict(), "reward": ap, "status": "ok",
                       "duplicate_of": None, "metrics": {}})  # fmt: skip
    entries = reference_set(FidelityConfig(genotypes=0, published=False,
                                           from_search=str(tmp_path), top=2))  # fmt: skip
    keys = [r["key"] for r in ledger.records]
    assert [(e["name"], e["key"]) for e in entries] == [("search-1", keys[1]),
                                                        ("search-2", keys[2])]  # fmt: skip
    with pytest.raises(FileNotFoundError, match="holds no search ledger"):
        reference_set(FidelityConfig(from_search=str(tmp_path / "none")))


def test_plan_puts_the_long_retrainings_first() -> None:
    reference = reference_set(FidelityConfig(genotypes=1))
    jobs = plan(FidelityConfig(seeds=2), reference, proxy_seed=5)
    assert [(j.kind, j.name, j.seed) for j in jobs] == [
        ("retrain", "nasfpn", 0), ("retrain", "random-0", 0),
        ("proxy", "nasfpn", 5), ("proxy", "nasfpn", 6),
        ("proxy", "random-0", 5), ("proxy", "random-0", 6),
    ]  # fmt: skip
    assert len({j.id for j in jobs}) == 6


def test_reuse_takes_finished_jobs_of_the_same_configuration(tmp_path) -> None:
    jobs = plan(FidelityConfig(seeds=1), reference_set(FidelityConfig(genotypes=1)), 0)
    other = Ledger(tmp_path / "fidelity.jsonl")
    hashes = {"proxy": "p1", "retrain": "r1"}
    for job, status, config_hash in zip(jobs, ("ok", "ok", "failed", "ok"),
                                        ("r1", "r0", "p1", "p0")):  # fmt: skip
        other.append({"job": job.id, "kind": job.kind, "key": job.key, "name": "old",
                      "status": status, "AP": 0.3, "config_hash": config_hash})  # fmt: skip
    taken = reused(jobs, tmp_path, hashes)
    # only the first: the second had another retrain configuration, the third failed, the
    # fourth had another proxy configuration
    assert [r["job"] for r in taken] == [jobs[0].id]
    assert taken[0]["reused_from"] == str(tmp_path) and taken[0]["name"] == jobs[0].name
    with pytest.raises(FileNotFoundError, match=r"holds no fidelity\.jsonl"):
        reused(jobs, tmp_path / "none", hashes)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0"], "seeds=0 must be at least 1"),
        (["--genotypes", "-1"], "genotypes=-1 must be at least 0"),
        (["--set", "proxy.epoch=3"], "unknown key 'proxy.epoch'"),
        (["--set", "retrain.optim.learning_rate=1"], "unknown key 'retrain.optim.learning_rate'"),
        (["--set", "retrain.epochs=two"], "retrain.epochs: expected an integer"),
        (["--set", "concurrency=2"], "unknown key 'concurrency'"),
        (["--retrain", "huge"], "retrain preset 'huge' is unknown"),
        (["--include", "fpn"], "not 'fpn'"),
        (["--resume", "{tmp}", "--seeds", "2"], "--seeds cannot be given with it"),
        (["--resume", "{tmp}"], "holds no fidelity_config.yaml"),
    ],
)
def test_errors_are_one_line(argv, message, tmp_path, capsys) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["fidelity", "--out", str(tmp_path / "s"), *argv] if "--resume" not in argv
                else ["fidelity", *argv]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "s" / "fidelity.jsonl").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_address_fails_before_anything_is_written(tmp_path, capsys) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    out = tmp_path / "s"
    assert main(["fidelity", "--genotypes", "1", "--address", address, "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and f"no Ray cluster answers at {address}" in errors[0]
    assert not out.exists()
    # a resume: the address of its saved configuration, or the one given with --resume
    out.mkdir()
    config_io.save(FidelityConfig(genotypes=1, address=address), out / "fidelity_config.yaml")
    for extra in ([], ["--address", address]):
        assert main(["fidelity", "--resume", str(out), *extra]) == 2
        assert f"no Ray cluster answers at {address}" in capsys.readouterr().err
        assert [p.name for p in out.iterdir()] == ["fidelity_config.yaml"]


def test_a_tiny_study_on_ray_killed_and_resumed(tiny_synth, tmp_path, monkeypatch) -> None:
    out = tmp_path / "study"
    # Ray prints its token notice only where RAY_AUTH_MODE is unset, and a ray.init earlier in
    # this pytest process sets it: a user's shell, as the README's commands meet it, has none
    env = {**os.environ, "NASFPN_CACHE": str(tmp_path / "cache")}
    env.pop("RAY_AUTH_MODE", None)
    args = [sys.executable, "-m", "nasfpn", "fidelity", "--genotypes", "3", "--seeds", "1",
            "--out", str(out), "--set", "num_cpus=2", "--set", f"proxy.data={tiny_synth}",
            "--set", f"retrain.data.root={tiny_synth}"]  # fmt: skip
    for key, value in PROXY.items():
        args += ["--set", f"proxy.{key}={value}"]
    for item in RETRAIN:
        args += ["--set", f"retrain.{item}"]
    driver = subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    ledger = out / "fidelity.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and driver.poll() is None:
        if ledger.is_file() and len(ledger.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray instance it started
    driver.wait()
    before = ledger.read_text().splitlines()
    assert 2 <= len(before) < 8, "the study ended before it could be killed"

    (out / "ray.log").unlink(missing_ok=True)  # the killed driver's
    resumed = subprocess.run([sys.executable, "-m", "nasfpn", "fidelity", "--resume", str(out),
                              "--json"], env=env, capture_output=True, text=True,
                             timeout=400)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout)  # exactly one JSON document on stdout
    # Ray's messages (its token notice) are in ray.log; the study's own lines on the console
    assert "Token authentication" not in resumed.stdout + resumed.stderr, resumed.stderr[-3000:]
    assert "Token authentication" in (out / "ray.log").read_text()
    progress = [line for line in resumed.stderr.splitlines() if line.startswith("[")]
    assert progress and "/8] ok" in progress[-1], resumed.stderr[-3000:]
    lines = ledger.read_text().splitlines()
    assert lines[: len(before)] == before  # nothing finished is lost or rewritten
    jobs = [json.loads(line)["job"] for line in lines]
    assert len(jobs) == len(set(jobs)) == 8  # 4 retrainings + 4 proxy runs, none run twice
    for record in map(json.loads, lines):  # where each job ran, in what precision
        assert record["precision"] in ("fp32", "bf16") and record["cpu_model"], record
    assert summary["genotypes"] == summary["complete"] == summary["n"] == 4
    rows = summary["rows"]
    assert [r["name"] for r in rows] == ["nasfpn", "random-0", "random-1", "random-2"]
    assert all(r["proxy_runs"] == 1 and r["retrain_ap"] is not None for r in rows)
    # the figures are those of its own rows
    proxy, retrain = [r["proxy_ap"] for r in rows], [r["retrain_ap"] for r in rows]
    assert len(set(proxy)) == len(set(retrain)) == 4, (proxy, retrain)  # rankings to compare
    assert summary["kendall_tau"] == pytest.approx(stats.kendalltau(proxy, retrain)[0])
    assert summary["spearman"] == pytest.approx(stats.spearmanr(proxy, retrain)[0])
    assert summary["tau_by_epoch"][-1]["tau"] == pytest.approx(summary["kendall_tau"])
    low, high = summary["tau_ci"]
    assert -1 <= low <= high <= 1
    assert [e["epoch"] for e in summary["tau_by_epoch"]] == list(range(1, 9))
    assert (out / "fidelity.json").is_file() and (out / "fidelity.png").is_file()
    assert sorted(p.name for p in (out / "retrain").iterdir()) == sorted(r["key"] for r in rows)

    # the same study scored on shared weights, reusing every training: no Ray job runs
    from nasfpn.supernet import SupernetConfig, train_supernet

    monkeypatch.setenv("NASFPN_CACHE", env["NASFPN_CACHE"])
    folder = tmp_path / "supernet"
    train_supernet(SupernetConfig(proxy={**PROXY, "data": str(tiny_synth)}, steps=6,
                                  bn_batches=1, threads=1), folder)  # fmt: skip
    again = tmp_path / "shared"
    scored = subprocess.run([*args[: args.index("--out")], "--out", str(again), *args[
        args.index("--out") + 2 :], "--reuse", str(out), "--supernet", str(folder), "--json"],
        env=env, capture_output=True, text=True, timeout=400)  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-3000:]
    shared = json.loads(scored.stdout)
    records = [json.loads(line) for line in (again / "fidelity.jsonl").read_text().splitlines()]
    assert sorted(r["kind"] for r in records if "reused_from" not in r) == ["supernet"] * 4
    assert not (again / "ray.log").exists()  # nothing needed Ray
    scores = [r["supernet_ap"] for r in shared["rows"]]
    assert all(s is not None for s in scores)
    side = shared["supernet"]["vs_retrain"]
    expected = stats.kendalltau(scores, retrain)[0]  # NaN when every score is the same
    assert side["kendall_tau"] == (None if expected != expected else pytest.approx(expected))
    assert side["n"] == 4 and shared["kendall_tau"] == summary["kendall_tau"]
    assert "(shared weights)" in scored.stderr
