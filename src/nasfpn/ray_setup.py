"""Starting or joining Ray: one place for the search, the fidelity study and multi-node
retraining (docs/search.md, "On a Ray cluster").

A local instance is started with the dashboard off unless asked for (then on 127.0.0.1 only);
Ray 2.60 turns token authentication on for it and writes the token to ``~/.ray/auth_token``.
Ray's own servers (GCS, raylet, workers) listen on every interface whatever node address is
given: Ray resolves 127.0.0.1 to the machine's address. Token authentication is what keeps
others out; on a shared network, firewall the Ray ports as well.

Joining a cluster by address (``ray start --head`` of the same Ray version) takes what a user of
that cluster has: the token file Ray wrote (``~/.ray/auth_token``, or ``RAY_AUTH_TOKEN_PATH``) or
``RAY_AUTH_TOKEN``. Before Ray is asked to connect, :func:`check_cluster` tries the address, the
token and the cluster's Ray and Python versions, so that a wrong address, a missing or refused
token and a version mismatch end in one line that says how to fix it (:class:`ClusterJoinError`),
not in Ray's retry loop. It needs no output folder: the search and the fidelity study call it
(:func:`check_address`) before they write theirs, so that a failed join leaves nothing behind.

Imported lazily by its users, so that nothing else loads Ray.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

UV_HOOK = "RAY_ENABLE_UV_RUN_RUNTIME_ENV"
AUTH_MODE = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"


class ClusterJoinError(ValueError):
    """The cluster at an address cannot be joined; the message says why and what to do."""


def token_source() -> str | None:
    """Where this process would read a Ray authentication token from, or None if nowhere:
    ``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` names, or ``~/.ray/auth_token``."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return TOKEN_ENV
    named = os.environ.get(TOKEN_PATH_ENV)
    if named:
        return named if Path(named).expanduser().is_file() else None
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Ray's C++ client logs each failed attempt to file descriptor 2; our one line replaces
    those."""
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterJoinError(
            f"--address {address!r}: expected HOST:PORT of a Ray head (the GCS port that "
            "`ray start --head --port PORT` opened, 6379 by default), e.g. 10.0.0.1:6379"
        )
    return host, int(port)


def check_cluster(address: str) -> None:
    """Raise :class:`ClusterJoinError` unless a Ray head at ``address`` answers, accepts
    this process's authentication (turned on here when a token is available and
    ``RAY_AUTH_MODE`` is unset, as Ray itself does for a cluster it finds by itself) and runs
    this process's Ray and Python versions (:func:`check_versions`)."""
    host, port = _split(address)
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ClusterJoinError(
            f"no Ray cluster answers at {address} ({reason}): start one there with `ray start "
            f"--head --port {port}`, or give the address that `ray start --head` printed"
        ) from None

    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    source = token_source()
    if os.environ.get(AUTH_MODE) is None and source is not None:
        # without Ray's warning that token mode is now on (docs/search.md says nasfpn turns it
        # on): this runs before the command's folder and its ray.log exist, on its console
        setup_log = logging.getLogger(maybe_enable_token_auth_if_token_available.__module__)
        level = setup_log.level
        setup_log.setLevel(logging.ERROR)
        try:
            maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
        finally:
            setup_log.setLevel(level)
    try:
        with _quiet_fd2():
            gcs = GcsClient(address=address)
    except AuthenticationError:
        if source is None:
            raise ClusterJoinError(
                f"the Ray cluster at {address} uses token authentication and this machine "
                f"has no token: copy the head's ~/.ray/auth_token here (or point "
                f"{TOKEN_PATH_ENV} at a copy), or set {TOKEN_ENV} to its content (on the head: "
                "`ray get-auth-token`)"
            ) from None
        raise ClusterJoinError(
            f"the Ray cluster at {address} refused the token from {source}: it belongs to "
            f"another cluster; use the head's own (on the head: `ray get-auth-token`)"
        ) from None
    except Exception as err:  # an open port that is not a Ray head, or a head that is down
        raise ClusterJoinError(
            f"{address} is open but no Ray head answered there ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]}); give the GCS address `ray start --head` printed"
        ) from None
    check_versions(address, _cluster_metadata(gcs))


