"""The ledger, controller health and search configuration as DataFrames (hand-written folders)."""

import ast
import contextlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from analysis_helpers import (
    T0,
    health_lines,
    mixed_records,
    record,
    reevaluation,
    write_search,
)

from nasfpn.analysis import (
    latest_search,
    load_controller,
    load_ledger,
    load_search_config,
    search_cost,
    space_of,
    top_k,
)
from nasfpn.analysis import ledger as analysis_ledger
from nasfpn.space import SearchSpace

TEXT = ["trial_id", "origin", "key", "status", "error", "duplicate_of", "node", "config_hash",
        "phase", "reevaluation_of", "precision", "cpu_model", "gpu_model"]  # fmt: skip
FLOAT = ["reward", "start_time", "end_time", "AP", "AP50", "AP75", "APs", "APm", "APl", "params",
         "flops", "train_seconds", "eval_seconds", "epochs", "iterations", "duration", "elapsed",
         "best_so_far"]  # fmt: skip


@pytest.fixture
def mixed(tmp_path):
    return write_search(tmp_path / "mixed", mixed_records(), health=health_lines(9))


def test_schema_of_a_ledger_with_every_status(mixed) -> None:
    df = load_ledger(mixed)
    assert len(df) == 9
    assert df["record"].tolist() == list(range(1, 10))
    assert df["record"].dtype == "int64" and df["controller_step"].dtype == "int64"
    assert df["unique"].dtype == "int64" and df["failed"].dtype == "bool"
    for name in TEXT:
        assert pd.api.types.is_string_dtype(df[name]), name
    for name in FLOAT:
        assert df[name].dtype == "float64", name
    assert df["actions"].dtype == object and isinstance(df["actions"][0], list)
    assert isinstance(df["genotype"][0], dict) and len(df["actions"][0]) == 28
    # losses flattened, and a metric the documented list does not have gets its own column
    assert df["loss_cls"].tolist()[:3] == [1.0, 1.0, 1.0]
    assert df["worker_start"].tolist()[-1] == 1.0 and math.isnan(df["worker_start"][0])


def test_values_derived_from_the_records(mixed) -> None:
    df = load_ledger(mixed)
    assert df["status"].tolist() == ["ok", "ok", "ok", "duplicate", "failed", "diverged",
                                     "error", "early_stopped", "ok"]  # fmt: skip
    assert df["controller_step"].tolist() == [0, 1, 2, 3, 4, 5, 7, 6, 8]  # resumed: 7 before 6
    assert df["best_so_far"].tolist() == [0.30, 0.30, 0.40, 0.40, 0.40, 0.40, 0.40, 0.40, 0.40]
    assert df["unique"].tolist() == [1, 2, 3, 3, 4, 5, 6, 7, 8]  # record 4 repeats record 1
    assert df["failed"].tolist() == [False] * 4 + [True, True, True, False, False]
    assert df["duration"].tolist() == [100, 120, 100, 0, 30, 40, 10, 50, 100]
    assert df["elapsed"].tolist()[-1] == 1200
    assert df["duplicate_of"][3] == "t0" and df["duplicate_of"].isna().sum() == 8
    assert df["error"][4] == "RuntimeError: CUDA <out of memory>" and pd.isna(df["error"][0])
    # null metrics (failed), empty metrics (duplicate, error) and a null AP (diverged) are NaN
    assert df.loc[3:6, "AP"].isna().all() and df.loc[3:6, "params"].isna().all()
    assert df["AP50"][0] == 0.60 and df["params"][2] == 900_000


def test_a_last_line_being_written_is_ignored(tmp_path) -> None:
    records = [record(0), record(1)]
    folder = write_search(tmp_path / "s", records, cut=json.dumps(record(2))[:50])
    df = load_ledger(folder)
    assert df["trial_id"].tolist() == ["t0", "t1"]
    assert load_ledger(folder / "ledger.jsonl")["trial_id"].tolist() == ["t0", "t1"]


def test_missing_and_empty_ledgers_say_what_to_do(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere.*ledger\.jsonl.*--out folder"):
        load_ledger(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "ledger.jsonl").write_text("")
    with pytest.raises(ValueError, match=r"empty.*no complete record yet.*first trial"):
        load_ledger(tmp_path / "empty")
    folder = write_search(tmp_path / "cut", [], cut='{"trial_id": "t0", "contr')
    with pytest.raises(ValueError, match="no complete record yet"):
        load_ledger(folder)


def test_broken_lines_are_refused_with_their_line_number(tmp_path) -> None:
    folder = write_search(tmp_path / "s", [record(0)])
    path = folder / "ledger.jsonl"
    path.write_text(path.read_text() + "{not json\n" + json.dumps(record(1)) + "\n")
    with pytest.raises(ValueError, match=r"ledger\.jsonl:2 is not JSON"):
        load_ledger(folder)
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"ledger\.jsonl:1: expected a JSON object"):
        load_ledger(folder)
    broken = record(0)
    del broken["status"], broken["key"]
    path.write_text(json.dumps(broken) + "\n")
    with pytest.raises(ValueError, match=r"ledger\.jsonl:1: the record lacks key, status"):
        load_ledger(folder)


