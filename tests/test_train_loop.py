import math

import pytest
import torch
from torch import nn

from nasfpn import train_loop
from nasfpn.train_loop import (
    Hook,
    OptimConfig,
    TimeLimit,
    build_optimizer,
    lr_factor,
    make_trainer,
    precision_name,
    resolve_amp,
    train,
)


def test_warmup_and_step_schedule_by_hand() -> None:
    cfg = OptimConfig(milestones=(2, 3), warmup_iters=10, warmup_ratio=0.1)
    assert lr_factor(cfg, 0, 100, 4) == pytest.approx(0.1)  # warm-up starts at 0.1 x lr
    assert lr_factor(cfg, 5, 100, 4) == pytest.approx(0.55)  # halfway: 1 - 0.9 * 0.5
    assert lr_factor(cfg, 10, 100, 4) == 1.0
    assert lr_factor(cfg, 199, 100, 4) == 1.0  # last iteration of epoch 1
    assert lr_factor(cfg, 200, 100, 4) == pytest.approx(0.1)  # epoch 2
    assert lr_factor(cfg, 399, 100, 4) == pytest.approx(0.01)  # epoch 3


def test_cosine_schedule_by_hand() -> None:
    cfg = OptimConfig(schedule="cosine", warmup_iters=0, min_lr_ratio=0.1)
    assert lr_factor(cfg, 0, 10, 2) == 1.0
    assert lr_factor(cfg, 10, 10, 2) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway
    assert lr_factor(cfg, 20, 10, 2) == pytest.approx(0.1)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.bn = nn.BatchNorm2d(2)
        self.shared = nn.Linear(2, 1)
        self.alias = self.shared  # a module reachable under two names

    def forward(self, x):
        return self.shared(self.bn(self.conv(x)).mean((2, 3)))


def test_optimizer_groups_norm_params_without_decay_and_shared_once() -> None:
    model = Tiny()
    opt = build_optimizer(model, OptimConfig(weight_decay=1e-4))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in no_decay["params"]} == {id(model.bn.weight), id(model.bn.bias)}
    assert len(decay["params"]) == 4  # conv w, b; linear w, b: shared module counted once
    model.conv.weight.requires_grad_(False)
    assert len(build_optimizer(model, OptimConfig()).param_groups[0]["params"]) == 3
    assert isinstance(build_optimizer(model, OptimConfig(optimizer="adamw")), torch.optim.AdamW)


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 1, 4, 4, generator=g)
    y = x.mean((1, 2, 3))[:, None] * 3 + 1
    return [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]


def _loss(model, batch):
    x, y = batch
    return {"mse": ((model(x) - y) ** 2).mean()}


def _run(epochs: int, lr: float = 0.05, **kwargs):
    torch.manual_seed(0)
    model = Tiny()
    cfg = OptimConfig(lr=lr, milestones=(), warmup_iters=2, **kwargs)
    trainer = make_trainer(model, cfg, epochs=epochs, iters_per_epoch=4)
    batches = _data()
    return model, trainer, train(trainer, lambda epoch: batches, _loss)


def test_training_lowers_the_loss_and_is_deterministic() -> None:
    _, _, state = _run(epochs=1)
    first = state.last_losses["mse"]
    model2, _, state2 = _run(epochs=20)
    assert state2.status == "ok" and state2.iteration == 80 and state2.epoch == 20
    assert state2.last_losses["mse"] < first / 2
    model3, _, _ = _run(epochs=20)
    for a, b in zip(model2.parameters(), model3.parameters()):
        assert torch.equal(a, b)


def test_absurd_learning_rate_ends_as_diverged() -> None:
    _, _, state = _run(epochs=50, lr=1e6)
    assert state.status == "diverged"
    assert "not finite at iteration" in state.reason and state.epoch < 50


@pytest.mark.parametrize("ddp_of_one", [False, True])
def test_nonfinite_loss_in_one_process_stops_before_its_step(ddp_of_one, monkeypatch) -> None:
    """Alone, a process agrees with nobody: no collective runs, even in a DDP wrapper of world
    size 1, and the reason is the plain one (under torchrun: tests/retrain/test_retrain_ddp)."""

    def no_collective(*args, **kwargs):
        raise AssertionError("train() ran a collective in a single process")

    monkeypatch.setattr(torch.distributed, "all_reduce", no_collective)
    torch.manual_seed(0)
    model = Tiny()
    trainer = make_trainer(model, OptimConfig(lr=0.05, milestones=(), warmup_iters=2), 2, 4)
    if ddp_of_one:
        store = torch.distributed.HashStore()
        torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
        trainer.model = nn.parallel.DistributedDataParallel(model)
    weights = []

    class Keep(Hook):
        def after_step(self, state, losses):
            weights.append([p.detach().clone() for p in model.parameters()])

    def poisoned(net, batch):
        losses = _loss(net, batch)
        if trainer.state.iteration == 5:  # the second step of the second epoch
            losses["mse"] = losses["mse"] * float("nan")
        return losses

    try:
        state = train(trainer, lambda e: _data(), poisoned, [Keep()])
    finally:
        if ddp_of_one:
            torch.distributed.destroy_process_group()
    assert (state.status, state.iteration, state.epoch) == ("diverged", 5, 1)
    assert state.reason == "loss is not finite at iteration 5 (epoch 1): {'mse': nan}"
    assert len(weights) == 5  # no step, and no hook, for the bad loss
    for kept, p in zip(weights[-1], model.parameters()):
        assert torch.equal(kept, p)


