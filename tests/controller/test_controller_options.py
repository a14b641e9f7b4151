"""make_algorithm: names and options are checked, nothing is silently dropped."""

from __future__ import annotations

import pytest

from nasfpn.controller import (
    ALGORITHMS,
    PPOConfig,
    ReinforceConfig,
    algorithm_options,
    make_algorithm,
)
from nasfpn.space import SearchSpace

SPACE = SearchSpace(min_level=3, max_level=5, num_cells=4, num_intermediate=1)


def test_unknown_algorithm_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown algorithm 'enas'.*reinforce, ppo, random"):
        make_algorithm("enas", SPACE)
    with pytest.raises(ValueError, match="unknown algorithm"):
        algorithm_options("enas")


@pytest.mark.parametrize(
    ("name", "option", "allowed"),
    [
        ("reinforce", "learning_rate", "batch_size, lr, hidden_size"),
        ("ppo", "epoch", "epochs, clip"),
        ("random", "lr", "(none)"),
        ("evolution", "tournament", "population_size, sample_size"),
    ],
)
def test_unknown_options_raise_naming_the_allowed_ones(name: str, option: str, allowed: str):
    with pytest.raises(ValueError, match=rf"unknown option\(s\) '{option}'.*{allowed}"):
        make_algorithm(name, SPACE, **{option: 1})


@pytest.mark.parametrize(
    ("name", "option", "value", "expected"),
    [
        ("reinforce", "batch_size", 0, "an int >= 1"),
        ("reinforce", "batch_size", 2.0, "an int >= 1"),
        ("reinforce", "batch_size", True, "an int >= 1"),
        ("reinforce", "lr", 0.0, "a number > 0"),
        ("reinforce", "lr", "0.1", "a number > 0"),
        ("reinforce", "lr", float("nan"), "a number > 0"),
        ("reinforce", "hidden_size", -3, "an int >= 1"),
        ("reinforce", "num_layers", 0, "an int >= 1"),
        ("reinforce", "temperature", -1.0, "a number > 0"),
        ("reinforce", "tanh_constant", 0, r"a number > 0, or None"),
        ("reinforce", "entropy_weight", -0.1, "a number >= 0"),
        ("reinforce", "baseline_decay", 1.0, "a number >= 0 and < 1"),
        ("reinforce", "normalize_advantages", 1, "True or False"),
        ("reinforce", "position_embedding", "yes", "True or False"),
        ("reinforce", "decision_bias", None, "True or False"),
        ("ppo", "epochs", 0, "an int >= 1"),
        ("ppo", "clip", 1.0, "a number > 0 and < 1"),
        ("evolution", "population_size", 1, "an int >= 2"),
        ("evolution", "sample_size", 0, r"an int >= 1 and <= 20, or None"),
        ("evolution", "sample_size", 21, r"an int >= 1 and <= 20, or None"),
    ],
)
def test_bad_values_raise_with_the_range_and_default(name, option, value, expected) -> None:
    with pytest.raises(ValueError, match=rf"{option}=.*expected {expected} \(default "):
        make_algorithm(name, SPACE, **{option: value})


def test_good_options_reach_the_algorithm() -> None:
    algorithm = make_algorithm("ppo", SPACE, seed=1, lr=1, epochs=3, tanh_constant=None)
    assert algorithm.config == PPOConfig(lr=1.0, epochs=3, tanh_constant=None)
    assert isinstance(algorithm.config.lr, float)
    assert algorithm.optimizer.param_groups[0]["lr"] == 1.0
    assert algorithm.policy.tanh_constant is None


def test_algorithm_options_lists_every_option_with_its_default() -> None:
    assert algorithm_options("random") == {}
    assert algorithm_options("reinforce")["lr"] == ReinforceConfig().lr
    assert set(algorithm_options("ppo")) == set(algorithm_options("reinforce")) | {"epochs", "clip"}
    for name in ALGORITHMS:
        assert make_algorithm(name, SPACE, **algorithm_options(name)).config == (
            ALGORITHMS[name].Config()
        )
