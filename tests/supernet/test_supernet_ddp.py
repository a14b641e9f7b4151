"""Shared weights trained by several processes on CPU: 2-process DDP (gloo) under torchrun, killed
and resumed exactly, and Ray Train's workers through ``--ray-workers``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import TINY_PROXY, kill_after_lines

from nasfpn.cli import main

PROXY = {k: v for k, v in TINY_PROXY.items() if k not in ("eval_every", "max_train_seconds")}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def _args(data, *extra: str) -> list[str]:
    # batch 8 split into 4 images per process; 32 proxy-train images: 4 steps a pass
    args = ["--set", f"proxy.data={data}", "--set", "steps=6", "--set", "checkpoint_every=2",
            "--set", "threads=1", "--set", "bn_batches=1"]  # fmt: skip
    for key, value in PROXY.items():
        args += ["--set", f"proxy.{key}={value}"]
    for item in extra:
        args += ["--set", item]
    return args


def _log(folder) -> list[dict]:
    lines = (folder / "train_log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def _weights(folder) -> dict[str, torch.Tensor]:
    return torch.load(folder / "checkpoint.pt", weights_only=True)["model"]


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "NASFPN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def test_two_processes_train_one_run_and_resume_it_exactly(tiny_synth, tmp_path, env) -> None:
    whole, cut, single = tmp_path / "whole", tmp_path / "cut", tmp_path / "single"
    command = [*TORCHRUN, "-m", "nasfpn", "supernet", "train", *_args(tiny_synth)]
    done = subprocess.run([*command, "--out", str(whole)], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((whole / "supernet.json").read_text())
    assert summary["status"] == "ok" and summary["steps"] == 6
    assert summary["extra"]["world_size"] == 2
    assert done.stdout.count("ok: 6 steps") == 1  # rank 0 alone prints
    assert done.stdout.count("(2 processes)") == 1
    assert [e["step"] for e in _log(whole)] == [1, 2, 3, 4, 5, 6]
    saved = torch.load(whole / "checkpoint.pt", weights_only=True)
    assert saved["world_size"] == 2 and not any(k.startswith(("module.", "net.")) for k in
                                                 saved["model"])  # fmt: skip
    assert not [p for p in whole.iterdir() if p.name.startswith(".")]  # no temporary files

    # killed with SIGKILL after a checkpoint, resumed by two processes: the same weights
    kill_after_lines([*command, "--out", str(cut)], cut / "train_log.jsonl", 2, env)
    assert not (cut / "supernet.json").exists(), "the training ended before it could be killed"
    resumed = subprocess.run([*TORCHRUN, "-m", "nasfpn", "supernet", "train", "--resume",
                              str(cut)], env=env, capture_output=True, text=True,
                             timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    a, b = _weights(whole), _weights(cut)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _log(cut) == _log(whole)

    # one process runs the same recipe: the same paths step by step, its weights its own
    one = subprocess.run([sys.executable, "-m", "nasfpn", "supernet", "train", "--out",
                          str(single), *_args(tiny_synth)], env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    assert [e["paths"] for e in _log(single)] == [e["paths"] for e in _log(whole)]
    assert json.loads((single / "supernet.json").read_text())["extra"]["world_size"] == 1


def test_a_batch_that_does_not_split_among_the_processes_is_refused(
    tiny_synth, tmp_path, env
) -> None:
    out = tmp_path / "odd"
    done = subprocess.run([*TORCHRUN, "-m", "nasfpn", "supernet", "train", "--out", str(out),
                           *_args(tiny_synth, "proxy.batch_size=7")], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode != 0
    assert "proxy.batch_size=7 does not split evenly among 2 processes" in done.stderr


def test_ray_train_workers_train_one_run(tiny_synth, tmp_path, env, capsys, monkeypatch) -> None:
    monkeypatch.setenv("NASFPN_CACHE", env["NASFPN_CACHE"])
    out = tmp_path / "ray"
    try:
        code = main(["supernet", "train", "--out", str(out), "--ray-workers", "2", "--json",
                     *_args(tiny_synth, "steps=4")])  # fmt: skip
    finally:
        import ray

        ray.shutdown()
    assert code == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["status"] == "ok" and printed["steps"] == 4
    assert printed["extra"]["world_size"] == 2
    assert [e["step"] for e in _log(out)] == [1, 2, 3, 4]
    # the folder Ray Train keeps its storage in does not make the folder "not empty" to a
    # resume, which finds the run finished
    assert main(["supernet", "train", "--resume", str(out)]) == 0
    capsys.readouterr()
    assert main(["supernet", "train", "--out", str(tmp_path / "x"), "--ray-gpu"]) == 2
    assert "add --ray-workers N" in capsys.readouterr().err
    assert main(["supernet", "train", "--out", str(out), "--ray-workers", "2"]) == 2
    assert "is not empty" in capsys.readouterr().err
