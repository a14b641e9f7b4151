"""Every ``--json`` prints exactly one JSON document on stdout; progress goes to stderr.

The commands run as the user runs them, as processes with their own standard output, so that
what Ray, the libraries and child processes write to the file descriptor counts too.
"""

import argparse
import json
import os
import subprocess
import sys

import pytest

from nasfpn.cli import build_parser

TINY_RETRAIN = ["model.repeats=1", "model.width=16", "model.head_convs=1", "epochs=1",
                "iters_per_epoch=2", "data.workers=0", "optim.warmup_iters=2", "log_every=1",
                "threads=1", "model.test.score_threshold=0.0"]  # fmt: skip
TINY_PROXY = ["holdout=8", "subset=1.0", "image_size=128", "repeats=1", "width=16",
              "head_convs=1", "epochs=1", "batch_size=8", "workers=0", "threads=1",
              "warmup_iters=2", "max_train_seconds=null", "eval_every=1"]  # fmt: skip
# commands whose --json is checked by a test elsewhere, as a process too
ELSEWHERE = {"fidelity": "tests/fidelity/test_fidelity.py (the resumed study)"}


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def nasfpn_json(*args: str, env: dict[str, str]) -> tuple[object, str]:
    """Run ``nasfpn ARGS --json``; its stdout parsed (it must be one JSON document), stderr."""
    done = subprocess.run([sys.executable, "-m", "nasfpn", *args, "--json"], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), done.stderr


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "NASFPN_CACHE": str(cache), "OMP_NUM_THREADS": "1"}


def _commands_with_json() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        name
        for name, command in sub.choices.items()
        if any("--json" in action.option_strings for action in command._actions)
    }


TESTED = {"inspect", "bench-search", "proxy-train", "retrain", "predict", "evaluate"}


def test_every_command_with_json_is_tested() -> None:
    assert _commands_with_json() == TESTED | set(ELSEWHERE)


def test_inspect_and_bench_search(env) -> None:
    summary, _ = nasfpn_json("inspect", "nasfpn", env=env)
    assert summary["params"]["total"] > 0
    bench, _ = nasfpn_json("bench-search", "--algorithm", "random", "--landscape", "match",
                           "--samples", "30", "--seeds", "2", "--noise", "0.1",
                           env=env)  # fmt: skip
    assert len(bench["results"]) == 1 and bench["results"][0]["samples"] == 30


def test_proxy_train_progress_goes_to_stderr(tiny_synth, env) -> None:
    result, err = nasfpn_json("proxy-train", "nasfpn", "--data", str(tiny_synth),
                              *_sets([*TINY_PROXY, "epochs=2"]), env=env)  # fmt: skip
    assert result["status"] == "ok" and result["epochs"] == 2
    assert "epoch   1  AP" in err


def test_retrain_predict_evaluate_chain(tiny_synth, env, tmp_path) -> None:
    dry, _ = nasfpn_json("retrain", "nasfpn", "--data", str(tiny_synth), "--dry-run",
                         *_sets(TINY_RETRAIN), env=env)  # fmt: skip
    assert dry["model_summary"]["params"]["total"] > 0
    out = tmp_path / "run"
    summary, err = nasfpn_json("retrain", "nasfpn", "--data", str(tiny_synth), "--out", str(out),
                               *_sets(TINY_RETRAIN), env=env)  # fmt: skip
    assert summary["status"] == "ok" and "AP" in summary["final"]
    assert "epoch 1/1" in err  # the progress of the run, on stderr
    val = json.loads((tiny_synth / "annotations" / "instances_val.json").read_text())
    images = [str(tiny_synth / "val" / img["file_name"]) for img in val["images"]]
    checkpoint = sorted((out / "checkpoints").glob("epoch_*.pt"))[-1]
    predicted, _ = nasfpn_json("predict", str(checkpoint), *images, "--out", str(tmp_path / "p"),
                               "--score-threshold", "0.0", env=env)  # fmt: skip
    assert len(predicted["images"]) == len(images)
    metrics, _ = nasfpn_json("evaluate", "--annotations",
                             str(tiny_synth / "annotations" / "instances_val.json"),
                             "--predictions", predicted["results"], env=env)  # fmt: skip
    assert 0.0 <= metrics["AP"] <= 1.0
