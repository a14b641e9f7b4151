"""Command-line errors of `nasfpn search` (no Ray needed: they come before it starts)."""

import pytest

from nasfpn.cli import main
from nasfpn.search import load_search_config


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--resume", "{tmp}", "--seed", "3"], "--address and --verbose may be given"),
        (["--resume", "{tmp}"], "holds no search_config.yaml"),
        (["--set", "trials=0"], "trials=0 must be at least 1"),
        (["--set", "duplicates=forget"], "duplicates='forget' is unknown"),
        (["--set", "proxy_preset=huge", "--out", "{tmp}/s"], "proxy preset 'huge' is unknown"),
        (["--set", "proxy.epoch=3", "--out", "{tmp}/s"], "unknown key 'proxy.epoch'"),
        (
            ["--trials", "3", "--set", "reevaluate_top=4"],
            "reevaluate_top=4 is larger than trials=3",
        ),
        (["--set", "reevaluate_seeds=-2"], "reevaluate_seeds=-2 must be 0 (no re-evaluation)"),
        (["--set", "on_timeout=ignore"], "on_timeout='ignore' is unknown"),
        (
            ["--set", "proxy.max_train_seconds=-60", "--out", "{tmp}/s"],
            "max_train_seconds=-60.0 must be positive",
        ),
        (["--set", "proxy.epochs=-1", "--out", "{tmp}/s"], "epochs=-1 must be at least 1"),
    ],
)
def test_search_errors_are_one_line(argv, message, tmp_path, capsys) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["search", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()  # nothing written for a refused configuration


def test_paper_search_config_loads() -> None:
    cfg = load_search_config("configs/search/paper.yaml")
    assert (cfg.algorithm, cfg.gpus_per_trial, cfg.address) == ("ppo", 1.0, "auto")
    assert (cfg.reevaluate_top, cfg.reevaluate_seeds, cfg.on_timeout) == (20, 3, "discard")
    assert cfg.reevaluations <= cfg.concurrent  # one round of the cluster
    proxy = cfg.proxy_config()
    assert (proxy.image_size, proxy.repeats, proxy.width, proxy.eval_every) == (512, 3, 256, 1)
