"""Retraining configuration: presets equal to mmdetection's recipes, refusals, dry run."""

import json

import pytest

from nasfpn.cli import main
from nasfpn.config import ConfigError
from nasfpn.retrain import RetrainConfig, load_retrain_config, lr_scaling


def test_nasfpn_recipe_is_mmdetections() -> None:
    """Hand-written values of docs/nasfpn.md section 5 (retinanet_r50_nasfpn_crop640_50e)."""
    cfg = load_retrain_config("r50_nasfpn_crop640_50e")
    assert (cfg.epochs, cfg.batch_per_gpu, cfg.base_batch, cfg.eval_every) == (50, 8, 64, 1)
    assert (cfg.scale_lr, cfg.sync_bn) == (False, False)
    o = cfg.optim
    assert (o.optimizer, o.lr, o.momentum, o.weight_decay, o.norm_weight_decay) == (
        "sgd", 0.08, 0.9, 0.0001, 0.0)  # fmt: skip
    assert (o.schedule, o.milestones, o.gamma, o.grad_clip) == ("step", (30, 40), 0.1, None)
    assert (o.warmup_iters, o.warmup_ratio) == (1000, 0.1)
    d = cfg.data
    assert (d.train_size, d.ratio_range, d.flip_prob) == (640, (0.8, 1.2), 0.5)
    assert (d.test_size, d.test_pad_divisor, d.filter_empty, d.min_size) == (640, 128, True, 32)
    m = cfg.model
    assert (m.backbone, m.frozen_stages, m.norm) == ("resnet50", 1, "trainable")
    assert m.pretrained.endswith("resnet50-0676ba61.pth")
    assert (m.repeats, m.width, m.variant, m.num_classes, m.head_convs) == (
        7, 256, "mmdet", None, 4)  # fmt: skip
    a = m.anchors
    assert (a.strides, a.octave_base_scale, a.scales_per_octave, a.ratios) == (
        (8, 16, 32, 64, 128), 4.0, 3, (0.5, 1.0, 2.0))  # fmt: skip
    loss = m.loss
    assert (loss.focal_alpha, loss.focal_gamma, loss.box_weight) == (0.25, 2.0, 1.0)
    assert (loss.pos_iou, loss.neg_iou, loss.min_pos_iou) == (0.5, 0.5, 0.0)
    t = m.test
    assert (t.pre_nms_top_k, t.score_threshold, t.nms_iou, t.max_detections) == (
        1000, 0.05, 0.5, 100)  # fmt: skip
    assert not cfg.anytime.enabled
    # the YAML writes the recipe out in full: it equals the dataclass defaults
    assert cfg == RetrainConfig(data=cfg.data, model=cfg.model)
    assert cfg.data.root == "/data/coco" and RetrainConfig().data.root is None


def test_fpn_recipe_differs_only_in_test_padding() -> None:
    nas = load_retrain_config("r50_nasfpn_crop640_50e")
    fpn = load_retrain_config("r50_fpn_crop640_50e")
    assert fpn.data.test_pad_divisor == 64
    assert fpn.model == nas.model and fpn.optim == nas.optim
    assert fpn.epochs == nas.epochs and fpn.batch_per_gpu == nas.batch_per_gpu


@pytest.mark.parametrize(
    ("world", "scale", "total", "lr"),
    [(8, True, 64, 0.08), (4, True, 32, 0.04), (2, True, 16, 0.02), (4, False, 32, 0.08)],
)
def test_linear_lr_scaling(world, scale, total, lr) -> None:
    cfg = load_retrain_config("r50_nasfpn_crop640_50e", [f"scale_lr={str(scale).lower()}"])
    rule = lr_scaling(cfg, world)
    assert rule["total_batch"] == total and rule["lr"] == pytest.approx(lr)
    assert rule["enabled"] is scale and rule["base_lr"] == 0.08 and rule["base_batch"] == 64


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["epoch=3"], "unknown key 'epoch'; allowed keys: "),
        (["data.size=3"], "unknown key 'data.size'; allowed keys in data: "),
        (["optim.lr=fast"], "optim.lr: expected a number, got 'fast'"),
        (["model.repeats=2.5"], "model.repeats: expected an integer"),
        (["epochs=0"], "epochs=0 must be at least 1"),
        (["eval_every=-1"], "eval_every=-1 must be 0"),
        (["iters_per_epoch=0"], "iters_per_epoch=0 must be at least 1"),
        (["data.test_size=0"], "test_size=0 must be at least 1"),
        (["data.workers=-1"], "workers=-1 must be 0"),
        (["data.val_limit=0"], "val_limit=0 must be at least 1"),
        (["data.ratio_range=[0.8]"], "ratio_range=[0.8] must be two numbers"),
        (["anytime.enabled=true", "anytime.exits=[3]"], "anytime.exits=[3] must be distinct"),
        (["anytime.enabled=true", "anytime.exits=[1, 1]"], "must be distinct repeats in 1..2"),
    ],
)
def test_bad_config_is_refused_naming_the_key(overrides, message) -> None:
    with pytest.raises(ConfigError) as info:
        load_retrain_config("cpu-tiny", ["model.repeats=3", *overrides])
    assert message in str(info.value)


