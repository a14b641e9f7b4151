"""``nasfpn config``: list the presets that ship inside the package, and print one to copy.

The presets (``src/nasfpn/presets/KIND/NAME.yaml``) are read through the package's resources,
so an installed wheel lists and prints the very files a clone has. A preset is named
``KIND/NAME`` (``search/paper``) or by its bare name where that is unique (``cpu-tiny`` is
both a proxy and a retrain preset, so it needs its kind).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from nasfpn import config as config_io
from nasfpn.cli.output import emit_json

# what each kind of preset configures, and the option that takes it
USED_BY = {
    "proxy": "nasfpn proxy-train --config NAME; search: proxy_preset: NAME",
    "retrain": "nasfpn retrain --config NAME",
    "search": "nasfpn search --config NAME",
    "supernet": "nasfpn supernet train --config NAME",
}
# presets that are a configuration's own defaults rather than a file
BUILT_IN = {
    ("search", "default"): "The built-in search: what `nasfpn search` runs with no --config."
}


def _summary(text: str) -> str:
    """A preset's first comment line: what it is (each preset's file starts with one)."""
    first = text.splitlines()[0] if text else ""
    return first.lstrip("# ").strip() if first.startswith("#") else ""


def _built_in_text(kind: str, name: str) -> str:
    from nasfpn.search.config import SearchConfig

    assert (kind, name) == ("search", "default")  # the only built-in one (BUILT_IN)
    head = (
        "# The built-in search: what `nasfpn search` runs with no --config (the quick start's\n"
        "# small search on the embedded synthetic set). Every key of the search configuration,\n"
        "# at its default (docs/search.md).\n"
    )
    return head + yaml.safe_dump(config_io.to_dict(SearchConfig()), sort_keys=False)


def presets() -> list[dict[str, str]]:
    """Every preset: ``{"kind", "name", "summary", "used_by"}``, by kind and name."""
    rows = []
    for kind in config_io.PRESET_KINDS:
        names = set(config_io.preset_names(kind)) | {n for k, n in BUILT_IN if k == kind}
        for name in sorted(names):
            summary = BUILT_IN.get((kind, name)) or _summary(preset_text(kind, name))
            rows.append({"kind": kind, "name": name, "summary": summary,
                         "used_by": USED_BY[kind].replace("NAME", name)})  # fmt: skip
    return rows


def preset_text(kind: str, name: str) -> str:
    """The preset's YAML text, comments included."""
    if (kind, name) in BUILT_IN:
        return _built_in_text(kind, name)
    if name not in config_io.preset_names(kind):
        raise ValueError(
            f"{kind} preset {name!r} is unknown; {kind} presets: "
            f"{config_io.preset_names(kind)} (`nasfpn config list` shows them all)"
        )
    return config_io.find_preset(name, kind).read_text()


def resolve(spec: str) -> tuple[str, str]:
    """``search/paper`` or a bare ``paper`` -> (kind, name); a bare name must be unique."""
    rows = presets()
    if "/" in spec:
        kind, name = spec.split("/", 1)
        if kind not in config_io.PRESET_KINDS:
            raise ValueError(
                f"preset kind {kind!r} in {spec!r} is unknown; choose one of "
                f"{list(config_io.PRESET_KINDS)} (e.g. search/paper)"
            )
        preset_text(kind, name)  # refuses an unknown name with the kind's list
        return kind, name
    matches = [r["kind"] for r in rows if r["name"] == spec]
    if not matches:
        known = sorted(f"{r['kind']}/{r['name']}" for r in rows)
        raise ValueError(f"no preset is named {spec!r}; the presets: {known}")
    if len(matches) > 1:
        choices = [f"{k}/{spec}" for k in matches]
        raise ValueError(
            f"{spec!r} names a preset of each of {', '.join(matches)}; say which: "
            f"{', '.join(choices[:-1])} or {choices[-1]}"
        )
    return matches[0], spec


def resolved_config(kind: str, name: str) -> dict[str, Any]:
    """The preset applied to its configuration: every key, defaults included."""
    if kind == "proxy":
        from nasfpn.proxy_train import load_proxy_config

        return config_io.to_dict(load_proxy_config(name))
    if kind == "retrain":
        from nasfpn.retrain import load_retrain_config

        return config_io.to_dict(load_retrain_config(name))
    if kind == "supernet":
        from nasfpn.supernet import load_supernet_config

        return config_io.to_dict(load_supernet_config(name))
    from nasfpn.search.config import load_search_config

    return config_io.to_dict(load_search_config(name))


def run_list(args: argparse.Namespace) -> int:
    rows = presets()
    if args.json:
        emit_json({"presets": rows})
        return 0
    width = max(len(f"{r['kind']}/{r['name']}") for r in rows)
    for r in rows:
        print(f"{r['kind'] + '/' + r['name']:<{width}}  {r['summary']}")
    print()
    print("print one to copy and edit: nasfpn config show KIND/NAME > mine.yaml")
    print("then: nasfpn search --config mine.yaml (or proxy-train / retrain --config mine.yaml)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    kind, name = resolve(args.preset)
    if args.resolved:
        head = (f"# {kind}/{name} with every key, defaults included (nasfpn config show "
                f"--resolved {kind}/{name})\n")  # fmt: skip
        sys.stdout.write(head + yaml.safe_dump(resolved_config(kind, name), sort_keys=False))
    else:
        sys.stdout.write(preset_text(kind, name))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "config",
        help="list the built-in presets, or print one to copy and edit",
        description="The presets that ship with nasfpn (proxy tasks, retraining recipes, "
        "searches). `list` names them; `show KIND/NAME` prints one, e.g. `nasfpn config show "
        "search/paper > mine.yaml`, to edit and pass back with --config mine.yaml.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="every preset, with what it is")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(func=run_list)
    show = verbs.add_parser("show", help="print a preset's YAML (comments included)")
    show.add_argument(
        "preset",
        metavar="KIND/NAME",
        help="e.g. search/paper, proxy/cpu-tiny; a bare name where unique",
    )
    show.add_argument("--resolved", action="store_true", help="print every key, defaults included")
    show.set_defaults(func=run_show)