def test_gradient_clipping_bounds_the_norm() -> None:
    torch.manual_seed(0)
    model = Tiny()
    trainer = make_trainer(model, OptimConfig(grad_clip=1e-3, warmup_iters=0), 1, 1)
    batch = _data()[0]
    norms = []

    class Record(Hook):
        def after_step(self, state, losses):
            norms.append(math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters())))

    train(trainer, lambda e: [batch], _loss, [Record()])
    assert norms[0] == pytest.approx(1e-3, rel=1e-3)


def test_resume_continues_exactly() -> None:
    full, _, _ = _run(epochs=4)
    torch.manual_seed(0)
    model = Tiny()
    cfg = OptimConfig(lr=0.05, milestones=(), warmup_iters=2)
    first = make_trainer(model, cfg, epochs=2, iters_per_epoch=4)
    train(first, lambda e: _data(), _loss)
    saved = {"model": model.state_dict(), "trainer": first.state_dict()}
    resumed_model = Tiny()
    resumed_model.load_state_dict(saved["model"])
    second = make_trainer(resumed_model, cfg, epochs=4, iters_per_epoch=4)
    second.load_state_dict(saved["trainer"])
    state = train(second, lambda e: _data(), _loss)
    assert state.iteration == 16
    for a, b in zip(full.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(a, b)


def test_a_hook_can_stop_the_run() -> None:
    class StopAfterTwo(Hook):
        def after_epoch(self, state):
            return state.epoch < 2

    torch.manual_seed(0)
    trainer = make_trainer(Tiny(), OptimConfig(), epochs=10, iters_per_epoch=4)
    state = train(trainer, lambda e: _data(), _loss, [StopAfterTwo()])
    assert (state.status, state.epoch) == ("stopped", 2)


def test_amp_modes(monkeypatch) -> None:
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) is None and resolve_amp("none", cpu) is None
    assert resolve_amp("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_amp("bf16", torch.device("cuda")) == torch.bfloat16
    assert resolve_amp("fp16", torch.device("cuda")) == torch.float16
    # bf16 on a CPU: native where it has AVX512-BF16 or AMX, else a fallback to float32
    monkeypatch.setattr(train_loop, "cpu_has_bf16", lambda: True)
    assert resolve_amp("bf16", cpu) == torch.bfloat16
    monkeypatch.setattr(train_loop, "cpu_has_bf16", lambda: False)
    assert resolve_amp("bf16", cpu) is None
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA device"):
        resolve_amp("fp16", cpu)
    with pytest.raises(ValueError, match="amp 'fp8' is unknown"):
        resolve_amp("fp8", cpu)
    assert [precision_name(d) for d in (None, torch.bfloat16, torch.float16)] == [
        "fp32", "bf16", "fp16"
    ]  # fmt: skip


def test_cpu_has_bf16_reads_the_cpu_flags(monkeypatch) -> None:
    for avx512_bf16, amx, expected in ((True, False, True), (False, True, True),
                                       (False, False, False)):  # fmt: skip
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert train_loop.cpu_has_bf16() is expected


def test_bf16_autocast_trains_on_a_cpu_with_it(monkeypatch) -> None:
    monkeypatch.setattr(train_loop, "cpu_has_bf16", lambda: True)  # emulated where absent
    torch.manual_seed(0)
    trainer = make_trainer(Tiny(), OptimConfig(warmup_iters=0), 2, 4, amp="bf16")
    assert trainer.amp_dtype == torch.bfloat16
    state = train(trainer, lambda e: _data(), _loss)
    assert state.status == "ok" and math.isfinite(state.last_losses["mse"])


def test_time_limit_stops_mid_epoch_and_says_why() -> None:
    torch.manual_seed(0)
    trainer = make_trainer(Tiny(), OptimConfig(), epochs=3, iters_per_epoch=4)
    limit = TimeLimit(1e-9, planned=12)  # spent after the first step
    state = train(trainer, lambda e: _data(), _loss, [limit])
    assert limit.fired and (state.status, state.iteration, state.epoch) == ("stopped", 1, 0)
    assert "1e-09 s safety limit" in state.reason and "iteration 1 of 12" in state.reason
    trainer = make_trainer(Tiny(), OptimConfig(), epochs=2, iters_per_epoch=4)
    generous = TimeLimit(3600)
    state = train(trainer, lambda e: _data(), _loss, [generous])
    assert not generous.fired and (state.status, state.iteration) == ("ok", 8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "lamb"}, "optimizer 'lamb' is unknown"),
        ({"schedule": "poly"}, "schedule 'poly' is unknown"),
        ({"lr": 0.0}, "lr=0.0 must be positive"),
        ({"warmup_ratio": 0.0}, "the ratio in (0, 1]"),
        ({"grad_clip": -1.0}, "grad_clip=-1.0 must be positive"),
    ],
)
def test_bad_optim_config(kwargs, message) -> None:
    with pytest.raises(ValueError) as info:
        OptimConfig(**kwargs)
    assert message in str(info.value)


@pytest.mark.gpu
def test_bf16_autocast_step_on_gpu() -> None:
    torch.manual_seed(0)
    model = Tiny()
    trainer = make_trainer(model, OptimConfig(warmup_iters=0), 2, 4, device="cuda", amp="bf16")
    batches = [(x.cuda(), y.cuda()) for x, y in _data()]
    state = train(trainer, lambda e: batches, _loss)
    assert state.status == "ok"
