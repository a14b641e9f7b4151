"""Shared weights: the neck switching genotypes, training with exact resume, scoring, errors."""

from __future__ import annotations

import json
import random

import pytest
import torch
from conftest import TINY_PROXY

from nasfpn.data.loader import TrainSampler
from nasfpn.model import NASFPNNeck
from nasfpn.space import SearchSpace, get_genotype
from nasfpn.supernet import (
    Scorer,
    SupernetConfig,
    load_supernet_config,
    read_summary,
    score,
    step_paths,
    train_supernet,
)

PROXY = {k: v for k, v in TINY_PROXY.items() if k not in ("eval_every", "max_train_seconds")}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))


def tiny_config(data, **changes) -> SupernetConfig:
    values = {"proxy": {**PROXY, "data": str(data)}, "steps": 6, "checkpoint_every": 2,
              "bn_batches": 2, "threads": 1, **changes}  # fmt: skip
    return SupernetConfig(**values)


def test_a_neck_switched_to_a_genotype_computes_what_a_neck_built_for_it_does() -> None:
    space = SearchSpace()
    first, other = (space.decode(space.sample(random.Random(s))) for s in (1, 2))
    channels = {3: 8, 4: 8, 5: 8}
    torch.manual_seed(0)
    shared = NASFPNNeck(first, channels, width=8, repeats=2).eval()
    built = NASFPNNeck(other, channels, width=8, repeats=2).eval()
    built.load_state_dict(shared.state_dict())  # same parameter names and shapes
    feats = {lvl: torch.randn(1, 8, 2 ** (8 - lvl), 2 ** (8 - lvl)) for lvl in (3, 4, 5)}
    shared.set_genotype(other)
    for a, b in zip(shared(feats), built(feats)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    small = SearchSpace(max_level=6, num_cells=6)
    with pytest.raises(ValueError, match="cannot run on this neck of 7 cells"):
        shared.set_genotype(small.decode(small.sample(random.Random(0))))


def test_a_sampler_resumed_part_way_yields_the_rest_of_its_epoch() -> None:
    sampler = TrainSampler(10, seed=4)
    sampler.set_epoch(3)
    whole = list(sampler)
    sampler.set_epoch(3, start=6)
    assert list(sampler) == whole[6:]
    with pytest.raises(ValueError, match="start=11"):
        sampler.set_epoch(0, start=11)


def test_paths_follow_from_seed_and_step_alone() -> None:
    space = SearchSpace()
    a = step_paths(space, 0, 5, 3)
    assert [g.key() for g in a] == [g.key() for g in step_paths(space, 0, 5, 3)]
    assert len({g.key() for g in a}) == 3 and all(space.contains(g) for g in a)
    assert step_paths(space, 1, 5, 1)[0].key() != a[0].key()


def test_the_schedule_is_stretched_over_the_steps() -> None:
    cfg = SupernetConfig(proxy_preset="paper", steps=1000)
    proxy = cfg.proxy_config()
    assert (proxy.epochs, proxy.milestones) == (10, (8,))
    assert cfg.optim_config(proxy).milestones == (800,)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("steps", 0, "steps=0 must be at least 1"), ("sampling", "fair", "sampling='fair'"),
     ("paths_per_step", 0, "paths_per_step=0"), ("num_cells", 6, "num_cells=6")],
)  # fmt: skip
def test_bad_settings_are_refused(key, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        SupernetConfig(**{key: value})


def test_the_presets_load() -> None:
    for name in ("cpu-tiny", "paper"):
        cfg = load_supernet_config(name)
        assert cfg.proxy_preset == name and cfg.proxy_config().repeats >= 2


def _weights(folder) -> dict[str, torch.Tensor]:
    return torch.load(folder / "checkpoint.pt", weights_only=True)["model"]


def _log(folder) -> list[dict]:
    lines = (folder / "train_log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def test_training_interrupted_and_resumed_ends_with_the_same_weights(tiny_synth, tmp_path) -> None:
    cfg = tiny_config(tiny_synth, paths_per_step=2)
    whole = train_supernet(cfg, tmp_path / "whole")
    assert whole.status == "ok" and whole.steps == 6 and whole.final_loss > 0
    assert whole.space["num_cells"] == 7 and whole.repeats == 1 and whole.cpu_model

    class Killed(Exception):
        pass

    def crash(entry: dict) -> None:
        if entry["step"] == 5:  # after the checkpoint of step 4, before the next
            raise Killed

    with pytest.raises(Killed):
        train_supernet(cfg, tmp_path / "cut", progress=crash)
    assert not (tmp_path / "cut" / "supernet.json").exists()
    resumed = train_supernet(cfg, tmp_path / "cut", resume=True)
    assert resumed.steps == 6 and resumed.status == "ok"
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = _log(tmp_path / "whole")
    assert [e["step"] for e in log] == [1, 2, 3, 4, 5, 6] and _log(tmp_path / "cut") == log
    assert all(len(e["paths"]) == 2 for e in log)
    # a finished run resumed is left as it is
    assert train_supernet(cfg, tmp_path / "cut", resume=True).steps == 6
    with pytest.raises(ValueError, match="is not empty"):
        train_supernet(cfg, tmp_path / "cut")


def test_scores_are_deterministic_and_the_feature_cache_changes_nothing(
    tiny_synth, tmp_path
) -> None:
    folder = tmp_path / "sn"
    train_supernet(tiny_config(tiny_synth), folder)
    space = SearchSpace()
    random_cell = space.decode(space.sample(random.Random(7)))
    results = score(folder, ["nasfpn", random_cell])
    assert [r.arch for r in results] == ["nasfpn", random_cell.key()]
    assert results[0].key == get_genotype("nasfpn").key()
    for r in results:
        assert 0 <= r.AP <= 1 and r.seconds > 0
    scorer = Scorer(folder)
    assert scorer._cache is not None  # the tiny set's features fit the default budget
    again = scorer.score(random_cell)
    assert again.AP == results[1].AP and again.AP50 == results[1].AP50
    uncached = Scorer(folder)
    uncached._cache = None  # as when the features exceed feature_cache_mib
    assert uncached.score(random_cell).AP == results[1].AP
    # BN statistics: recomputed per path (2 batches here) or those of training (0)
    trained_stats = Scorer(folder, bn_batches=0)
    assert trained_stats.describe()["bn_batches"] == 0
    first = trained_stats.score(random_cell).AP
    trained_stats.score(get_genotype("nasfpn"))
    assert first == trained_stats.score(random_cell).AP  # calibrations leave nothing behind


def test_scoring_refuses_what_it_cannot_score(tiny_synth, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_summary(tmp_path / "none")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileNotFoundError, match="not a supernet folder"):
        read_summary(tmp_path / "plain")
    cfg = tiny_config(tiny_synth, steps=4)

    def stop(entry: dict) -> None:
        if entry["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_supernet(cfg, tmp_path / "unfinished", progress=stop)
    with pytest.raises(ValueError, match=r"has not finished training.*--resume"):
        Scorer(tmp_path / "unfinished")
    train_supernet(cfg, tmp_path / "unfinished", resume=True)
    small = SearchSpace(max_level=6, num_cells=6)
    other_space = small.decode(small.sample(random.Random(0)))
    with pytest.raises(ValueError, match="outside this supernet's space"):
        score(tmp_path / "unfinished", [other_space])
    with pytest.raises(ValueError, match="no merging cells"):
        score(tmp_path / "unfinished", ["fpn"])
