"""The known-landscape benchmark: censoring, summaries, the table and the command line."""

from __future__ import annotations

import json
import math

import pytest

from nasfpn.cli import main
from nasfpn.cli.bench_search import parse_value
from nasfpn.controller.bench import (
    SeedRun,
    format_table,
    landscape_spread,
    run_bench,
    run_seed,
    speedup,
    summarize,
)
from nasfpn.space import SearchSpace

SMALL = SearchSpace(min_level=3, max_level=5, num_cells=4, num_intermediate=1)


def _run(seed: int, **hits: int | None) -> SeedRun:
    return SeedRun(
        seed, {float(k[1:].replace("_", ".")): v for k, v in hits.items()}, 100, 50, 1, 0
    )


def test_summary_counts_censored_seeds_at_the_budget() -> None:
    runs = [_run(0, t0_5=10), _run(1, t0_5=30), _run(2, t0_5=None), _run(3, t0_5=20)]
    s = summarize(runs, 0.5, budget=100)
    assert (s.reached, s.seeds, s.censored) == (3, 4, True)
    assert s.mean == pytest.approx(40.0)  # (10 + 30 + 100 + 20) / 4: a lower bound
    assert s.std == pytest.approx(math.sqrt(((30**2) + 10**2 + 60**2 + 20**2) / 4))
    assert s.median == 25.0
    assert s.mean_text() == ">= 40" and s.median_text() == "25"


def test_summary_texts_when_all_or_none_reach() -> None:
    everyone = summarize([_run(0, t0_9=10), _run(1, t0_9=20)], 0.9, budget=100)
    assert everyone.mean_text() == "15 ± 5" and everyone.median_text() == "15"
    nobody = summarize([_run(0, t0_9=None), _run(1, t0_9=None)], 0.9, budget=5000)
    assert nobody.mean_text() == "> 5,000" and nobody.median_text() == "> 5,000"
    half = summarize([_run(0, t0_9=10), _run(1, t0_9=None)], 0.9, budget=100)
    assert half.median_text() == "> 100"  # the median of two is not known when one is censored


def test_run_seed_stops_once_every_threshold_is_reached() -> None:
    run = run_seed("evolution", "match", SMALL, 0, samples=5000, thresholds=(0.5, 1.0))
    assert run.hits[1.0] is not None and run.samples == run.hits[1.0] < 5000
    assert run.hits[0.5] <= run.hits[1.0] and run.best == 1.0


def test_run_seed_with_workers_is_deterministic() -> None:
    a = run_seed("reinforce", "nk", SMALL, 1, samples=60, workers=8)
    b = run_seed("reinforce", "nk", SMALL, 1, samples=60, workers=8)
    assert (a.hits, a.samples, a.best, a.unique) == (b.hits, b.samples, b.best, b.unique)
    assert a.samples == 60  # a budget this small reaches no high threshold


def test_run_bench_table_and_speedup() -> None:
    lines = []
    kwargs = {"samples": 300, "seeds": 2, "space": SMALL, "thresholds": (0.5, 0.99)}
    random = run_bench("random", "match", **kwargs)
    evo = run_bench("evolution", "match", progress=lines.append, **kwargs)
    assert len(lines) == 2 and lines[0].startswith("evolution on match, seed 0:")
    assert random.stat(0.5).reached == 2
    assert speedup(evo, random, 0.5).endswith("x")
    assert speedup(random, evo, 0.99) == "n/a" or random.stat(0.99).reached == 2
    table = format_table([random, evo])
    assert table.splitlines()[0].startswith("| landscape | algorithm | threshold |")
    assert len(table.splitlines()) == 2 + 2 * 2
    doc = json.loads(json.dumps(evo.to_dict()))
    assert doc["options"] == {"population_size": 20, "sample_size": None}
    assert set(doc["runs"][0]["hits"]) == {"0.5", "0.99"}


def test_censored_reference_gives_a_lower_bound() -> None:
    kwargs = {"samples": 50, "seeds": 1, "space": SMALL, "thresholds": (1.0,)}
    random = run_bench("random", "match", **kwargs)
    assert random.stat(1.0).reached == 0
    evo = run_bench("evolution", "match", **{**kwargs, "samples": 3000})
    assert evo.stat(1.0).reached == 1
    # the random run's budget was 50, so this says little, but it is labelled as a bound
    assert speedup(evo, random, 1.0).startswith(">= ")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"samples": 0}, "samples=0: expected an int >= 1"),
        ({"seeds": 0}, "seeds=0: expected an int >= 1"),
        ({"workers": 1.5}, "workers=1.5: expected an int >= 1"),
        ({"thresholds": ()}, r"thresholds=\[\]: expected at least one reward in \[0, 1\]"),
        ({"thresholds": (0.5, 1.5)}, "expected at least one reward"),
        ({"options": {"lr": 0.1}}, "unknown option"),
    ],
)
def test_run_bench_refuses_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"samples": 10, "seeds": 1, "space": SMALL, **kwargs}
    with pytest.raises(ValueError, match=match):
        run_bench("random", "match", **args)


