"""A real multi-process Ray cluster, started the way users start one: `ray start --head`, a second
node with `ray start --address`, a search that joins it by --address (token authentication on,
as Ray 2.60 has it by default) and another submitted with `ray job submit`. The second node's
raylet is killed mid-search; every trial is still recorded. Only the processes this test
started are stopped (never `ray stop`, which stops every Ray on the machine)."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import TINY_PROXY

from nasfpn.search import read_ledger

BIN = Path(sys.executable).parent
RAY = str(BIN / "ray")
MARK = "NASFPN_TEST_CLUSTER"
RETRAIN = ["model.repeats=1", "model.width=16", "model.head_convs=1", "epochs=1",
           "iters_per_epoch=2", "data.workers=0", "optim.warmup_iters=2", "threads=1"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # ended meanwhile, or not ours to read
        return []


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class RayCluster:
    """`ray start` processes of one test: its own HOME (so its own token), temp dir and ports;
    every process it starts carries ``NASFPN_TEST_CLUSTER=<id>`` in its environment."""

    def __init__(self, cache: Path) -> None:
        # short: Ray's socket paths live under the temp dir and must stay under 108 characters
        self.root = Path(tempfile.mkdtemp(prefix="nrc", dir="/tmp"))
        self.mark = f"{MARK}={uuid.uuid4().hex}".encode()
        home = self.root / "h"
        home.mkdir()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}  # fmt: skip
        self.env = {**env, "HOME": str(home), MARK: self.mark.decode().split("=", 1)[1],
                    "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                    "NASFPN_CACHE": str(cache)}  # fmt: skip
        self.port, self.dashboard = _free_port(), _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._ray("get-auth-token", "--generate")  # token authentication on, Ray's default

    def _ray(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        done = subprocess.run([RAY, *args], env={**self.env, **env}, capture_output=True,
                              text=True, timeout=180)  # fmt: skip
        assert done.returncode == 0, f"ray {' '.join(args)}: {done.stdout[-2000:]}{done.stderr}"
        return done

    def raylets(self) -> set[int]:
        return {pid for pid in self.pids() if "/raylet " in _cmdline(pid)}

    def start_head(self) -> None:
        self._ray("start", "--head", "--port", str(self.port), "--num-cpus", "1",
                  "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.dashboard),
                  "--ray-client-server-port", str(_free_port()),
                  "--dashboard-agent-listen-port", str(_free_port()),
                  "--temp-dir", str(self.root / "t"), "--disable-usage-stats")  # fmt: skip

    def add_node(self) -> int:
        """A second node of one CPU; returns its raylet's pid. Ray's own `ray start
        --address` does not turn token mode on by itself: RAY_AUTH_MODE=token, as
        docs/search.md says."""
        before = self.raylets()
        self._ray("start", "--address", self.address, "--num-cpus", "1",
                  "--dashboard-agent-listen-port", str(_free_port()),
                  RAY_AUTH_MODE="token")  # fmt: skip
        (raylet,) = self.raylets() - before
        return raylet

    def pids(self) -> set[int]:
        own = os.getpid()
        return {int(p) for p in os.listdir("/proc")
                if p.isdigit() and int(p) != own and self.mark in _environ(int(p))}  # fmt: skip

    def stop(self) -> None:
        for _ in range(20):
            alive = self.pids()
            if not alive:
                break
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)


def _search_args(synth, out: Path, trials: int) -> list[str]:
    args = [
        "search",
        "--out",
        str(out),
        "--trials",
        str(trials),
        "--algorithm",
        "random",
        "--set",
        "reevaluate_top=0",
        "--set",
        "concurrent=2",
        "--set",
        "proxy.epochs=6",
    ]
    for key, value in {**TINY_PROXY, "data": str(synth)}.items():
        if key != "epochs":
            args += ["--set", f"proxy.{key}={'null' if value is None else value}"]
    return args


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One head for the module's tests (started once: a head takes ~15 s to come up)."""
    c = RayCluster(tmp_path_factory.mktemp("cluster") / "cache")
    try:
        c.start_head()
        yield c
    finally:
        c.stop()
    assert not c.pids(), "a process of the test cluster outlived it"