def test_controller_health(mixed) -> None:
    health = load_controller(mixed)
    assert list(health.columns[:2]) == ["ledger_records", "time"]
    assert health["ledger_records"].dtype == "int64" and len(health) == 9
    assert all(health[c].dtype == "float64" for c in health.columns[1:])
    assert health["baseline"][:2].isna().all() and health["baseline"][2] == pytest.approx(0.3)
    assert health["unique_fraction"].tolist()[:2] == [1.0, 0.5]


def test_controller_health_errors(tmp_path) -> None:
    folder = write_search(tmp_path / "s", [record(0)])
    with pytest.raises(FileNotFoundError, match=r"controller\.jsonl"):
        load_controller(folder)
    (folder / "controller.jsonl").write_text('{"ledger_records": 1')  # being written
    with pytest.raises(ValueError, match="no complete line yet"):
        load_controller(folder)
    (folder / "controller.jsonl").write_text('{"time": 1.0}\n')
    with pytest.raises(ValueError, match=r"controller\.jsonl:1: the line lacks 'ledger_records'"):
        load_controller(folder)


def test_search_cost_in_cpu_and_gpu_hours(mixed) -> None:
    cost = search_cost(mixed)
    # durations 100+120+100+0+30+40+10+50+100 s, at 2 CPUs and half a GPU per trial
    assert cost["trial_hours"] == pytest.approx(550 / 3600)
    assert cost["cpu_hours"] == pytest.approx(2 * 550 / 3600)
    assert cost["gpu_hours"] == pytest.approx(0.5 * 550 / 3600)
    assert cost["wall_hours"] == pytest.approx(1200 / 3600)
    assert load_search_config(mixed)["algorithm"] == "reinforce"


def test_search_cost_errors(tmp_path) -> None:
    folder = write_search(tmp_path / "s", [record(0)], config={})
    with pytest.raises(FileNotFoundError, match=r"search_config\.yaml"):
        search_cost(folder)
    (folder / "search_config.yaml").write_text("- a list\n")
    with pytest.raises(ValueError, match="not a YAML mapping"):
        search_cost(folder)
    (folder / "search_config.yaml").write_text("cpus_per_trial: 1\ngpus_per_trial: -1\n")
    with pytest.raises(ValueError, match=r"gpus_per_trial=-1 .*expected a number >= 0"):
        search_cost(folder)


def test_top_k_ranks_trained_architectures_by_mean_reward(mixed) -> None:
    df = load_ledger(mixed)
    best = top_k(df, 3)
    # ok records only (not the duplicate, the early-stopped, the diverged or failed ones)
    assert best["trial_id"].tolist() == ["t2", "t0", "t1"]
    assert best["key"].tolist() == [df["key"][2], df["key"][0], df["key"][1]]
    assert best["reward"].tolist() == [0.40, 0.30, 0.25]
    assert best["samples"].tolist() == [1, 2, 1]  # t0's architecture was sampled again
    assert best["evaluations"].tolist() == [1, 1, 1]
    assert len(top_k(df, 10)) == 4  # four architectures were trained to the end
    with pytest.raises(ValueError, match="k=0"):
        top_k(df, 0)


def test_top_k_averages_reevaluations(tmp_path) -> None:
    # duplicates: reevaluate trains an architecture again; the mean is its reward
    again = record(2, reward=0.10, seed=0, trial_id="t2")
    folder = write_search(tmp_path / "s", [record(0, reward=0.30), record(1, reward=0.25), again])
    best = top_k(load_ledger(folder))
    assert best["trial_id"].tolist() == ["t1", "t0"]  # t0's architecture: mean 0.20
    assert best["reward"].tolist() == pytest.approx([0.25, 0.20])
    assert best["evaluations"].tolist() == [1, 2]


def test_reevaluation_records_are_ranked_by_their_mean(tmp_path) -> None:
    t0, t1, t2 = record(0, reward=0.30), record(1, reward=0.25), record(2, reward=0.20)
    extra = [reevaluation(t0, 0.18, 1, 200), reevaluation(t1, 0.24, 1, 200)]
    df = load_ledger(write_search(tmp_path / "s", [t0, t1, t2, *extra]))
    assert df["phase"].tolist() == ["search"] * 3 + ["reevaluation"] * 2
    assert df["seed"].tolist()[3:] == [1, 1] and df["seed"].isna().sum() == 3  # older records
    assert df["reevaluation_of"].tolist()[3:] == ["t0", "t1"]
    assert df["best_so_far"].tolist() == [0.30] * 5  # re-evaluations are not search samples
    assert df["unique"].tolist() == [1, 2, 3, 3, 3]
    best = top_k(df, 3)
    # t0's lucky 0.30 averages to 0.24 with its second seed; t1's to 0.245: t1 first, and t2's
    # single 0.20 after both re-evaluated architectures
    assert best["trial_id"].tolist() == ["t1", "t0", "t2"]
    assert best["reward"].tolist() == pytest.approx([0.245, 0.24, 0.20])
    assert best["rewards"].tolist() == [[0.25, 0.24], [0.30, 0.18], [0.20]]
    assert best["reevaluated"].tolist() == [True, True, False]
    assert best["reward_std"].iloc[1] == pytest.approx(0.12 / 2**0.5)
    assert math.isnan(best["reward_std"].iloc[2]) and best["evaluations"].tolist() == [2, 2, 1]
    assert best["record"].tolist() == [2, 1, 3] and best["AP50"].tolist() == [0.5, 0.6, 0.4]


