from dataclasses import dataclass, field

import pytest

from nasfpn import config
from nasfpn.config import ConfigError


@dataclass(frozen=True)
class Optim:
    lr: float = 0.08
    momentum: float = 0.9
    milestones: tuple[int, ...] = (8,)


@dataclass(frozen=True)
class Experiment:
    name: str = "proxy"
    epochs: int = 10
    amp: bool = False
    data: str | None = None
    optim: Optim = field(default_factory=lambda: Optim(lr=0.04))

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs={self.epochs} must be at least 1")


def test_defaults_file_and_overrides(tmp_path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("epochs: 3\noptim:\n  momentum: 0.8\n  milestones: [2, 3]\n")
    cfg = config.load(Experiment, path, ["optim.lr=0.01", "amp=true", "data=/tmp/coco"])
    assert cfg == Experiment(
        epochs=3, amp=True, data="/tmp/coco", optim=Optim(lr=0.01, momentum=0.8, milestones=(2, 3))
    )
    # a section keeps the nested default's other values (lr 0.04 is not Optim's own default)
    assert config.load(Experiment, overrides=["optim.momentum=0.5"]).optim.lr == 0.04
    # YAML 1.1 reads 1e-3 as a string; a float field takes it as the number it means
    assert config.load(Experiment, overrides=["optim.lr=1e-3"]).optim.lr == 0.001


def test_round_trip_through_yaml(tmp_path) -> None:
    cfg = config.load(Experiment, overrides=["optim.milestones=[1, 2]", "epochs=4"])
    config.save(cfg, tmp_path / "resolved.yaml")
    assert config.load(Experiment, tmp_path / "resolved.yaml") == cfg
    assert config.to_dict(cfg)["optim"]["milestones"] == [1, 2]
    assert config.config_hash(cfg) == config.config_hash(
        config.load(Experiment, tmp_path / "resolved.yaml")
    )
    assert config.config_hash(cfg) != config.config_hash(Experiment())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["epoch=3"], "unknown key 'epoch'; allowed keys: amp, data, epochs, name, optim"),
        (
            ["optim.rate=1"],
            "unknown key 'optim.rate'; allowed keys in optim: lr, milestones, momentum",
        ),
        (["epochs=3.5"], "epochs: expected an integer, got 3.5"),
        (["optim.lr=fast"], "optim.lr: expected a number, got 'fast'"),
        (["amp=1"], "amp: expected true or false, got 1"),
        (["name=[1]"], "name: expected a string"),
        (["optim.milestones=8"], "optim.milestones: expected a list, got 8"),
        (["optim=3"], "optim: expected a section of lr, milestones, momentum"),
        (["epochs"], "not of the form key=value"),
        (["=3"], "has an empty key"),
        (["epochs=[1"], "the value is not valid YAML"),
        (["epochs=0"], "epochs=0 must be at least 1"),
    ],
)
def test_bad_overrides_name_the_key(overrides, message) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        config.load(Experiment, overrides=overrides)
    assert message in str(info.value)


def test_bad_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(Experiment, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        config.load(Experiment, bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        config.load(Experiment, listed)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert config.load(Experiment, empty) == Experiment()


def test_yaml_is_loaded_safely(tmp_path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        config.load(Experiment, evil)


@dataclass(frozen=True)
class Jitter:
    ratio_range: tuple[float, float] = (0.8, 1.2)
    pair: tuple[int, str] = (1, "a")


def test_fixed_length_tuples_are_checked_position_by_position() -> None:
    assert config.from_dict(Jitter, {"ratio_range": [1, 2]}).ratio_range == (1.0, 2.0)
    assert config.from_dict(Jitter, {"pair": [3, "b"]}).pair == (3, "b")
    with pytest.raises(ConfigError, match=r"pair\[1\]: expected a string, got 4"):
        config.from_dict(Jitter, {"pair": [3, 4]})
    with pytest.raises(ConfigError, match="ratio_range: expected 2 values"):
        config.from_dict(Jitter, {"ratio_range": [1.0]})