def _cluster_metadata(gcs: object) -> dict | None:
    """The versions the head recorded (what ``ray.init`` compares), or None if it cannot be
    read: ``ray.init`` then checks them itself."""
    from ray._common.usage.usage_lib import get_cluster_metadata

    try:
        return get_cluster_metadata(gcs)
    except Exception:  # absent or unreadable: not this check's to decide
        return None


def check_versions(address: str, metadata: dict | None) -> None:
    """Raise :class:`ClusterJoinError` when the cluster's recorded Ray or Python version
    (``metadata``, as the head wrote it to its GCS) is not this process's: Ray's own check of a
    joining driver (``ray._private.utils.check_version_info``), made early."""
    if not metadata:
        return
    from ray._private.utils import check_version_info

    try:
        check_version_info(metadata, "this driver")
    except RuntimeError as err:
        raise _version_error(address, err) from None


def _version_error(address: str | None, err: BaseException) -> ClusterJoinError:
    import ray

    return ClusterJoinError(
        f"the Ray cluster at {address} runs another Ray version than this environment's "
        f"{ray.__version__} ({_first_line(err)}); start the cluster from this project's "
        "environment (`uv run ray start --head`), or install the cluster's Ray version here"
    )


def joins_by_address(address: str | None) -> bool:
    """Whether ``address`` names a head to join as HOST:PORT (what :func:`check_cluster`
    checks): not None (a local instance, or the cluster of ``ray job submit``), ``auto`` or a
    ``ray://`` client address, which Ray resolves itself."""
    return address is not None and address != "auto" and not address.startswith("ray://")


def check_address(address: str | None) -> None:
    """:func:`check_cluster` for an address :func:`init_ray` will join by HOST:PORT; nothing
    for the others. Cheap (a connection and a few GCS calls) and it needs no output folder: a
    command calls it before it writes anything, so that a failed join leaves nothing behind."""
    if joins_by_address(address):
        check_cluster(address)


def _connect(address: str | None, **kwargs) -> None:
    """``ray.init(address=...)``; Ray's version check failing becomes one line."""
    import ray

    try:
        ray.init(address=address, **kwargs)
    except RuntimeError as err:
        if "version mismatch" not in str(err).lower():
            raise
        raise _version_error(address or os.environ.get("RAY_ADDRESS"), err) from None


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines[:3])[:300]


def init_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    dashboard: bool = False,
    log_to_driver: bool = False,
) -> None:
    """Join ``address``, the cluster of ``ray job submit`` (``RAY_ADDRESS``), or start a local
    instance with ``num_cpus``; nothing if Ray is already initialised in this process."""
    # Under `uv run` Ray replicates the driver's environment by shipping the working folder,
    # virtualenv included (about 6 GB here), into every session's runtime resources. Ray reads
    # the switch once, when ray_constants is first imported, which the caller may already have
    # done (importing ray.tune does): set the variable for child processes and the constant for
    # this one. A user who sets RAY_ENABLE_UV_RUN_RUNTIME_ENV=1 keeps Ray's behaviour.
    os.environ.setdefault(UV_HOOK, "0")
    import ray
    from ray._private import ray_constants

    ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = os.environ[UV_HOOK].lower() in ("1", "true")
    if ray.is_initialized():
        return
    common = {"log_to_driver": log_to_driver, "configure_logging": False}
    if joins_by_address(address):
        check_cluster(address)  # again: the cluster may have changed since check_address
        _connect(address, **common)
    elif address is not None or os.environ.get("RAY_ADDRESS"):  # "auto", ray:// or a job
        _connect(address, **common)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=dashboard, dashboard_host="127.0.0.1",
                 _node_ip_address="127.0.0.1", **common)  # fmt: skip
