import json
import math
import subprocess
import sys

import pytest

from nasfpn.cli import main
from nasfpn.config import ConfigError
from nasfpn.data import CocoDetection, load_annotations
from nasfpn.model import AnchorSpec
from nasfpn.proxy_train import ProxyConfig, load_proxy_config, run
from nasfpn.proxy_train import data as proxy_data
from nasfpn.space import NASFPN


@pytest.fixture
def synth(tiny_synth):
    return tiny_synth


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))


def tiny(synth, *extra: str) -> ProxyConfig:
    overrides = [
        f"data={synth}", "holdout=8", "subset=1.0", "image_size=128", "repeats=1", "width=16",
        "head_convs=1", "epochs=2", "batch_size=8", "workers=0", "threads=1",
        "warmup_iters=2", "max_train_seconds=null", "eval_every=1", *extra,
    ]  # fmt: skip
    return load_proxy_config("cpu-tiny", overrides)


def steps_per_epoch(synth) -> int:
    """Full batches of 8 over the tiny set's proxy-train images with boxes."""
    files = proxy_data.prepare(tiny(synth))
    return len(CocoDetection(files.train_annotations, files.images, filter_empty=True)) // 8


def test_tiny_trial_is_ok_with_finite_metrics(synth) -> None:
    reports = []
    result = run(NASFPN, tiny(synth), report=reports.append)
    assert result.status == "ok", result.reason
    assert (result.epochs, result.iterations) == (2, 2 * steps_per_epoch(synth))
    for name in ("AP", "AP50", "AP75"):
        assert 0.0 <= getattr(result, name) <= 1.0
    assert math.isfinite(result.train_seconds) and result.params > 0 and result.flops > 0
    # a report after epoch 1 (eval_every=1); the final evaluation is the result itself
    assert [r["epoch"] for r in reports] == [1] and result.history[:1] == reports
    assert [h["epoch"] for h in result.history] == [1, 2] and result.history[1]["AP"] == result.AP
    assert result.reward == result.AP


def test_same_seed_same_reward(synth) -> None:
    a = run(NASFPN, tiny(synth, "epochs=1", "eval_every=0"))
    b = run(NASFPN, tiny(synth, "epochs=1", "eval_every=0"))
    assert a.losses and a.losses == b.losses  # bit-identical training on CPU
    strip = [{k: v for k, v in h.items() if k != "train_seconds"} for h in a.history]
    assert strip == [{k: v for k, v in h.items() if k != "train_seconds"} for h in b.history]
    c = run(NASFPN, tiny(synth, "epochs=1", "eval_every=0", "seed=1"))
    assert c.losses != a.losses


def test_same_reward_beside_a_busy_process(synth) -> None:
    """The budget is steps, not seconds: two CPU-bound processes competing for both cores
    change how long the trial takes, not its iterations, losses or AP (bit for bit)."""
    cfg = tiny(synth, "epochs=2", "eval_every=1", "max_train_seconds=600")
    alone = run(NASFPN, cfg)
    spin = "import time\nend = time.time() + 120\nwhile time.time() < end: pass\n"
    busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
    try:
        beside = run(NASFPN, cfg)
        assert all(p.poll() is None for p in busy), "the busy processes ended too early"
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert alone.status == beside.status == "ok", (alone.reason, beside.reason)
    assert (alone.epochs, alone.iterations) == (beside.epochs, beside.iterations)
    assert alone.iterations == 2 * steps_per_epoch(synth)  # the whole schedule, both times
    assert alone.losses == beside.losses
    metrics = ("AP", "AP50", "AP75", "APs", "APm", "APl")
    assert [getattr(alone, m) for m in metrics] == [getattr(beside, m) for m in metrics]
    strip = [{k: v for k, v in h.items() if k != "train_seconds"} for h in alone.history]
    assert strip == [{k: v for k, v in h.items() if k != "train_seconds"} for h in beside.history]
    assert alone.precision == beside.precision and alone.precision in ("fp32", "bf16")


def test_the_safety_limit_ends_a_trial_as_timeout_not_ok(synth) -> None:
    result = run(NASFPN, tiny(synth, "epochs=3", "max_train_seconds=1e-6"))
    assert result.status == "timeout" and result.AP == 0.0
    assert result.iterations == 1 and result.epochs == 0  # stopped after its first step
    planned = f"iteration 1 of {3 * steps_per_epoch(synth)} (epoch 0)"
    assert "safety limit (max_train_seconds)" in result.reason and planned in result.reason
    assert [h["epoch"] for h in result.history] == []  # no reward evaluation was run


def test_bf16_falls_back_to_fp32_on_a_cpu_without_it(synth, monkeypatch) -> None:
    from nasfpn import train_loop

    monkeypatch.setattr(train_loop, "cpu_has_bf16", lambda: False)
    result = run(NASFPN, tiny(synth, "epochs=1", "amp=bf16"))
    assert result.status == "ok" and result.precision == "fp32"
    assert run(NASFPN, tiny(synth, "epochs=1", "amp=none")).AP == result.AP


def test_absurd_learning_rate_ends_early_as_diverged(synth) -> None:
    result = run(NASFPN, tiny(synth, "lr=1e8", "epochs=5", "grad_clip=null", "warmup_iters=0"))
    assert result.status == "diverged"
    assert "not finite" in result.reason and result.epochs < 5 and result.AP == 0.0