def test_top_k_of_a_search_with_no_finished_trial(tmp_path, mixed) -> None:
    folder = write_search(tmp_path / "s", [record(0, "failed", 0.0, metrics=None)])
    best = top_k(load_ledger(folder), 5)
    assert best.empty and list(best.columns) == list(top_k(load_ledger(mixed)).columns)


def test_space_of_reads_the_genotypes(tmp_path) -> None:
    small = SearchSpace(min_level=3, max_level=5, num_cells=4, num_intermediate=1)
    folder = write_search(tmp_path / "s", [record(0, space=small)])
    df = load_ledger(folder)
    assert space_of(df) == small
    with pytest.raises(ValueError, match="no record of this ledger holds a genotype"):
        space_of(df.assign(genotype=[None]))


def test_latest_search(tmp_path) -> None:
    old = write_search(tmp_path / "runs" / "a", [record(0)])
    new = write_search(tmp_path / "runs" / "b", [record(0)])
    os.utime(old / "ledger.jsonl", (T0, T0))
    assert latest_search(tmp_path / "runs") == new
    with pytest.raises(FileNotFoundError, match="NASFPN_SEARCH_DIR"):
        latest_search(tmp_path / "nothing")


def _constants(path: Path) -> dict[str, object]:
    """Module-level constants of a source file, read without importing it (no Ray here)."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    return found


def test_file_names_and_metrics_agree_with_the_search() -> None:
    search = Path(__file__).resolve().parents[2] / "src" / "nasfpn" / "search"
    driver, searcher = _constants(search / "driver.py"), _constants(search / "searcher.py")
    assert _constants(search / "ledger.py")["LEDGER_FILE"] == analysis_ledger.LEDGER_FILE
    assert driver["HEALTH_FILE"] == analysis_ledger.HEALTH_FILE
    assert driver["CONFIG_FILE"] == analysis_ledger.CONFIG_FILE
    assert searcher["METRICS"] == analysis_ledger.METRICS
    assert set(analysis_ledger.EXTRA) <= set(searcher["EXTRA"])


def test_analysis_imports_neither_torch_nor_ray_nor_pyplot() -> None:
    code = (
        "import sys, nasfpn.analysis; "
        "sys.exit(bool({'torch', 'ray', 'matplotlib.pyplot'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_real_search(tiny_search) -> None:
    df = load_ledger(tiny_search)
    search, extra = df[df["phase"] == "search"], df[df["phase"] == "reevaluation"]
    assert len(search) == 4 and set(df["status"]) <= {"ok", "duplicate"}
    assert sorted(search["controller_step"]) == [0, 1, 2, 3]
    # the top 2 (fewer if fewer architectures were trained) re-trained with seed 1
    trained = search[search["status"] == "ok"]
    assert len(extra) == min(2, trained["key"].nunique()) and (extra["seed"] == 1).all()
    assert set(extra["key"]) <= set(trained["key"]) and (trained["seed"] == 0).all()
    assert df.index[df["phase"] == "reevaluation"].min() > search.index.max()  # at the end
    assert set(extra["reevaluation_of"]) <= set(trained["trial_id"])
    assert set(df.loc[df["status"] == "ok", "precision"]) <= {"fp32", "bf16"}
    assert df.loc[df["status"] == "ok", "cpu_model"].str.len().gt(0).all()
    assert (df["duration"] > 0).any() and df.loc[df["status"] == "ok", "params"].gt(0).all()
    health = load_controller(tiny_search)
    assert health["ledger_records"].tolist() == df["record"].tolist()
    assert health["loss"].notna().any()  # REINFORCE with batch 2 updated its policy
    assert search_cost(tiny_search)["cpu_hours"] == pytest.approx(df["duration"].sum() / 3600)
    exported = json.loads((tiny_search / "top_k.json").read_text())["top_k"]
    best = top_k(df, 5)
    assert best["key"].tolist() == [e["key"] for e in exported]
    assert best["rewards"].tolist() == [e["rewards"] for e in exported]
    assert best["reevaluated"].tolist()[: len(extra)] == [True] * len(extra)
    assert (best.loc[best["reevaluated"], "evaluations"] == 2).all()
