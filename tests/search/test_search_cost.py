"""Cost-aware searches (docs/cost.md): each new architecture costed once, after its first
training, on the worker; the reward the objective's value; the AP and the cost kept apart."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_PROXY

from nasfpn.analysis import load_ledger, report_html
from nasfpn.cli import main
from nasfpn.cost import Objective
from nasfpn.search import SearchConfig, read_ledger, run_search
from nasfpn.search.export import architecture_costs

FAST_LATENCY = {"warmup": 1, "repeats": 3}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))
    yield
    import ray

    ray.shutdown()


def _cfg(synth, **kwargs) -> SearchConfig:
    settings = {"algorithm": "random", "trials": 3, **kwargs}
    return SearchConfig(proxy={**TINY_PROXY, "data": str(synth)}, num_cpus=2, concurrent=2,
                        **settings)  # fmt: skip


def test_a_latency_aware_search_rewards_the_objective(tiny_synth, tmp_path, env) -> None:
    # the absolute form: a reward apart from the AP even where a 1-epoch trial's AP is 0
    objective = Objective(metric="latency", target=1e-3, form="absolute", weight=-0.5,
                          **FAST_LATENCY)  # fmt: skip
    cfg = _cfg(tiny_synth, objective=objective, reevaluate_top=1, reevaluate_seeds=1)
    run_search(cfg, tmp_path / "search", log=lambda *args, **kwargs: None)
    records = read_ledger(tmp_path / "search")
    first = {}
    for record in records:
        if record["status"] == "ok":
            first.setdefault(record["key"], record)
    assert len(first) == 3
    for record in first.values():  # costed once, by its first training
        metrics = record["metrics"]
        assert metrics["latency_ms"] > 0 and metrics["cost_flops"] > 0
        assert metrics["latency"]["repeats"] == 3 and metrics["latency"]["threads"] == 1
        expected = objective.value(metrics["AP"], metrics["latency_ms"])
        assert record["reward"] == pytest.approx(expected) and expected < metrics["AP"] - 1
    reevaluation = [r for r in records if r["phase"] == "reevaluation"]
    assert len(reevaluation) == 1 and reevaluation[0]["status"] == "ok"
    again = reevaluation[0]
    assert "latency_ms" not in again["metrics"]  # not measured twice: the first one's cost
    cost = first[again["key"]]["metrics"]["latency_ms"]
    assert again["reward"] == pytest.approx(objective.value(again["metrics"]["AP"], cost))

    # the ledger's cost columns on every row of an architecture, the fronts, the report
    frame = load_ledger(tmp_path / "search")
    assert frame["latency_ms"].notna().all() and frame["cost_flops"].notna().all()
    doc = json.loads((tmp_path / "search" / "pareto.json").read_text())
    assert doc["architectures"] == 3
    for cost_name in ("latency_ms", "cost_flops"):
        front = doc["fronts"][cost_name]
        assert front and [m[cost_name] for m in front] == sorted(m[cost_name] for m in front)
        everyone = [(a[cost_name], a["AP"]) for a in architecture_costs(records)]
        for member in front:  # no architecture beats a member on both
            assert not any(c < member[cost_name] and ap >= member["AP"] for c, ap in everyone)
    page = report_html(tmp_path / "search")
    assert "Pareto fronts: AP against cost" in page and "AP against latency (ms)" in page


def test_costs_recorded_beside_an_accuracy_reward(tiny_synth, tmp_path, env) -> None:
    cfg = _cfg(tiny_synth, trials=2, measure_cost=True, reevaluate_top=0,
               objective=Objective(**FAST_LATENCY))  # fmt: skip
    run_search(cfg, tmp_path / "search", log=lambda *args, **kwargs: None)
    for record in read_ledger(tmp_path / "search"):
        assert record["reward"] == record["metrics"]["AP"]  # metric none: the AP
        assert record["metrics"]["latency_ms"] > 0 and record["metrics"]["cost_flops"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "objective.metric=latency"], "needs objective.target"),
        (["--set", "objective.metric=latency", "--set", "objective.target=-3"],
         "objective.target=-3.0 must be a positive number of milliseconds"),
        (["--set", "objective.metric=watts"], "objective.metric='watts' is unknown"),
        (["--set", "objective.metric=flops", "--set", "objective.target=1e9", "--set",
          "objective.model.backbone=vgg"], "backbone 'vgg' is unknown"),
        (["--set", "measure_cost=true", "--set", "objective.model.colour=red"],
         "unknown key 'objective.model.colour'"),
        (["--set", "min_level=6", "--set", "max_level=8", "--set", "num_cells=5"],
         "the search space (levels P6-P8) does not fit the proxy's resnet10"),
        (["--reward", "supernet", "--set", "measure_cost=true"],
         "the one-shot search does not measure costs yet"),
    ],
)  # fmt: skip
def test_bad_objectives_are_one_line_errors(argv, message, tmp_path, capsys) -> None:
    out = tmp_path / "never"
    assert main(["search", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_a_search_of_the_mobile_space_with_costs(tiny_synth, tmp_path, env) -> None:
    from nasfpn.search import load_search_config

    preset = load_search_config("cpu-mobile")
    assert (preset.max_level, preset.num_cells, preset.proxy_preset) == (6, 6, "cpu-mobile")
    assert preset.measure_cost and preset.proxy_config().separable
    mobile = {**TINY_PROXY, "data": str(tiny_synth), "backbone": "mobilenet_v2",
              "separable": True, "width": 16}  # fmt: skip
    cfg = SearchConfig(proxy=mobile, min_level=3, max_level=6, num_cells=6, trials=2,
                       algorithm="random", measure_cost=True, reevaluate_top=0, num_cpus=2,
                       objective=Objective(**FAST_LATENCY))  # fmt: skip
    run_search(cfg, tmp_path / "search", log=lambda *args, **kwargs: None)
    records = read_ledger(tmp_path / "search")
    assert [r["status"] for r in records] == ["ok", "ok"]
    for record in records:  # P3-P6 pyramids: four anchor levels, trained and costed
        assert record["genotype"]["max_level"] == 6 and len(record["genotype"]["cells"]) == 6
        assert record["metrics"]["latency_ms"] > 0 and record["metrics"]["cost_flops"] > 0


def test_the_next_steps_build_the_searchs_kind_of_detector() -> None:
    from nasfpn.cli.search import _model_options
    from nasfpn.search import load_search_config

    mobile = _model_options(load_search_config("cpu-mobile"))
    inspect = " --backbone mobilenet_v2 --repeats 2 --width 48 --separable"
    assert mobile == (inspect, " --config cpu-mobile")
    assert _model_options(SearchConfig()) == ("", "")  # the quick start's: the defaults fit
