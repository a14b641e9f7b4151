"""A search folder as pandas DataFrames: the ledger, the controller's health, the cost.

The files are those the search driver writes (docs/search.md): ``ledger.jsonl`` (one record per
controller sample), ``controller.jsonl`` (the controller's diagnostics after each record) and
``search_config.yaml``. They are read here without ``nasfpn.search``, which imports Ray and torch:
a notebook can follow a running search from a laptop. As ``nasfpn.search.read_ledger`` does, a
last line with no newline (a record being written, or cut short by a crash) is ignored.
"""

from __future__ import annotations

import json
import math
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from nasfpn import rewards
from nasfpn.space import Genotype, SearchSpace

# the file names of nasfpn.search (driver.py, ledger.py); a test checks that they agree
LEDGER_FILE = "ledger.jsonl"
HEALTH_FILE = "controller.jsonl"
CONFIG_FILE = "search_config.yaml"

# the metrics of a proxy trial (nasfpn.search.searcher METRICS and EXTRA), one column each
METRICS: tuple[str, ...] = ("AP", "AP50", "AP75", "APs", "APm", "APl")
EXTRA: tuple[str, ...] = (
    "params", "flops", "train_seconds", "eval_seconds", "epochs", "iterations"
)  # fmt: skip
# an architecture's cost (docs/cost.md), measured after its first training when the search
# measures costs; copied onto every row of the architecture, NaN where never measured
COST: tuple[str, ...] = rewards.COSTS
STATUSES: tuple[str, ...] = (
    "ok", "duplicate", "diverged", "early_stopped", "timeout", "failed", "error"
)  # fmt: skip
FAILED: tuple[str, ...] = ("error", "failed", "diverged", "timeout")
# statuses whose reward the controller learnt from (an `error` is discarded, docs/search.md;
# so is a `timeout` unless the search penalised timeouts, on_timeout: penalty)
LEARNT: tuple[str, ...] = ("ok", "duplicate", "diverged", "early_stopped")
# statuses whose reward measures a trained architecture (the best-so-far curve)
TRAINED: tuple[str, ...] = ("ok", "early_stopped")

REQUIRED: tuple[str, ...] = ("trial_id", "controller_step", "key", "reward", "status")
_TEXT = ("trial_id", "origin", "key", "status", "error", "duplicate_of", "node", "config_hash",
         "phase", "reevaluation_of", "precision", "cpu_model", "gpu_model",
         "reward_source")  # fmt: skip
_FLOAT = ("reward", "start_time", "end_time", *METRICS, *EXTRA)

PathArg = str | PathLike[str]


