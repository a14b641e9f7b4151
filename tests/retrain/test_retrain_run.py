"""Tiny retraining runs on tiny_synth: outputs, resume equality, anytime exits, refusals."""

import json

import pytest
import torch
from retrain_helpers import tiny, tiny_args

from nasfpn.cli import main
from nasfpn.model import BackboneWeightsError, ResNet
from nasfpn.retrain import (
    AnytimeRetinaNet,
    CheckpointError,
    build_model,
    latest_checkpoint,
    load_checkpoint,
    load_retrain_config,
    retrain,
)
from nasfpn.space import NASFPN
from nasfpn.train_loop import Hook


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))


def test_tiny_retrain_writes_its_folder_and_a_finite_ap(tiny_synth, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["retrain", "nasfpn", "--out", str(out), *tiny_args(tiny_synth, "epochs=2",
                 "eval_every=1"), "--json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok" and (metrics["epoch"], metrics["iteration"]) == (2, 4)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert 0.0 <= metrics["final"]["AP"] <= 1.0 and summary["final"] == metrics["final"]
    assert metrics["replicas_in_sync"] and metrics["world_size"] == 1
    assert metrics["precision"] in ("fp32", "bf16") and metrics["cpu_model"]
    assert metrics["gpu_model"] is None
    # keep_checkpoints=1 (cpu-tiny): only the newest epoch, and no temporary file left behind
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0002.pt"]
    ckpt = load_checkpoint(out / "checkpoints" / "epoch_0002.pt")
    assert (ckpt["epoch"], ckpt["iteration"], ckpt["scheduler"]["iteration"]) == (2, 4, 4)
    assert ckpt["config"]["model"]["width"] == 16 and ckpt["genotype"] == NASFPN.to_dict()
    assert {"python", "numpy", "torch", "cuda"} <= set(ckpt["rng"])
    assert [c["name"] for c in ckpt["categories"]][:2] and len(ckpt["categories"]) == 8
    assert (out / "genotype.json").is_file() and (out / "config.yaml").is_file()
    resolved = json.loads((out / "resolved.json").read_text())
    assert resolved["lr_scaling"]["lr"] == 0.002
    assert list((out / "tensorboard").glob("events.*"))
    # a second run into the same folder must say --resume
    assert main(["retrain", "nasfpn", "--out", str(out), *tiny_args(tiny_synth)]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_a_diverged_run_exits_1_with_one_line_and_keeps_its_checkpoint(
    tiny_synth, tmp_path, monkeypatch, capsys
) -> None:
    from nasfpn.model.retinanet import RetinaNet

    loss, calls = RetinaNet.loss, []

    def inf_at_iteration_3(self, outputs, targets):
        losses = loss(self, outputs, targets)
        if len(calls) == 3:  # one call per step; evaluation computes no loss
            losses["loss_box"] = losses["loss_box"] * float("inf")
        calls.append(1)
        return losses

    monkeypatch.setattr(RetinaNet, "loss", inf_at_iteration_3)
    out = tmp_path / "run"
    code = main(["retrain", "nasfpn", "--out", str(out), *tiny_args(tiny_synth, "epochs=2")])
    assert code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(
        "nasfpn retrain: error: training diverged: loss is not finite at iteration 3 (epoch 1): "
        "{'loss_cls': "
    ) and err[-1].endswith("'loss_box': inf}")
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["status"], metrics["epoch"], metrics["iteration"]) == ("diverged", 1, 3)
    assert err[-1].endswith(metrics["reason"])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0001.pt"]


def three_class_copy(synth, root):
    """The tiny set with its categories folded onto the first three (images linked)."""
    (root / "annotations").mkdir(parents=True)
    for split in ("train", "val"):
        (root / split).symlink_to(synth / split)
        data = json.loads((synth / "annotations" / f"instances_{split}.json").read_text())
        ids = [c["id"] for c in data["categories"]]
        data["categories"] = data["categories"][:3]
        for a in data["annotations"]:
            a["category_id"] = ids[ids.index(a["category_id"]) % 3]
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def test_num_classes_comes_from_the_data(tiny_synth, tmp_path) -> None:
    three = three_class_copy(tiny_synth, tmp_path / "three")
    result = retrain(NASFPN, tiny(three), tmp_path / "run", log=lambda *a: None)
    assert result["status"] == "ok"
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "epoch_0001.pt")
    assert ckpt["config"]["model"]["num_classes"] == 3 and len(ckpt["categories"]) == 3
    assert load_retrain_config(tmp_path / "run" / "config.yaml").model.num_classes == 3
    # an explicit count that agrees is taken; one that disagrees is refused, naming both
    again = retrain(NASFPN, tiny(three, "model.num_classes=3"), tmp_path / "again",
                    log=lambda *a: None)  # fmt: skip
    assert again["status"] == "ok"
    with pytest.raises(ValueError, match=r"model.num_classes=8 but .* has 3 categories; set "
                       r"model.num_classes=3, or null"):  # fmt: skip
        retrain(NASFPN, tiny(three, "model.num_classes=8"), tmp_path / "x", log=lambda *a: None)


def test_dry_run_reads_the_class_count_of_the_data(tiny_synth, tmp_path, capsys) -> None:
    three = three_class_copy(tiny_synth, tmp_path / "three")
    assert main(["retrain", "fpn", "--data", str(three), "--dry-run", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["model"]["num_classes"] is None
    assert doc["num_classes_from_data"].startswith("3, the categories of ")


class Crash(Hook):
    """Fails the run after ``epoch`` epochs, after the checkpoint hook ran."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_epoch(self, state):
        if state.epoch == self.epoch:
            raise RuntimeError("simulated crash")


def test_resume_continues_exactly(tiny_synth, tmp_path) -> None:
    cfg = tiny(tiny_synth, "epochs=2", "eval_every=1", "keep_checkpoints=5")
    straight = retrain(NASFPN, cfg, tmp_path / "a", log=lambda *a: None)
    with pytest.raises(RuntimeError, match="simulated crash"):
        retrain(NASFPN, cfg, tmp_path / "b", hooks=[Crash(1)], log=lambda *a: None)
    failed = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert failed["status"] == "failed" and "simulated crash" in failed["reason"]
    assert latest_checkpoint(tmp_path / "b").name == "epoch_0001.pt"  # no finished epoch lost
    resumed = retrain(NASFPN, cfg, tmp_path / "b", resume=True, log=lambda *a: None)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "epoch_0002.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "epoch_0002.pt")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for k, state in a["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(
                torch.as_tensor(value), torch.as_tensor(b["optimizer"]["state"][k][name])
            )
    assert straight["weights_digests"] == resumed["weights_digests"]
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    strip = [{k: v for k, v in h.items() if k != "eval_seconds"} for h in resumed["history"]]
    assert strip == [{k: v for k, v in h.items() if k != "eval_seconds"}
                     for h in straight["history"]]  # fmt: skip


def test_resume_refuses_another_architecture(tiny_synth, tmp_path) -> None:
    cfg = tiny(tiny_synth)
    retrain(NASFPN, cfg, tmp_path / "r", log=lambda *a: None)
    with pytest.raises(CheckpointError, match="another architecture"):
        retrain("fpn", cfg, tmp_path / "r", resume=True, log=lambda *a: None)


def test_resume_from_the_cli_reads_the_runs_config(tiny_synth, tmp_path, capsys) -> None:
    out = tmp_path / "r"
    assert main(["retrain", "nasfpn", "--out", str(out), *tiny_args(tiny_synth)]) == 0
    # --resume of a finished run with more epochs: the run's config.yaml plus --set
    assert main(["retrain", "nasfpn", "--out", str(out), "--resume", "--set", "epochs=2"]) == 0
    assert json.loads((out / "metrics.json").read_text())["epoch"] == 2
    assert main(["retrain", "nasfpn", "--out", str(out), "--resume", "--config", "cpu-tiny"]) == 2
    assert "drop --config" in capsys.readouterr().err


def test_anytime_reports_ap_per_exit(tiny_synth, tmp_path) -> None:
    cfg = tiny(tiny_synth, "model.repeats=2", "anytime.enabled=true")
    result = retrain(NASFPN, cfg, tmp_path / "any", log=lambda *a: None)
    final = result["final"]
    assert set(final["exits"]) == {"r1", "r2"} and final["AP"] == final["exits"]["r2"]["AP"]
    assert all(0.0 <= m["AP"] <= 1.0 for m in final["exits"].values())
    ckpt = load_checkpoint(latest_checkpoint(tmp_path / "any"))
    assert any(k.startswith("exit_heads.0.") for k in ckpt["model"])


def test_anytime_model_losses_and_plain_forward() -> None:
    cfg = tiny("unused", "model.num_classes=8", "model.repeats=3", "anytime.enabled=true",
               "anytime.exits=[1]")  # fmt: skip
    torch.manual_seed(0)
    model = build_model(NASFPN, cfg).eval()
    assert isinstance(model, AnytimeRetinaNet) and model.exit_names == ["r1", "r3"]
    images = torch.randn(1, 3, 128, 128)
    outs = model(images, all_exits=True)
    assert len(outs) == 2
    plain = model(images)
    assert all(torch.equal(x, y) for x, y in zip(plain[0], outs[-1][0]))
    targets = [{"boxes": torch.tensor([[10.0, 10.0, 60.0, 50.0]]), "labels": torch.tensor([1])}]
    losses = model.anytime_loss(outs, targets)
    assert set(losses) == {"loss_cls", "loss_box", "loss_cls_r1", "loss_box_r1"}
    with pytest.raises(ValueError, match="not the FPN baseline"):
        build_model(None, cfg)
    with pytest.raises(ValueError, match=r"must be repeats in 1\.\.2"):
        three_repeats = tiny("unused", "model.num_classes=8", "model.repeats=3")
        AnytimeRetinaNet(build_model(NASFPN, three_repeats), (3,))
    with pytest.raises(ValueError, match="not the FPN baseline"):
        AnytimeRetinaNet(build_model(None, tiny("unused", "model.num_classes=8")), (1,))


def test_missing_or_mismatched_pretrained_weights(tiny_synth, tmp_path, capsys) -> None:
    missing = tmp_path / "resnet10-missing.pth"
    with pytest.raises(BackboneWeightsError, match="do not exist"):
        retrain(NASFPN, tiny(tiny_synth, f"model.pretrained={missing}"), tmp_path / "m")
    wrong = tmp_path / "resnet18.pth"
    torch.save(ResNet(depth=18).state_dict(), wrong)
    code = main(["retrain", "nasfpn", "--out", str(tmp_path / "w"),
                 *tiny_args(tiny_synth, f"model.pretrained={wrong}")])  # fmt: skip
    assert code == 2 and "does not fit a ResNet-10" in capsys.readouterr().err
    right = tmp_path / "resnet10.pth"
    torch.save(ResNet(depth=10).state_dict(), right)
    result = retrain(NASFPN, tiny(tiny_synth, f"model.pretrained={right}"), tmp_path / "ok",
                     log=lambda *a: None)  # fmt: skip
    assert result["status"] == "ok"


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        (["model.num_classes=80"], ValueError, "set model.num_classes=8"),
        (["batch_per_gpu=64"], ValueError, "fewer than batch_per_gpu=64"),
        (["device=tpu"], ValueError, "device 'tpu' is unknown"),
        (["data.root=/nonexistent/coco"], FileNotFoundError, "has no train annotations"),
    ],
)
def test_run_refusals(tiny_synth, tmp_path, extra, error, message) -> None:
    with pytest.raises(error, match=message):
        retrain(NASFPN, tiny(tiny_synth, *extra), tmp_path / "x", log=lambda *a: None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_cuda_refusal_without_cuda(tiny_synth, tmp_path) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        retrain(NASFPN, tiny(tiny_synth, "device=cuda"), tmp_path / "x")


def test_sync_bn_needs_cuda_with_several_processes(tiny_synth, tmp_path, monkeypatch) -> None:
    from nasfpn.retrain import run as run_module

    fake = run_module.DistInfo(0, 2, 0, torch.device("cpu"))
    monkeypatch.setattr(run_module, "setup_distributed", lambda device: fake)
    with pytest.raises(ValueError, match="sync_bn needs CUDA"):
        retrain(NASFPN, tiny(tiny_synth, "sync_bn=true"), tmp_path / "x")


def test_bad_checkpoints(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="could not read"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a retraining checkpoint"):
        load_checkpoint(foreign)
