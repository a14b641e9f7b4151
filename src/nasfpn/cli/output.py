"""What a command writes where: with ``--json``, standard output carries one JSON document.

:func:`json_stdout` is entered by :func:`nasfpn.cli.main` around a command given ``--json``. It
points file descriptor 1 at standard error, so that everything else a command writes to its
standard output (our progress lines, Ray's and the libraries' prints, child processes that
inherit the descriptor) reaches the terminal on stderr, and keeps the real standard output for
:func:`emit_json` alone. Without it (a command called from Python) :func:`emit_json` prints to
``sys.stdout``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

_json_stream: IO[str] | None = None  # the real stdout while a --json command runs


@contextmanager
def json_stdout() -> Iterator[None]:
    """Route standard output to stderr for the duration; :func:`emit_json` writes to the
    original standard output.

    When ``sys.stdout`` writes to file descriptor 1 (a command run as a process), the
    descriptor itself is pointed at stderr, which catches child processes and C code too;
    otherwise (``sys.stdout`` replaced, as pytest's ``capsys`` does) only the Python streams
    are swapped.
    """
    global _json_stream
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not backed by a file descriptor
        fd = None
    saved = None
    if fd == 1:
        saved = os.dup(1)
        os.dup2(2, 1)
        _json_stream = os.fdopen(saved, "w")
    else:
        _json_stream = sys.stdout
    previous, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stdout.flush()
        _json_stream.flush()
        sys.stdout = previous
        if saved is not None:
            os.dup2(saved, 1)
            _json_stream.close()
        _json_stream = None


def emit_json(doc: Any, indent: int | None = None) -> None:
    """Write ``doc`` as the command's one JSON document (followed by a newline)."""
    stream = _json_stream if _json_stream is not None else sys.stdout
    stream.write(json.dumps(doc, indent=indent) + "\n")
    stream.flush()


def progress_stream() -> IO[str]:
    """Where a command's progress goes: stderr while ``--json`` holds stdout, else stdout."""
    return sys.stderr if _json_stream is not None else sys.stdout
