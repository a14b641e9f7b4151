"""Experiment configuration: one YAML file mapped onto dataclasses, plus ``--set`` overrides.

Each consumer defines its configuration as a (possibly nested) dataclass next to the code that
uses it (nanoGPT's habit). A YAML file sets any subset of its fields, with sections for nested
dataclasses; there is no inheritance between files. Unknown keys and values of the wrong type
are errors that name the key, the allowed keys or the expected type. The resolved
configuration is written beside every result (:func:`to_dict`, :func:`save`).

No torch here: the search driver, the controller and the analysis read configurations too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override that does not fit the configuration's fields."""


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (converting lists to tuples, ints to
    floats, mappings to nested dataclasses); raise ConfigError naming ``key`` otherwise."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: {value!r} is not a {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a section of {_allowed(tp)}, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: cannot check values of type {_type_name(tp)}")


def _allowed(cls: type) -> str:
    return ", ".join(sorted(_fields(cls)))


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def from_dict(cls: type[T], values: Mapping[str, Any], prefix: str = "", base: Any = None) -> T:
    """Build ``cls`` from a mapping of some of its fields; the rest keep their defaults (or the
    values of ``base``, an instance of ``cls``)."""
    fields, hints = _fields(cls), _hints(cls)
    kwargs = {}
    for name, value in values.items():
        if name not in fields:
            where = f" in {prefix[:-1]}" if prefix else ""
            raise ConfigError(
                f"unknown key {prefix + name!r}; allowed keys{where}: {_allowed(cls)}"
            )
        tp, key = hints[name], f"{prefix}{name}"
        current = getattr(base, name) if base is not None else _default(fields[name])
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            # a section updates the nested configuration it replaces, field by field
            kwargs[name] = from_dict(type(current), value, prefix=f"{key}.", base=current)
        else:
            kwargs[name] = _coerce(value, tp, key)
    try:
        if base is not None:
            return dataclasses.replace(base, **kwargs)
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:  # a __post_init__ check of the dataclass
        raise ConfigError(f"{prefix[:-1] or cls.__name__}: {err}") from err


def to_dict(config: Any) -> dict[str, Any]:
    """The configuration as plain data (tuples as lists), ready for YAML or JSON."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def config_hash(config: Any) -> str:
    """A short hash of the resolved configuration, for provenance."""
    text = json.dumps(to_dict(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=c"`` -> (["a", "b"], value parsed as YAML: ``3``, ``0.1``, ``true``, ``[1, 2]``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. optim.lr=0.01)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({err})") from err
    return key.split("."), value


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        out = {part: out}
    return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(merged.get(k), Mapping):
            merged[k] = _merge(dict(merged[k]), v)
        else:
            merged[k] = v
    return merged


def read_yaml(path: str | Path | Traversable) -> dict[str, Any]:
    """A YAML mapping from a file (``yaml.safe_load``), with clear errors; ``path`` may be a
    preset inside the package (:func:`find_preset`)."""
    if isinstance(path, str):
        path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from err
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys to values")
    return doc


def load(
    cls: type[T],
    path: str | Path | Traversable | None = None,
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> T:
    """``cls`` from its defaults, then ``base``, the YAML file, and ``key=value`` overrides."""
    values: dict[str, Any] = dict(base or {})
    if path is not None:
        values = _merge(values, read_yaml(path))
    for text in overrides:
        keys, value = parse_override(text)
        values = _merge(values, _nest(keys, value))
    return from_dict(cls, values)


def save(config: Any, path: str | Path) -> None:
    """Write the resolved configuration as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


# The presets ship inside the package (src/nasfpn/presets/KIND/NAME.yaml) and are read through
# its resources, so that an installed wheel finds them as a clone does; `nasfpn config list`
# and `nasfpn config show` print them for copying.
PRESET_KINDS = ("proxy", "retrain", "search", "supernet")


def _preset_folder(kind: str) -> Traversable:
    if kind not in PRESET_KINDS:
        raise ConfigError(f"preset kind {kind!r} is unknown; choose one of {list(PRESET_KINDS)}")
    return resources.files("nasfpn").joinpath("presets", kind)


def preset_names(kind: str) -> list[str]:
    """The names of the ``kind`` presets that ship with the package, sorted."""
    folder = _preset_folder(kind)
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def find_preset(name: str, kind: str, also: Iterable[str] = ()) -> Path | Traversable:
    """A preset's file: ``paper`` -> the package's ``presets/KIND/paper.yaml``; a YAML path (or
    any existing file) is returned as it is. ``kind`` is ``proxy``, ``retrain`` or ``search``;
    ``also`` names presets the caller resolves itself, for the error's list."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = _preset_folder(kind).joinpath(f"{name}.yaml")
    if not candidate.is_file():
        raise ConfigError(
            f"{kind} preset {name!r} is unknown; choose one of {[*also, *preset_names(kind)]} or "
            "give a "
            f"YAML file path (`nasfpn config list` shows them all)"
        )
    return candidate
