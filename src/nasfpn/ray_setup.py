"""Starting or joining Ray: one place for the search and for multi-node retraining.

A local instance listens on 127.0.0.1 only, with the dashboard off unless asked for (then also
on 127.0.0.1). Imported lazily by its two users, so that nothing else loads Ray.
"""

from __future__ import annotations

import os

UV_HOOK = "RAY_ENABLE_UV_RUN_RUNTIME_ENV"


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
    if address is not None:
        ray.init(address=address, **common)
    elif os.environ.get("RAY_ADDRESS"):  # inside `ray job submit`
        ray.init(**common)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=dashboard, dashboard_host="127.0.0.1",
                 _node_ip_address="127.0.0.1", **common)  # fmt: skip