def _file(path: PathArg, name: str, what: str) -> Path:
    """``path / name`` for a folder, ``path`` for a file; FileNotFoundError if it is missing."""
    path = Path(path)
    target = path / name if path.is_dir() or not path.suffix else path
    if not target.is_file():
        raise FileNotFoundError(
            f"{str(target)!r} does not exist: {what}; give the --out folder of a `nasfpn search` "
            "(or set NASFPN_SEARCH_DIR for the notebooks)"
        )
    return target


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines of a file; a last line without a newline is being written."""
    rows = []
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                break  # cut mid-write (a running search) or by a crash
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{path}:{number} is not JSON ({err.msg}); only the last line of a search "
                    "file may be incomplete, so this file was edited or is not a search's"
                ) from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {row!r}")
            rows.append(row)
    return rows


def load_ledger(path: PathArg) -> pd.DataFrame:
    """The ledger of a search folder (or a ledger file): one row per record, in ledger order.

    Columns (docs/analysis.md): ``record`` (1-based position, the x axis of every curve and
    ``ledger_records`` of ``controller.jsonl``), the record's fields (``trial_id``,
    ``controller_step``, ``origin``, ``key``, ``reward``, ``status``, ``error``,
    ``duplicate_of``, ``node``, ``start_time``, ``end_time``, ``config_hash``, ``phase``:
    ``search`` for a controller sample or ``reevaluation`` for an extra-seed run of a top
    architecture, ``reevaluation_of``: the trial it re-evaluates, ``seed``: the proxy training
    seed, ``precision``: fp32 or bf16; older ledgers lack the last four: ``search``, NaN,
    NaN, NaN; ``cpu_model`` and ``gpu_model``: where the trial ran (rewards are reproducible
    per CPU model and precision), NaN in older ledgers, for duplicates and for trials whose
    worker failed; ``controller_proposals``: the controller's proposals when it learnt from a
    search record, ``<NA>`` elsewhere; ``reward_source``: ``proxy`` for a stand-alone proxy
    training, ``supernet`` for a score on shared weights, docs/oneshot.md), every metric
    as its own float column (``AP`` ... ``APl``, ``params``, ``flops``, ``train_seconds``,
    ``eval_seconds``, ``epochs``, ``iterations``; NaN where the trial has none, as for
    duplicates and failures; metrics a newer search adds get columns too), the architecture's
    cost on every row of its key (``latency_ms``, ``cost_flops``: docs/cost.md; NaN when the
    search measured none), one column per
    training loss (``loss_cls``, ``loss_box``), ``actions`` and ``genotype`` (lists and dicts),
    and derived ones: ``duration`` (end - start, seconds), ``elapsed``
    (end_time since the first start, seconds), ``failed`` (error, failed, diverged or timeout),
    ``best_so_far`` (best reward of a trained search trial so far) and ``unique`` (distinct keys
    so far).
    """
    file = _file(path, LEDGER_FILE, "no search ledger there")
    records = read_jsonl(file)
    if not records:
        raise ValueError(
            f"{str(file)!r} holds no complete record yet: the search has not finished a trial. "
            "Wait for the first trial to end, or check that this is the right search folder"
        )
    rows = []
    for number, record in enumerate(records, start=1):
        missing = [name for name in REQUIRED if name not in record]
        if missing:
            raise ValueError(
                f"{file}:{number}: the record lacks {', '.join(missing)}; a ledger record "
                f"holds {', '.join(REQUIRED)} (docs/search.md), so this is not a search ledger"
            )
        rows.append(_flatten(record, number))
    frame = pd.DataFrame(rows)
    for name in _TEXT:
        frame[name] = frame[name].astype("str")
    for name in _FLOAT:
        frame[name] = frame[name].astype("float64")
    frame["controller_step"] = frame["controller_step"].astype("int64")
    frame["seed"] = frame["seed"].astype("Int64")
    frame["controller_proposals"] = frame["controller_proposals"].astype("Int64")
    for name in COST:  # an architecture's cost, measured once: on every row of its key
        column = frame[name] if name in frame else pd.Series(float("nan"), index=frame.index)
        frame[name] = column.astype("float64").groupby(frame["key"]).transform("first")
    frame["duration"] = frame["end_time"] - frame["start_time"]
    frame["elapsed"] = frame["end_time"] - frame["start_time"].min()
    frame["failed"] = frame["status"].isin(FAILED)
    searched = frame["phase"] == rewards.SEARCH
    trained = frame["reward"].where(frame["status"].isin(TRAINED) & searched)
    frame["best_so_far"] = trained.cummax().ffill()  # cummax leaves NaN where skipped
    frame["unique"] = (~frame["key"].duplicated()).cumsum().astype("int64")
    return frame


def _flatten(record: dict[str, Any], number: int) -> dict[str, Any]:
    metrics = record.get("metrics") or {}
    losses = record.get("losses") or {}
    row: dict[str, Any] = {"record": number}
    for name in ("trial_id", "controller_step", "origin", "key", "reward", "status", "error",
                 "duplicate_of", "node", "start_time", "end_time", "config_hash",
                 "reevaluation_of", "seed", "precision", "cpu_model", "gpu_model",
                 "controller_proposals"):  # fmt: skip
        row[name] = record.get(name)
    row["phase"] = rewards.phase(record)
    row["reward_source"] = rewards.source(record)
    for name in (*METRICS, *EXTRA):
        row[name] = metrics.get(name)
    for name, value in metrics.items():  # figures a newer search adds (worker_start, ...)
        if name not in row:
            row[name] = value
        elif name not in METRICS and name not in EXTRA:  # a name taken by a record field
            row[f"metric_{name}"] = value
    row.update({name if name.startswith("loss") else f"loss_{name}": value
                for name, value in losses.items()})  # fmt: skip
    row["actions"] = record.get("actions")
    row["genotype"] = record.get("genotype")
    return row


def load_controller(path: PathArg) -> pd.DataFrame:
    """``controller.jsonl``: the controller's health after each ledger record.

    One row per line, ``ledger_records`` (int, joins ``load_ledger``'s ``record``) and ``time``
    first, then one float column per figure. The figures differ between algorithms (REINFORCE
    and PPO add ``policy_entropy``, ``baseline``, ``loss``..., evolution ``population_*``) and
    a figure with no value yet is left out of a line: it is NaN here.
    """
    file = _file(path, HEALTH_FILE, "no controller health file there (searches started before "
                 "it existed have none)")  # fmt: skip
    rows = read_jsonl(file)
    if not rows:
        raise ValueError(
            f"{str(file)!r} holds no complete line yet: the search has not finished a trial. "
            "Wait for the first trial to end, or check that this is the right search folder"
        )
    for number, row in enumerate(rows, start=1):
        if "ledger_records" not in row:
            raise ValueError(
                f"{file}:{number}: the line lacks 'ledger_records'; controller.jsonl lines hold "
                "ledger_records, time and the controller's diagnostics (docs/search.md)"
            )
    frame = pd.DataFrame(rows)
    others = [c for c in frame.columns if c not in ("ledger_records", "time")]
    frame = frame[["ledger_records", "time", *others]]
    frame["ledger_records"] = frame["ledger_records"].astype("int64")
    return frame.astype({c: "float64" for c in frame.columns if c != "ledger_records"})


def load_search_config(path: PathArg) -> dict[str, Any]:
    """The search's resolved ``search_config.yaml`` as a plain dict."""
    file = _file(path, CONFIG_FILE, "no search configuration there")
    config = yaml.safe_load(file.read_text())
    if not isinstance(config, dict):
        raise ValueError(f"{str(file)!r} is not a YAML mapping of search settings")
    return config


def search_cost(path: PathArg, ledger: pd.DataFrame | None = None) -> dict[str, float]:
    """What the search's trials cost: ``trial_hours`` (the sum of end - start over all records),
    ``cpu_hours`` and ``gpu_hours`` (times ``cpus_per_trial``/``gpus_per_trial`` of
    ``search_config.yaml``), ``wall_hours`` (first start to last end) and the two settings.

    Duplicates take no time (their start and end are equal). Trials that failed count: they held
    their resources too.
    """
    config = load_search_config(path)
    resources = {}
    for name in ("cpus_per_trial", "gpus_per_trial"):
        value = config.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(
                f"{name}={value!r} in the search configuration of {str(path)!r}: expected a "
                "number >= 0 (search_config.yaml is written by `nasfpn search`; restore it)"
            )
        resources[name] = float(value)
    frame = load_ledger(path) if ledger is None else ledger
    trial_hours = float(frame["duration"].fillna(0).clip(lower=0).sum()) / 3600
    wall = float(frame["end_time"].max() - frame["start_time"].min())
    return {
        "trial_hours": trial_hours,
        "cpu_hours": trial_hours * resources["cpus_per_trial"],
        "gpu_hours": trial_hours * resources["gpus_per_trial"],
        "wall_hours": wall / 3600 if math.isfinite(wall) else math.nan,
        **resources,
    }


def space_of(ledger: pd.DataFrame) -> SearchSpace:
    """The search space of a ledger's genotypes (levels, cells, intermediate cells)."""
    for doc in ledger["genotype"]:
        if isinstance(doc, dict):
            genotype = Genotype.from_dict(doc)
            outputs = sum(c.is_output for c in genotype.cells)
            return SearchSpace(
                min_level=genotype.min_level,
                max_level=genotype.max_level,
                num_cells=len(genotype.cells),
                num_intermediate=len(genotype.cells) - outputs,
            )
    raise ValueError(
        "no record of this ledger holds a genotype, so its search space is unknown; pass "
        "space=SearchSpace(...) explicitly"
    )


def top_k(ledger: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The best ``k`` architectures with a run trained to the end (status ``ok``).

    The same ranking as the search's ``top_k.json`` (:func:`nasfpn.rewards.rank`): by the mean
    reward over each architecture's runs (re-evaluations included, duplicates replay rather
    than add), re-evaluated architectures first, ties to the earlier controller step; in a
    one-shot search, by stand-alone runs only, ahead of the architectures known by their
    shared-weight score alone. Columns: ``key``, ``reward`` (the mean; also ``reward_mean``),
    ``reward_std`` (NaN for one run), ``rewards`` and ``seeds`` (lists, one entry per run),
    ``evaluations``, ``reward_source`` (what the mean is of), ``score`` (the shared-weight score,
    NaN without one), ``reevaluated``, ``samples`` (controller samples of that key, duplicates
    included), the first ``ok`` search run's ``record``, ``trial_id`` and
    ``controller_step``, the metrics of the first ``ok`` run of the ranked source, and
    ``genotype``.
    """
    if k < 1:
        raise ValueError(f"k={k}: expected at least 1 architecture to list")
    columns = ["key", "reward", "reward_mean", "reward_std", "rewards", "seeds", "evaluations",
               "reward_source", "score", "reevaluated", "samples", "record", "trial_id",
               "controller_step", *METRICS, *EXTRA, "genotype"]  # fmt: skip
    fields = ["key", "status", "reward", "duplicate_of", "phase", "seed", "trial_id",
              "controller_step", "reward_source"]  # fmt: skip
    records = ledger[fields].astype(object).where(ledger[fields].notna(), None)
    ranked = rewards.rank(records.to_dict("records"))[:k]
    if not ranked:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(ranked)
    first = ledger.iloc[table["record"].to_numpy() - 1]  # rank's positions are 1-based
    measured = ledger.iloc[table["measured_record"].to_numpy() - 1]
    table["genotype"] = first["genotype"].to_numpy()
    for name in (*METRICS, *EXTRA):
        table[name] = measured[name].to_numpy()
    table["reward_std"] = table["reward_std"].astype("float64")
    table["score"] = table["score"].astype("float64")
    return table[columns].reset_index(drop=True)


def latest_search(root: PathArg = "runs") -> Path:
    """The most recently written search folder under ``root`` (one holding a ledger)."""
    root = Path(root)
    found = sorted(root.glob(f"*/{LEDGER_FILE}"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(
            f"no search folder (one holding {LEDGER_FILE}) under {str(root)!r}; run "
            "`nasfpn search` first, or point NASFPN_SEARCH_DIR at a search's --out folder"
        )
    return found[-1].parent
