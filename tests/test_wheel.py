"""The built wheel is a complete install: installed into a fresh virtual environment outside the
source tree, it runs from another folder with its presets (read through the package's
resources) and the embedded dataset, as a user who ran ``pip install nasfpn`` would.

Offline: the dependencies come from the project's own lock (``uv sync --locked`` into the new
environment, from uv's cache of what ``uv sync`` already downloaded), hard-linked rather than
copied (a copy of torch and Ray is about 6 GB); the wheel itself goes in without dependencies,
and ``uv pip check`` then proves that what its metadata asks for is installed. About a minute
on 2 cores.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nasfpn import __version__

ROOT = Path(__file__).resolve().parents[1]


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` sets UV to its own binary
    if uv is None:
        pytest.skip("needs uv (the README's `uv run pytest` has it)")
    return uv


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_the_wheel_runs_outside_the_source_tree(tmp_path) -> None:
    uv = _uv()
    venv, elsewhere = tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    # nothing of the checkout may leak in: no VIRTUAL_ENV, no PYTHONPATH, another cache
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(UV_LINK_MODE="hardlink", NASFPN_CACHE=str(tmp_path / "cache"))
    _run([uv, "build", "--wheel", "--offline", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
         elsewhere, env)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("nasfpn-*.whl")
    _run([uv, "sync", "--locked", "--offline", "--no-dev", "--no-install-project", "--quiet"],
         ROOT, {**env, "UV_PROJECT_ENVIRONMENT": str(venv)})  # fmt: skip
    python = str(venv / "bin" / "python")
    _run([uv, "pip", "install", "--offline", "--no-deps", "--python", python, str(wheel)],
         elsewhere, env)  # fmt: skip
    _run([uv, "pip", "check", "--offline", "--python", python], elsewhere, env)

    nasfpn = str(venv / "bin" / "nasfpn")
    where = _run([python, "-c", "import nasfpn; print(nasfpn.__file__)"], elsewhere, env)
    assert where.strip().startswith(str(venv)), where  # the wheel's copy, not the checkout
    assert _run([nasfpn, "--version"], elsewhere, env).strip() == f"nasfpn {__version__}"
    listing = _run([nasfpn, "config", "list"], elsewhere, env)
    for preset in ("proxy/cpu-tiny", "proxy/paper", "retrain/cpu-tiny", "search/paper",
                   "supernet/cpu-tiny"):  # fmt: skip
        assert preset in listing
    shown = _run([nasfpn, "config", "show", "search/paper"], elsewhere, env)
    assert shown == (ROOT / "src" / "nasfpn" / "presets" / "search" / "paper.yaml").read_text()

    # the cpu-tiny preset, shortened: one epoch on a tenth of proxy-train, 20 reward images
    out = _run([nasfpn, "proxy-train", "nasfpn", "--json", "--set", "epochs=1", "--set",
                "subset=0.1", "--set", "reward_images=20", "--set", "threads=1"],
               elsewhere, env, timeout=600)  # fmt: skip
    result = json.loads(out)
    assert result["status"] == "ok" and 0.0 <= result["AP"] <= 1.0
    assert result["epochs"] == 1 and result["iterations"] > 0
    assert result["precision"] in ("fp32", "bf16") and result["cpu_model"]
    assert len(result["config_hash"]) == 12
    assert not list(elsewhere.iterdir())  # nothing written where it ran: the data is cached

    # the supernet preset found by name too: a few steps on the same shortened proxy task
    shortened = ["--set", "proxy.subset=0.1", "--set", "proxy.reward_images=20"]
    supernet = tmp_path / "supernet"
    _run([nasfpn, "supernet", "train", "--out", str(supernet), "--set", "steps=3",
          "--set", "threads=1", "--set", "bn_batches=1", *shortened], elsewhere, env)  # fmt: skip
    scored = json.loads(_run([nasfpn, "supernet", "eval", str(supernet), "nasfpn", "--json"],
                             elsewhere, env))  # fmt: skip
    assert [r["arch"] for r in scored["results"]] == ["nasfpn"]
    assert 0.0 <= scored["results"][0]["AP"] <= 1.0
