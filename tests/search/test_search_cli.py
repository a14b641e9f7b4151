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


def test_cluster_manifests_follow_the_documented_steps() -> None:
    """docs/cluster/*.yaml against docs/search.md, "On a Ray cluster": this Ray version, token
    authentication on every node, the driver as `python -m nasfpn search`."""
    from pathlib import Path

    import ray
    import yaml

    docs = Path(__file__).resolve().parents[2] / "docs" / "cluster"
    job = yaml.safe_load((docs / "rayjob.yaml").read_text())["spec"]
    assert job["entrypoint"].startswith("python -m nasfpn search ")
    cluster = job["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    assert cluster["authOptions"] == {"mode": "token"}
    # the submitter pod reaches the dashboard through the head's Service
    assert "dashboard-host" not in cluster["headGroupSpec"]["rayStartParams"]
    launcher = yaml.safe_load((docs / "ray-cluster.yaml").read_text())
    starts = launcher["head_start_ray_commands"] + launcher["worker_start_ray_commands"]
    assert all(c.startswith("RAY_AUTH_MODE=token ray start") for c in starts if "start" in c)
    assert "/home/ubuntu/.ray/auth_token" in launcher["file_mounts"]