def test_cli_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["bench-search", "--algorithm", "random,evolution", "--landscape", "match",
         "--samples", "100", "--seeds", "2", "--space", "max_level=5", "--space", "num_cells=4",
         "--space", "num_intermediate=1", "--option", "population_size=10", "--quiet"]
    )  # fmt: skip
    # random search has no population_size: options must fit every algorithm named
    assert code == 2
    assert "unknown option(s) 'population_size' for algorithm 'random'" in capsys.readouterr().err
    code = main(
        ["bench-search", "--algorithm", "evolution", "--landscape", "match,nk",
         "--samples", "100", "--seeds", "2", "--space", "max_level=5", "--space", "num_cells=4",
         "--space", "num_intermediate=1", "--option", "population_size=10", "--quiet"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "space: 16 decisions" in out and "| match | evolution | 0.9 |" in out
    assert "| nk | evolution | 0.5 |" in out and "random search's expected samples" in out


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["bench-search", "--algorithm", "ppo", "--landscape", "match", "--samples", "40",
         "--seeds", "1", "--thresholds", "0.3,0.6", "--option", "batch_size=5",
         "--option", "tanh_constant=none", "--space", "max_level=5", "--space", "num_cells=4",
         "--space", "num_intermediate=1", "--json"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0 and "ppo on match, seed 0" in captured.err
    doc = json.loads(captured.out)
    (result,) = doc["results"]
    assert result["options"]["batch_size"] == 5 and result["options"]["tanh_constant"] is None
    assert [s["threshold"] for s in result["stats"]] == [0.3, 0.6]
    assert set(doc["random_search_expected_samples_on_match"]) == {"0.3", "0.6"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algorithm", "enas"], "--algorithm 'enas': expected a comma-separated list of"),
        (["--algorithm", ","], "--algorithm ',': expected"),
        (["--landscape", "rugged"], "--landscape 'rugged': expected"),
        (["--thresholds", "0.5,high"], "--thresholds '0.5,high': expected comma-separated"),
        (["--option", "lr"], "--option 'lr': expected KEY=VALUE"),
        (["--space", "=3"], "--space '=3': expected KEY=VALUE"),
        (["--space", "levels=3"], "--space levels: unknown field"),
        (["--space", "num_cells=3"], "num_cells=3"),
        (["--samples", "0"], "samples=0"),
    ],
)
def test_cli_errors_name_the_bad_value(args: list[str], message: str, capsys) -> None:
    assert main(["bench-search", "--samples", "5", "--seeds", "1", "--quiet", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "value"),
    [("none", None), ("Null", None), ("true", True), ("False", False), ("3", 3), ("0.5", 0.5),
     ("1e-3", 1e-3), ("adam", "adam")],
)  # fmt: skip
def test_option_values_are_parsed(text: str, value: object) -> None:
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_noise_is_seeded_and_judged_without_it() -> None:
    quiet = run_seed("evolution", "match", SMALL, 2, samples=300)
    zero = run_seed("evolution", "match", SMALL, 2, samples=300, noise=0.0)
    assert (zero.hits, zero.unique, zero.best) == (quiet.hits, quiet.unique, quiet.best)
    a = run_seed("evolution", "match", SMALL, 2, samples=300, noise=0.2)
    b = run_seed("evolution", "match", SMALL, 2, samples=300, noise=0.2)
    assert (a.hits, a.samples, a.unique, a.best) == (b.hits, b.samples, b.unique, b.best)
    assert a.noise == 0.2 and (a.hits, a.unique) != (quiet.hits, quiet.unique)
    loud = run_seed("random", "match", SMALL, 0, samples=200, noise=5.0, thresholds=(1.0,))
    assert loud.best <= 1.0  # the noise-free reward: a noisy one would exceed 1 at this std


def test_noise_zero_is_the_noise_free_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench-search", "--algorithm", "evolution", "--landscape", "match", "--samples",
            "200", "--seeds", "2", "--space", "max_level=5", "--space", "num_cells=4",
            "--space", "num_intermediate=1", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    plain = capsys.readouterr().out
    assert main([*argv, "--noise", "0"]) == 0
    same = capsys.readouterr().out
    strip = [line for line in plain.splitlines() if not line.startswith("total time")]
    assert strip == [line for line in same.splitlines() if not line.startswith("total time")]
    assert "noise" not in plain
    assert main([*argv, "--noise", "0,0.3", "--relative-noise", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    levels = [(r["noise"], r["relative_noise"]) for r in doc["results"]]
    assert levels == [(0.0, True), (0.3, True)]
    spread = landscape_spread("match", SMALL, 0)
    assert doc["results"][1]["runs"][0]["noise"] == pytest.approx(0.3 * spread)
    assert main([*argv, "--noise", "0,0.3"]) == 0
    table = capsys.readouterr().out
    assert "| landscape | noise | algorithm |" in table and "| match | 0.3 | evolution |" in table
    assert main([*argv, "--noise", "loud"]) == 2
    assert "--noise 'loud': expected comma-separated numbers" in capsys.readouterr().err
