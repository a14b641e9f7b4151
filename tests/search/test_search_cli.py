"""Command-line errors of `nasfpn search` (no Ray needed: they come before it starts)."""

import socket

import pytest

from nasfpn import config as config_io
from nasfpn.cli import main
from nasfpn.search import SearchConfig, load_search_config


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
    cfg = load_search_config("paper")
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
    words = job["entrypoint"].split()  # its --config is a preset the installed package has
    assert load_search_config(words[words.index("--config") + 1]).algorithm == "ppo"
    cluster = job["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    assert cluster["authOptions"] == {"mode": "token"}
    # the submitter pod reaches the dashboard through the head's Service
    assert "dashboard-host" not in cluster["headGroupSpec"]["rayStartParams"]
    launcher = yaml.safe_load((docs / "ray-cluster.yaml").read_text())
    starts = launcher["head_start_ray_commands"] + launcher["worker_start_ray_commands"]
    assert all(c.startswith("RAY_AUTH_MODE=token ray start") for c in starts if "start" in c)
    assert "/home/ubuntu/.ray/auth_token" in launcher["file_mounts"]


def _closed_port() -> int:
    """A port of this machine nothing listens on (as test_search_cluster's errors use)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("existing", [False, True])
def test_an_unreachable_address_fails_before_the_folder_is_written(
    existing, tmp_path, capsys
) -> None:
    out = tmp_path / "s"
    if existing:
        out.mkdir()
    address = f"127.0.0.1:{_closed_port()}"
    assert main(["search", "--address", address, "--out", str(out), "--trials", "2"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and f"no Ray cluster answers at {address}" in errors[0]
    assert out.is_dir() == existing and not (existing and any(out.iterdir()))


@pytest.mark.parametrize("given", [False, True])
def test_a_resume_checks_its_address_before_rewriting_anything(given, tmp_path, capsys) -> None:
    """The address from --address or, without it, from the saved configuration."""
    address = f"127.0.0.1:{_closed_port()}"
    config_io.save(SearchConfig(trials=2, address=None if given else address),
                   tmp_path / "search_config.yaml")  # fmt: skip
    before = _files(tmp_path)
    argv = ["search", "--resume", str(tmp_path), *(["--address", address] if given else [])]
    assert main(argv) == 2
    assert f"no Ray cluster answers at {address}" in capsys.readouterr().err
    assert _files(tmp_path) == before  # the saved configuration is not rewritten


def test_a_cluster_of_another_version_is_refused_in_one_line() -> None:
    """check_cluster's last check, on what a head records of itself in its GCS (a real head of
    another Ray version is not at hand here; Ray's own comparison runs on the record)."""
    import sys

    import ray

    from nasfpn.ray_setup import ClusterJoinError, check_versions

    python = ".".join(map(str, sys.version_info[:3]))
    check_versions("10.0.0.1:6379", {"ray_version": ray.__version__, "python_version": python})
    check_versions("10.0.0.1:6379", None)  # nothing recorded: ray.init decides
    with pytest.raises(ClusterJoinError, match=r"at 10\.0\.0\.1:6379 runs another Ray version "
                       r"than this environment's .* Ray: 2\.0\.0"):  # fmt: skip
        check_versions("10.0.0.1:6379", {"ray_version": "2.0.0", "python_version": python})
