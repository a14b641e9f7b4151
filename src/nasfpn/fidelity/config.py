"""The fidelity study's configuration (docs/fidelity.md): one flat YAML file plus ``--set``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nasfpn import config as config_io
from nasfpn.proxy_train import ProxyConfig
from nasfpn.proxy_train.config import with_overrides
from nasfpn.retrain import RetrainConfig
from nasfpn.retrain.config import preset_path as retrain_preset_path


@dataclass(frozen=True)
class FidelityConfig:
    """Which genotypes to train with the proxy and with the retrain recipe, and where.

    The reference set: the published cell (``published``), ``genotypes`` random genotypes of
    the paper's search space drawn with ``seed``, the architectures of ``include`` (built-in
    names or genotype files) and the ``top`` best of the finished search in ``from_search``.
    Each is trained ``seeds`` times with the proxy (seeds ``proxy.seed`` and on) and once with
    the retrain recipe. ``proxy`` and ``retrain`` override keys of their presets
    (``--set proxy.epochs=3``, ``--set retrain.optim.lr=0.001``). Resources as in the search.
    """

    genotypes: int = 9
    seed: int = 0
    published: bool = True
    include: tuple[str, ...] = ()
    from_search: str | None = None
    top: int = 3
    seeds: int = 2

    proxy_preset: str = "cpu-tiny"
    proxy: dict[str, Any] = field(default_factory=dict)
    retrain_preset: str = "cpu-tiny"
    retrain: dict[str, Any] = field(default_factory=dict)

    concurrent: int = 2  # jobs running at once
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None  # an existing Ray cluster; None starts a local one
    num_cpus: int | None = None  # CPUs of the local Ray instance (None: all)
    max_failures: int = 2  # retries of a job whose worker died
    # an earlier study's folder: its finished jobs with the same configuration are taken
    # instead of run again (e.g. the retrainings, when only the proxy changed)
    reuse_from: str | None = None
    # a finished supernet folder (`nasfpn supernet train`, docs/oneshot.md): each architecture
    # is also scored on its shared weights, and the study reports how those scores rank against
    # the retraining and the proxy; BN statistics over `supernet_bn_batches` batches (None:
    # the folder's setting)
    supernet: str | None = None
    supernet_bn_batches: int | None = None

    def __post_init__(self) -> None:
        for name, least in (("genotypes", 0), ("top", 1), ("seeds", 1), ("concurrent", 1),
                            ("max_failures", 0)):  # fmt: skip
            if getattr(self, name) < least:
                raise ValueError(f"{name}={getattr(self, name)} must be at least {least}")
        if self.cpus_per_trial < 0 or self.gpus_per_trial < 0:
            raise ValueError("cpus_per_trial and gpus_per_trial must not be negative")

    def proxy_config(self) -> ProxyConfig:
        """The proxy preset with this study's overrides; every epoch is evaluated, for the
        rank correlation by proxy epoch (the final AP does not depend on it)."""
        return with_overrides(self.proxy_preset, {"eval_every": 1, **self.proxy})

    def retrain_config(self) -> RetrainConfig:
        base = config_io.load(RetrainConfig, retrain_preset_path(self.retrain_preset))
        return config_io.from_dict(RetrainConfig, self.retrain, prefix="retrain.", base=base)


def load_fidelity_config(
    path: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> FidelityConfig:
    """A study file (or the defaults), then ``key=value`` overrides; the proxy and retrain
    overrides are checked against their configurations at once."""
    cfg = config_io.load(FidelityConfig, path, overrides)
    cfg.proxy_config(), cfg.retrain_config()  # refuse a bad key before anything runs
    return cfg
