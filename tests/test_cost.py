"""Latency measurement (nasfpn.cost) and `nasfpn inspect --latency`."""

from __future__ import annotations

import json

import pytest
import torch

from nasfpn.cli import main
from nasfpn.cost.latency import measure_latency, model_latency
from nasfpn.model import ModelConfig, build_retinanet


def test_each_timed_run_is_kept_after_the_warm_up() -> None:
    calls = []
    times = measure_latency(lambda: calls.append(1), warmup=3, repeats=5)
    assert len(calls) == 8 and len(times) == 5 and all(t >= 0 for t in times)
    with pytest.raises(ValueError, match="timed runs at least 1"):
        measure_latency(lambda: None, repeats=0)


def test_a_model_is_timed_with_its_post_processing_and_threads_are_restored() -> None:
    model = build_retinanet("nasfpn", ModelConfig(backbone="resnet10", repeats=1, width=16,
                                                  num_classes=3, head_convs=1))  # fmt: skip
    before = torch.get_num_threads()
    latency = model_latency(model, 64, threads=1, warmup=1, repeats=4)
    assert torch.get_num_threads() == before
    assert latency.median_ms > 0 and latency.min_ms <= latency.q1_ms <= latency.median_ms
    assert latency.median_ms <= latency.q3_ms <= latency.max_ms
    assert len(latency.times_ms) == latency.repeats == 4 and latency.threads == 1
    assert latency.batch == 1 and latency.cpu_model and not model.training
    with pytest.raises(ValueError, match="latency threads=0 must be at least 1"):
        model_latency(model, 64, threads=0)


def test_inspect_latency_json(capsys) -> None:
    argv = ["inspect", "fpnlite", "--backbone", "mobilenet_v2", "--width", "16",
            "--max-level", "6", "--image-size", "96", "--num-classes", "3", "--latency",
            "--warmup", "1", "--timed-runs", "3", "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["latency_ms"] == out["latency"]["median_ms"] > 0 and out["flops"] > 0
    assert out["latency"]["repeats"] == 3 and out["latency"]["threads"] == 1
    assert main(argv[:-1]) == 0
    assert "ms median (quartiles" in capsys.readouterr().out


def test_the_reward_forms() -> None:
    from nasfpn.cost import Objective

    assert Objective().value(0.3, None) == 0.3  # metric none: the AP alone
    soft = Objective(metric="latency", target=50)
    assert soft.value(0.3, 50) == pytest.approx(0.3)
    assert soft.value(0.3, 100) == pytest.approx(0.3 * 2**-0.07)
    assert soft.value(0.3, 25) == pytest.approx(0.3 * 0.5**-0.07)
    assert soft.value(0.3, 25) > 0.3
    hard = Objective(metric="latency", target=50, form="hard")
    assert hard.value(0.3, 25) == pytest.approx(0.3)  # nothing for being under the target
    assert hard.value(0.3, 100) == pytest.approx(0.15)
    assert Objective(metric="flops", target=2e9, form="hard", weight=2).value(0.4, 4e9) == (
        pytest.approx(0.1)
    )
    absolute = Objective(metric="latency", target=50, form="absolute")
    assert absolute.value(0.3, 75) == pytest.approx(0.3 - 0.07 * 0.5)
    assert absolute.value(0.3, 25) == pytest.approx(0.3 - 0.07 * 0.5)
    assert soft.describe() == "AP x (latency / 50 ms) ^ -0.07"
    with pytest.raises(ValueError, match="positive measured cost"):
        soft.value(0.3, None)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"metric": "energy"}, "objective.metric='energy' is unknown"),
        ({"metric": "latency"}, "needs objective.target"),
        ({"metric": "latency", "target": 0}, "objective.target=0 must be a positive number"),
        ({"metric": "flops", "target": -1.0}, "positive number of FLOPs"),
        ({"form": "linear"}, "objective.form='linear' is unknown"),
        ({"threads": 0}, "objective.threads=0 must be at least 1"),
    ],
)
def test_bad_objectives_are_refused(settings, message) -> None:
    from nasfpn.cost import Objective

    with pytest.raises(ValueError, match=message):
        Objective(**settings)


def test_the_cost_of_a_flops_objective_is_the_costed_models() -> None:
    from nasfpn.cost import Objective

    # the costed model's FLOPs (measured with its latency), not the proxy model's `flops`
    assert Objective(metric="flops", target=1e9).cost_column == "cost_flops"
    assert Objective(metric="latency", target=50).cost_column == "latency_ms"


def test_the_pareto_front() -> None:
    from nasfpn.cost import pareto_front

    points = [(10, 0.2), (20, 0.3), (15, 0.1), (30, 0.3), (5, 0.05), (20, 0.3), (40, 0.35)]
    assert pareto_front(points) == [4, 0, 1, 5, 6]
    assert pareto_front([]) == []