def test_joining_fails_in_one_line(tmp_path, cluster) -> None:
    base = [sys.executable, "-m", "nasfpn", "search", "--trials", "2"]
    no_token = {**cluster.env, "HOME": str(tmp_path)}  # a machine without the head's token
    cases = [
        (no_token, cluster.address, "uses token authentication and this machine has no token"),
        ({**no_token, "RAY_AUTH_TOKEN": "not-the-token"}, cluster.address,
         "refused the token from RAY_AUTH_TOKEN"),
        (cluster.env, f"127.0.0.1:{_free_port()}", "no Ray cluster answers at 127.0.0.1:"),
        (cluster.env, "127.0.0.1", "expected HOST:PORT of a Ray head"),
    ]  # fmt: skip
    for i, (env, address, message) in enumerate(cases):
        done = subprocess.run([*base, "--out", str(tmp_path / f"s{i}"), "--address", address],
                              env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and message in errors[0], done.stderr
        assert not (tmp_path / f"s{i}").exists()  # checked before the folder is written


def test_a_search_joins_a_ray_start_cluster_and_one_is_submitted_as_a_job(
    tiny_synth, tmp_path, cluster
) -> None:
    """Ray Train by --address, a search by --address with a node lost, a search as a job."""
    worker_raylet = cluster.add_node()

    # Ray Train retraining by --address (one worker; the two nodes have a CPU each)
    retrained = subprocess.run(
        [sys.executable, "-m", "nasfpn", "retrain", "nasfpn", "--ray-workers", "1",
         "--address", cluster.address, "--data", str(tiny_synth), "--out", str(tmp_path / "rt"),
         "--json", *[a for item in RETRAIN for a in ("--set", item)]],
        env=cluster.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    assert json.loads(retrained.stdout)["status"] == "ok"

    # joined by --address, given only the token file `ray start` used (in its HOME)
    out = tmp_path / "joined"
    args = [sys.executable, "-m", "nasfpn", *_search_args(tiny_synth, out, 4),
            "--address", cluster.address]  # fmt: skip
    driver = subprocess.Popen(args, env=cluster.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    killed = threading.Event()

    def kill_the_second_node_when_it_trains() -> None:
        deadline = time.time() + 240
        while time.time() < deadline and driver.poll() is None:
            on_it = [p for p in cluster.pids() if _ppid(p) == worker_raylet
                     and "ImplicitFunc" in _cmdline(p)]  # fmt: skip
            if on_it:
                time.sleep(1)
                os.kill(worker_raylet, signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.3)

    killer = threading.Thread(target=kill_the_second_node_when_it_trains, daemon=True)
    killer.start()
    output, _ = driver.communicate(timeout=600)
    killer.join(timeout=5)
    assert driver.returncode == 0, output[-3000:]
    assert killed.is_set(), "no trial ran on the second node"
    records = read_ledger(out)
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}, records
    assert sorted(r["controller_step"] for r in records) == [0, 1, 2, 3]
    assert "InvalidAuthToken" not in output and "Traceback" not in output

    # submitted as a job, from this environment (the jobs CLI reads the same token)
    job_out = tmp_path / "job"
    workdir = tmp_path / "job-dir"
    workdir.mkdir()
    submit = subprocess.run(
        [RAY, "job", "submit", "--address", f"http://127.0.0.1:{cluster.dashboard}",
         "--working-dir", str(workdir), "--", "python", "-m", "nasfpn",
         *_search_args(tiny_synth, job_out, 2)],
        env={**cluster.env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-2000:]
    assert "succeeded" in submit.stdout + submit.stderr
    assert [r["status"] for r in read_ledger(job_out)] == ["ok", "ok"]


def test_shared_weights_trained_and_searched_on_a_ray_start_cluster(
    tiny_synth, tmp_path, cluster
) -> None:
    """`nasfpn supernet train --address` trains as a task on the cluster; a search joined by
    --address scores on those weights with actors there, then re-evaluates stand-alone."""
    proxy = [a for k, v in {**TINY_PROXY, "data": str(tiny_synth)}.items()
             for a in ("--set", f"proxy.{k}={'null' if v is None else v}")]  # fmt: skip
    folder = tmp_path / "supernet"
    trained = subprocess.run(
        [sys.executable, "-m", "nasfpn", "supernet", "train", "--address", cluster.address,
         "--out", str(folder), "--json", "--set", "steps=3", "--set", "bn_batches=1",
         "--set", "threads=1", *proxy],
        env=cluster.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert json.loads(trained.stdout.splitlines()[-1])["status"] == "ok"

    out = tmp_path / "oneshot"
    searched = subprocess.run(
        [sys.executable, "-m", "nasfpn", "search", "--reward", "supernet", "--supernet",
         str(folder), "--address", cluster.address, "--out", str(out), "--trials", "4",
         "--algorithm", "random", "--set", "concurrent=1", "--set", "reevaluate_top=1", *proxy],
        env=cluster.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert searched.returncode == 0, searched.stdout[-3000:] + searched.stderr[-2000:]
    records = read_ledger(out)
    assert [r["reward_source"] for r in records] == ["supernet"] * 4 + ["proxy"]
    assert records[-1]["phase"] == "reevaluation" and records[-1]["status"] == "ok"
