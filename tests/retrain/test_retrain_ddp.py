"""Distributed retraining on CPU: 2-process DDP (gloo) under torchrun, and Ray Train."""

import json
import os
import subprocess
import sys

import pytest
from retrain_helpers import tiny_args

from nasfpn.cli import main
from nasfpn.retrain import load_checkpoint


def test_torchrun_two_processes(tiny_synth, tmp_path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "NASFPN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    # 40 images: 20 per process, batch 8 each (16 in all) -> 2 steps in the epoch; base_batch 8
    # with scale_lr doubles the learning rate
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "nasfpn", "retrain", "nasfpn", "--out", str(out),
           *tiny_args(tiny_synth, "iters_per_epoch=null", "scale_lr=true")]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["world_size"] == 2
    assert (metrics["epoch"], metrics["iteration"]) == (1, 2)
    digests = metrics["weights_digests"]
    assert len(digests) == 2 and digests[0] == digests[1] and metrics["replicas_in_sync"]
    assert metrics["lr"] == pytest.approx(0.004)  # 0.002 x 16 / 8
    assert [h["epoch"] for h in metrics["history"]] == [1]
    assert 0.0 <= metrics["final"]["AP"] <= 1.0
    # rank 0 alone writes: one checkpoint, no temporary files, one log line per event
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0001.pt"]
    assert not [p for p in out.rglob(".*tmp*")]
    assert proc.stdout.count("done: AP") == 1
    ckpt = load_checkpoint(out / "checkpoints" / "epoch_0001.pt")
    assert ckpt["world_size"] == 2 and not any(k.startswith("module.") for k in ckpt["model"])


# A real local Ray with Ray Train's controller and two workers: about 35 s on the idle 2-core
# machine (Ray's start-up dominates).
def test_ray_train_two_workers(tiny_synth, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ray"
    try:
        code = main(["retrain", "nasfpn", "--out", str(out), "--ray-workers", "2",
                     *tiny_args(tiny_synth, "iters_per_epoch=null")])  # fmt: skip
    finally:
        import ray

        ray.shutdown()
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["world_size"] == 2
    assert metrics["replicas_in_sync"] and metrics["iteration"] == 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0001.pt"]
