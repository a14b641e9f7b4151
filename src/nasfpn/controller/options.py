"""Checked option dataclasses: unknown names and out-of-range values raise, naming the fix.

Each algorithm keeps its options in a dataclass next to its code (``ReinforceConfig`` in
``reinforce.py`` ...). :func:`build_config` turns ``make_algorithm``'s keyword arguments into
one, refusing names the dataclass does not have, so no keyword argument is silently dropped.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

T = TypeVar("T")


def build_config(cls: type[T], options: dict[str, Any], algorithm: str) -> T:
    """``cls(**options)``, raising ``ValueError`` that names the allowed options on a bad name."""
    allowed = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for algorithm {algorithm!r}; "
            f"its options are: {', '.join(allowed) if allowed else '(none)'}"
        )
    return cls(**options)


def check_number(
    owner: object,
    name: str,
    kind: type,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> None:
    """Check field ``name`` of dataclass ``owner``: an int or float in a range (or None).

    An int is accepted where a float is expected and stored as a float; bools are refused.
    Raises ``ValueError`` with the bad value, the expected range and the default.
    """
    value = getattr(owner, name)
    if optional and value is None:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and kind is int:
        ok = isinstance(value, int)
    if ok:
        ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        what = "an int" if kind is int else "a number"
        if low is not None:
            what += f" {'>' if low_open else '>='} {low}"
        if high is not None:
            what += f"{' and' if low is not None else ''} {'<' if high_open else '<='} {high}"
        if optional:
            what += ", or None"
        default = _default(owner, name)
        raise ValueError(
            f"{type(owner).__name__}.{name}={value!r}: expected {what} (default {default!r})"
        )
    if kind is float:
        object.__setattr__(owner, name, float(value))


def check_bool(owner: object, name: str) -> None:
    """Check that field ``name`` of dataclass ``owner`` is a bool."""
    value = getattr(owner, name)
    if not isinstance(value, bool):
        raise ValueError(
            f"{type(owner).__name__}.{name}={value!r}: expected True or False "
            f"(default {_default(owner, name)!r})"
        )


def _default(owner: object, name: str) -> Any:
    for f in dataclasses.fields(owner):  # type: ignore[arg-type]
        if f.name == name:
            return f.default
    raise AttributeError(name)  # pragma: no cover - callers pass their own field names
