"""Proxy training: train one candidate on the proxy task and return its AP reward (no Ray)."""

from nasfpn.proxy_train.config import ProxyConfig, load_proxy_config, preset_path
from nasfpn.proxy_train.run import STATUSES, ProxyResult, evaluate, resolve_device, run

__all__ = [
    "STATUSES",
    "ProxyConfig",
    "ProxyResult",
    "evaluate",
    "load_proxy_config",
    "preset_path",
    "resolve_device",
    "run",
]