def test_anytime_exits_default_to_every_intermediate_repeat() -> None:
    cfg = load_retrain_config("cpu-tiny", ["model.repeats=4", "anytime.enabled=true"])
    assert cfg.anytime_exits() == (1, 2, 3)
    assert load_retrain_config("cpu-tiny").anytime_exits() == ()


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="retrain preset 'laptop' is unknown"):
        load_retrain_config("laptop")


def test_dry_run_prints_the_resolved_recipe_and_model(capsys, monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")  # as under torchrun: the lr scaling uses it
    code = main(["retrain", "nasfpn", "--config", "r50_nasfpn_crop640_50e", "--dry-run",
                 "--json", "--set", "scale_lr=true", "--set", "data.test_size=128"])  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["lr_scaling"]["total_batch"] == 32 and doc["lr_scaling"]["lr"] == 0.04
    c = doc["config"]
    assert c["optim"]["milestones"] == [30, 40] and c["optim"]["warmup_iters"] == 1000
    assert c["model"]["test"]["nms_iou"] == 0.5 and c["model"]["loss"]["focal_gamma"] == 2.0
    assert doc["assigner"]["pos_iou"] == 0.5 and doc["assigner"]["neg_iou"] == 0.5
    assert "random crop 640 x 640" in " ".join(doc["train_pipeline"])
    assert "pad to a multiple of 128" in doc["test_pipeline"]
    summary = doc["model_summary"]
    # mmdetection's retinanet_r50_nasfpn_crop640_50e_coco has 59,979,828 parameters
    assert summary["params"]["total"] == 59_979_828 and summary["flops"] > 0
    assert summary["pretrained_file_exists"] is False  # the dry run needs no weights
    assert len(doc["genotype"]["cells"]) == 7
    assert doc["num_classes_from_data"].startswith("80 (COCO's) for this summary")


def test_dry_run_fpn_as_text(capsys) -> None:
    code = main(["retrain", "fpn", "--config", "r50_fpn_crop640_50e", "--dry-run",
                 "--set", "data.test_size=64", "--set", "model.backbone=resnet18"])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0 and "pad to a multiple of 64" in text and "neck: fpn" in text


def test_cli_refusals(tmp_path, capsys) -> None:
    assert main(["retrain", "nasfpn", "--ray-workers", "0", "--dry-run"]) == 2
    assert "--ray-workers 0 must be 1 or more" in capsys.readouterr().err
    assert main(["retrain", "nasfpn", "--address", "1.2.3.4:6379", "--out", str(tmp_path)]) == 2
    assert "give it with --ray-workers" in capsys.readouterr().err
    assert main(["retrain", "nasfpn", "--set", "epochs=0", "--dry-run"]) == 2
    assert "epochs=0 must be at least 1" in capsys.readouterr().err


def test_gpu_benchmark_estimate_and_refusal_without_cuda(monkeypatch, capsys) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))  # as `python benchmarks/retrain_gpu.py` sees it
    spec = importlib.util.spec_from_file_location("retrain_gpu", folder / "retrain_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    est = bench.fifty_epoch_estimate(0.5)  # 50 x 117,266 / 64 iterations at 0.5 s each
    assert est["iterations"] == 91_614
    assert est["wall_hours"] == pytest.approx(91_614.0625 * 0.5 / 3600)
    assert est["gpu_hours"] == pytest.approx(8 * est["wall_hours"])
    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["retrain_gpu.py"])
    assert bench.main() == 2
    assert "needs a CUDA device" in capsys.readouterr().err
