"""``nasfpn supernet train`` killed with SIGKILL and resumed, then ``eval --json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from conftest import TINY_PROXY, kill_after_lines

from nasfpn.cli import main

PROXY = {k: v for k, v in TINY_PROXY.items() if k not in ("eval_every", "max_train_seconds")}


def _args(data) -> list[str]:
    args = ["--set", f"proxy.data={data}", "--set", "steps=30", "--set", "checkpoint_every=5",
            "--set", "threads=1", "--set", "bn_batches=1"]  # fmt: skip
    for key, value in PROXY.items():
        args += ["--set", f"proxy.{key}={value}"]
    return args


def test_killed_resumed_and_scored_from_the_command_line(tiny_synth, tmp_path, capsys) -> None:
    env = {**os.environ, "NASFPN_CACHE": str(tmp_path / "cache")}
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    command = [sys.executable, "-m", "nasfpn", "supernet", "train", *_args(tiny_synth)]
    done = subprocess.run([*command, "--out", str(whole), "--json"], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["steps"] == 30  # one JSON document on stdout

    kill_after_lines([*command, "--out", str(cut)], cut / "train_log.jsonl", 10, env)
    assert not (cut / "supernet.json").exists(), "the training ended before it could be killed"
    resumed = subprocess.run([sys.executable, "-m", "nasfpn", "supernet", "train", "--resume",
                              str(cut)], env=env, capture_output=True, text=True,
                             timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(whole / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(cut / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # same weights as the run never killed
    steps = [
        json.loads(line)["step"] for line in (cut / "train_log.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, 31))

    os.environ["NASFPN_CACHE"] = env["NASFPN_CACHE"]
    try:
        assert main(["supernet", "eval", str(cut), "nasfpn", "nasfpn", "--json"]) == 0
    finally:
        del os.environ["NASFPN_CACHE"]
    report = json.loads(capsys.readouterr().out)
    first, second = report["results"]
    assert first["arch"] == "nasfpn" and set(first) >= {"arch", "key", "AP", "seconds"}
    assert first["AP"] == second["AP"]


def test_resume_takes_no_other_settings(tmp_path, capsys) -> None:
    assert main(["supernet", "train", "--resume", str(tmp_path), "--set", "steps=3"]) == 2
    assert "drop --config, --set and --out" in capsys.readouterr().err
    assert main(["supernet", "train", "--resume", str(tmp_path)]) == 2
    assert "not a supernet folder" in capsys.readouterr().err
    assert main(["supernet", "eval", str(tmp_path / "nothing"), "nasfpn"]) == 2
    assert "does not exist" in capsys.readouterr().err
