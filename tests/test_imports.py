"""The import direction of docs/architecture.md: which part may import which."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "nasfpn"

# part -> the other parts of nasfpn it may import (itself always allowed). `cli` sits on top.
ALLOWED: dict[str, set[str]] = {
    "space": set(),
    "config": set(),
    "controller": {"space", "config"},
    "model": {"space", "config"},
    "data": {"config"},
    "evaluation": {"data", "config"},
    "train_loop": {"model", "data", "evaluation", "config", "space"},
    "proxy_train": {"model", "data", "evaluation", "train_loop", "config", "space"},
    "retrain": {
        "model",
        "data",
        "evaluation",
        "train_loop",
        "config",
        "space",
        "proxy_train",
        "ray_setup",
        "console",
        "distributed",
    },
    "supernet": {
        "model",
        "data",
        "evaluation",
        "train_loop",
        "config",
        "space",
        "proxy_train",
        "distributed",
    },
    "search": {
        "controller",
        "supernet",
        "proxy_train",
        "space",
        "config",
        "data",
        "analysis",
        "ray_setup",
        "rewards",
        "console",
        "cost",
    },
    "fidelity": {
        "proxy_train",
        "supernet",
        "retrain",
        "search",
        "analysis",
        "model",
        "data",
        "space",
        "config",
        "ray_setup",
    },
    "analysis": {"space", "config", "rewards"},
    "rewards": set(),
    "ray_setup": set(),
    "console": set(),
    "distributed": {"ray_setup"},
    "cost": {"train_loop", "model", "proxy_train", "data", "config", "space", "rewards"},
}
# third-party packages a part must not reach, directly or through the parts it imports
FORBIDDEN: dict[str, set[str]] = {
    "space": {"torch", "ray"}, "analysis": {"torch", "ray"}, "rewards": {"torch", "ray"},
    "console": {"torch", "ray"},
}  # fmt: skip
# cli and __main__ sit on top. retrain: only retrain/ray_train.py (Ray Train's TorchTrainer for
# multi-node retraining, the stated exception in docs/architecture.md), imported lazily by
# `nasfpn retrain --ray-workers`; test_ray_train_is_imported_lazily keeps it lazy.
# fidelity: its study runs jobs as Ray tasks (imported when a study runs); supernet: only
# supernet/remote.py (scoring actors, training as a task or on Ray Train), imported lazily by
# search and the CLI; distributed: Ray Train's launch, inside the one function that needs it
RAY_ALLOWED = {"search", "cli", "__main__", "retrain", "ray_setup", "fidelity", "supernet",
               "distributed"}  # fmt: skip


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """Every module named by an import statement anywhere in the file (lazy ones too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "nasfpn" and node.level == 0:
            names.update(f"nasfpn.{alias.name}" for alias in node.names)  # from nasfpn import x
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _graph() -> dict[str, set[str]]:
    """part -> every top-level module name (nasfpn parts as 'nasfpn.<part>') it imports."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue
        part = _part(path)
        for name in _imports(path):
            pieces = name.split(".")
            top = ".".join(pieces[:2]) if pieces[0] == "nasfpn" else pieces[0]
            graph.setdefault(part, set()).add(top)
    return graph


def _reach(graph: dict[str, set[str]], part: str) -> set[str]:
    seen, todo = set(), [part]
    while todo:
        for name in graph.get(todo.pop(), set()):
            if name not in seen:
                seen.add(name)
                if name.startswith("nasfpn."):
                    todo.append(name.removeprefix("nasfpn."))
    return seen


def test_every_part_is_known() -> None:
    parts = {_part(p) for p in PACKAGE.rglob("*.py")} - {"__init__", "__main__", "cli"}
    assert parts <= set(ALLOWED), f"add {parts - set(ALLOWED)} to ALLOWED with its layer"


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_parts_import_only_lower_layers(part: str) -> None:
    graph = _graph()
    internal = {
        n.removeprefix("nasfpn.") for n in graph.get(part, set()) if n.startswith("nasfpn.")
    }
    assert internal - {part} <= ALLOWED[part], f"{part} imports {internal - ALLOWED[part] - {part}}"


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_torch_and_ray_free_parts(part: str) -> None:
    reached = _reach(_graph(), part)
    assert not reached & FORBIDDEN[part], f"{part} reaches {reached & FORBIDDEN[part]}"


def test_only_search_imports_ray() -> None:
    graph = _graph()
    for part in set(graph) - RAY_ALLOWED:
        assert "ray" not in _reach(graph, part), f"{part} imports Ray"


def test_ray_train_is_imported_lazily() -> None:
    code = ("import sys, nasfpn.retrain, nasfpn.supernet, nasfpn.cli; "
            "sys.exit('ray' in sys.modules)")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_space_imports_no_torch_at_run_time() -> None:
    code = "import sys, nasfpn.space; sys.exit('torch' in sys.modules or 'ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