def test_split_is_disjoint_cached_and_deterministic(synth) -> None:
    cfg = tiny(synth)
    files = proxy_data.prepare(cfg)
    train = {i["id"] for i in load_annotations(files.train_annotations)["images"]}
    reward = {i["id"] for i in load_annotations(files.reward_annotations)["images"]}
    assert len(reward) == 8 and len(train) == 32 and not train & reward
    again = proxy_data.prepare(cfg)
    assert again == files
    other = proxy_data.prepare(tiny(synth, "split_seed=1"))
    assert other.reward_annotations != files.reward_annotations


def test_explicit_split_files(synth, tmp_path) -> None:
    files = proxy_data.prepare(tiny(synth))
    cfg = load_proxy_config("cpu-tiny", [
        f"train_annotations={files.train_annotations}",
        f"reward_annotations={files.reward_annotations}", f"images={files.images}",
    ])  # fmt: skip
    assert proxy_data.prepare(cfg) == files
    with pytest.raises(ValueError, match="give images"):
        proxy_data.prepare(ProxyConfig(train_annotations="a.json", reward_annotations="b.json"))
    with pytest.raises(FileNotFoundError, match="has no train annotations"):
        proxy_data.prepare(ProxyConfig(data=str(tmp_path)))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["epoch=3"], "unknown key 'epoch'; allowed keys: "),
        (["lr=fast"], "lr: expected a number, got 'fast'"),
        (["repeats=2.5"], "repeats: expected an integer"),
        (["subset=0"], "subset=0.0 must be in (0, 1]"),
        (["train_annotations=a.json"], "give both train_annotations and reward_annotations"),
        (["max_train_seconds=-5"], "max_train_seconds=-5.0 must be positive"),
        (["epochs=-1"], "epochs=-1 must be at least 1"),
        (["warmup_iters=-1"], "iterations must be >= 0"),
        (["reward_images=0"], "reward_images=0 must be at least 1"),
    ],
)
def test_bad_config_is_refused_naming_the_key(overrides, message) -> None:
    with pytest.raises(ConfigError) as info:
        load_proxy_config("cpu-tiny", overrides)
    assert message in str(info.value)
    if "allowed keys" in message:
        assert "batch_size" in str(info.value) and "max_train_seconds" in str(info.value)


def test_presets_load() -> None:
    paper = load_proxy_config("paper")
    assert (paper.backbone, paper.repeats, paper.width, paper.image_size) == (
        "resnet10",
        3,
        256,
        512,
    )
    assert (paper.epochs, paper.batch_size, paper.lr, paper.milestones) == (10, 64, 0.08, (8,))
    assert paper.holdout == 7392
    with pytest.raises(ConfigError, match="proxy preset 'laptop' is unknown"):
        load_proxy_config("laptop")


def test_anchor_scale_passes_to_the_model() -> None:
    paper = load_proxy_config("paper")
    assert paper.anchor_scale == 4.0  # RetinaNet's (and the paper's) anchors
    assert paper.model_config(80).anchors == AnchorSpec()
    small = load_proxy_config("paper", ["anchor_scale=2"]).model_config(80).anchors
    assert small.octave_base_scale == 2.0 and small.base_anchors(8)[3].tolist() == [-8, -8, 8, 8]


def test_batch_larger_than_the_data_is_refused(synth) -> None:
    with pytest.raises(ValueError, match="fewer than batch_size 64"):
        run(NASFPN, tiny(synth, "batch_size=64"))


def _tiny_argv(synth, *extra: str) -> list[str]:
    argv = ["proxy-train", "nasfpn", "--data", str(synth), *extra]
    for item in ("holdout=8", "image_size=128", "repeats=1", "width=16", "head_convs=1",
                 "epochs=1", "batch_size=8", "workers=0", "threads=1",
                 "warmup_iters=2"):  # fmt: skip
        argv += ["--set", item]
    return argv


def test_cli_proxy_train_json(synth, capsys) -> None:
    assert main(_tiny_argv(synth, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "ok" and out["key"] == NASFPN.key() and "AP50" in out
    assert out["seed"] == 0 and out["precision"] in ("fp32", "bf16")
    assert main(["proxy-train", "fpn"]) == 2
    assert "give a genotype, not 'fpn'" in capsys.readouterr().err


def test_cli_proxy_train_seeds_reports_the_noise(synth, capsys) -> None:
    assert main(_tiny_argv(synth, "--seeds", "3", "--json", "--set", "seed=4")) == 0
    out = json.loads(capsys.readouterr().out)  # exactly one JSON document on stdout
    assert out["seeds"] == [4, 5, 6] and [r["seed"] for r in out["runs"]] == [4, 5, 6]
    aps = [r["AP"] for r in out["runs"]]
    assert out["mean"] == pytest.approx(sum(aps) / 3)
    mean = sum(aps) / 3
    std = (sum((a - mean) ** 2 for a in aps) / 2) ** 0.5  # the sample standard deviation
    assert out["std"] == pytest.approx(std)
    assert out["cv"] == (pytest.approx(std / mean) if mean > 0 else None)
    assert out["ok"] == 3 and out["key"] == NASFPN.key()
    assert main(_tiny_argv(synth, "--seeds", "2")) == 0
    text = capsys.readouterr().out
    assert "seed 0 (1 of 2)" in text and "AP over 2 of 2 seeds: mean" in text


def test_cli_proxy_train_refuses_zero_seeds(capsys) -> None:
    assert main(["proxy-train", "nasfpn", "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "--seeds 0: expected the number of training seeds, at least 1" in err
