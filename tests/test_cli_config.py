"""``nasfpn config``: the presets shipped inside the package, listed and printed for copying."""

import json

import pytest
import yaml

from nasfpn import __version__
from nasfpn import config as config_io
from nasfpn.cli import main
from nasfpn.config import ConfigError
from nasfpn.proxy_train import load_proxy_config
from nasfpn.retrain import load_retrain_config
from nasfpn.search import SearchConfig, load_search_config

SHIPPED = {
    "proxy": ["cpu-mobile", "cpu-tiny", "mobile", "paper"],
    "retrain": ["cpu-mobile", "cpu-tiny", "r50_fpn_crop640_50e", "r50_nasfpn_crop640_50e"],
    "search": ["cpu-mobile", "mobile", "paper"],
    "supernet": ["cpu-tiny", "paper"],
}


def test_presets_are_package_resources() -> None:
    for kind, names in SHIPPED.items():
        assert config_io.preset_names(kind) == names
        for name in names:
            assert config_io.find_preset(name, kind).read_text().startswith("# ")
    with pytest.raises(ConfigError, match="preset kind 'model' is unknown"):
        config_io.preset_names("model")


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"nasfpn {__version__}"


def test_list_names_every_preset(capsys) -> None:
    assert main(["config", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["presets"]
    listed = {(r["kind"], r["name"]) for r in rows}
    shipped = {(kind, name) for kind, names in SHIPPED.items() for name in names}
    assert listed == shipped | {("search", "default")}
    assert all(r["summary"] for r in rows)
    tiny = next(r for r in rows if (r["kind"], r["name"]) == ("proxy", "cpu-tiny"))
    assert tiny["summary"].startswith("The embedded default")
    assert main(["config", "list"]) == 0
    text = capsys.readouterr().out
    assert "search/paper" in text and "nasfpn config show KIND/NAME > mine.yaml" in text


def test_show_prints_the_file_and_a_copy_loads_back(capsys, tmp_path) -> None:
    assert main(["config", "show", "search/paper"]) == 0
    text = capsys.readouterr().out
    assert text == config_io.find_preset("paper", "search").read_text()
    mine = tmp_path / "mine.yaml"
    mine.write_text(text.replace("trials: 10000", "trials: 50"))
    cfg = load_search_config(str(mine))
    assert (cfg.algorithm, cfg.trials) == ("ppo", 50)


def test_show_a_bare_name_only_where_unique(capsys) -> None:
    assert main(["config", "show", "r50_fpn_crop640_50e"]) == 0
    assert "epochs: 50" in capsys.readouterr().out
    assert main(["config", "show", "paper"]) == 2
    err = capsys.readouterr().err
    said = ("'paper' names a preset of each of proxy, search, supernet; say which: proxy/paper, "
            "search/paper or supernet/paper")  # fmt: skip
    assert said in err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "no preset is named 'nope'; the presets: ['proxy/cpu-mobile'"),
        ("model/paper", "preset kind 'model' in 'model/paper' is unknown; choose one of"),
        (
            "proxy/laptop",
            "proxy preset 'laptop' is unknown; proxy presets: ['cpu-mobile', "
            "'cpu-tiny', 'mobile', 'paper']",
        ),
    ],
)
def test_show_refuses_unknown_presets(spec, message, capsys) -> None:
    assert main(["config", "show", spec]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_default_search_is_the_configuration_defaults(capsys, tmp_path) -> None:
    assert main(["config", "show", "search/default"]) == 0
    text = capsys.readouterr().out
    assert yaml.safe_load(text) == config_io.to_dict(SearchConfig())
    assert load_search_config("default") == SearchConfig()
    with pytest.raises(ConfigError, match=r"search preset 'quick' is unknown; choose one of \['de"):
        load_search_config("quick")


@pytest.mark.parametrize(
    ("spec", "load"),
    [("proxy/cpu-tiny", load_proxy_config), ("retrain/cpu-tiny", load_retrain_config)],
)
def test_show_resolved_has_every_key(spec, load, capsys) -> None:
    assert main(["config", "show", spec, "--resolved"]) == 0
    values = yaml.safe_load(capsys.readouterr().out)
    assert values == config_io.to_dict(load(spec.split("/")[1]))
