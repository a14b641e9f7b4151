"""Distributed retraining on CPU: 2-process DDP (gloo) under torchrun, and Ray Train."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

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


# Run by torchrun in place of `-m nasfpn`: the command line, with the loss of rank 1 made NaN
# at one iteration (nothing in the configuration can do that), and the SHA-256 of every
# checkpoint recorded the moment it is written.
POISON = textwrap.dedent(
    """
    import hashlib, os, sys
    from pathlib import Path

    from nasfpn.cli import main
    from nasfpn.model.retinanet import RetinaNet
    from nasfpn.retrain import run

    at, record, argv = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    loss, save_checkpoint = RetinaNet.loss, run._Run.save_checkpoint
    calls = 0

    def poisoned_loss(self, outputs, targets):
        global calls
        losses = loss(self, outputs, targets)
        if os.environ["RANK"] == "1" and calls == at:
            losses["loss_cls"] = losses["loss_cls"] * float("nan")
        calls += 1  # one call per step: evaluation does not compute the loss
        return losses

    def recorded_save_checkpoint(self, state):
        save_checkpoint(self, state)
        if self.info.main:
            path = run.checkpoint_path(self.out, state.epoch)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            (record / f"{path.name}.sha256").write_text(digest)

    RetinaNet.loss = poisoned_loss
    run._Run.save_checkpoint = recorded_save_checkpoint
    sys.exit(main(argv))
    """
)


# Two epochs of 2 steps; the loss of rank 1 is NaN at iteration 3, the last of epoch 2, after
# epoch 1's checkpoint, then a resume: about 35 s on the shared 2-core machine (the torchrun
# start-up of two processes dominates, as in the test above).
def test_torchrun_nonfinite_loss_on_one_rank_stops_every_rank(
    tiny_synth, tmp_path, monkeypatch, capsys
) -> None:
    out, record = tmp_path / "ddp", tmp_path / "record"
    record.mkdir()
    script = tmp_path / "poisoned_nasfpn.py"
    script.write_text(POISON)
    env = {**os.environ, "NASFPN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", str(script), "3", str(record), "retrain", "nasfpn", "--out", str(out),
           *tiny_args(tiny_synth, "epochs=2")]  # fmt: skip
    # a rank left waiting in a collective would hang: the timeout fails the test instead
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    errors = [line for line in proc.stderr.splitlines() if line.startswith("nasfpn retrain:")]
    reason = (
        "loss is not finite at iteration 3 (epoch 1) on rank 1 of 2: rank 1: {'loss_cls': nan, "
    )
    assert len(errors) == 2 and errors[0] == errors[1], proc.stderr[-3000:]
    assert errors[0].startswith(f"nasfpn retrain: error: training diverged: {reason}")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged"
    assert errors[0] == f"nasfpn retrain: error: training diverged: {metrics['reason']}"
    assert (metrics["epoch"], metrics["iteration"]) == (1, 3) and metrics["final"] is None
    assert metrics["replicas_in_sync"]  # no rank stepped with the bad loss

    # epoch 1's checkpoint is the one written then, byte for byte; nothing of the diverged state
    ckpt_file = out / "checkpoints" / "epoch_0001.pt"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0001.pt"]
    assert not [p for p in out.rglob(".*tmp*")]
    recorded = (record / "epoch_0001.pt.sha256").read_text()
    assert hashlib.sha256(ckpt_file.read_bytes()).hexdigest() == recorded
    ckpt = load_checkpoint(ckpt_file)
    assert (ckpt["epoch"], ckpt["iteration"], ckpt["world_size"]) == (1, 2, 2)

    # and the run resumes from it (one process here: cheaper, and the same checkpoint)
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))
    assert main(["retrain", "nasfpn", "--out", str(out), "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok" and (metrics["epoch"], metrics["iteration"]) == (2, 4)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0002.pt"]


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
