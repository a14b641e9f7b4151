"""The search's configuration (docs/search.md): one flat YAML file plus ``--set`` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasfpn import config as config_io
from nasfpn.cost import Objective
from nasfpn.proxy_train import ProxyConfig
from nasfpn.proxy_train.config import with_overrides
from nasfpn.space import SearchSpace

if TYPE_CHECKING:
    from nasfpn.supernet import SupernetConfig

DUPLICATE_POLICIES = ("replay", "reevaluate")
REWARD_SOURCES = ("proxy", "supernet")
# supernet settings a search decides itself: its proxy task and its space
SUPERNET_FROM_SEARCH = ("proxy_preset", "proxy", "min_level", "max_level", "num_cells",
                        "num_intermediate")  # fmt: skip
TIMEOUT_POLICIES = ("discard", "penalty")


@dataclass(frozen=True)
class SearchConfig:
    """Everything a search needs. Defaults: the quick start's small search on the CPU.

    ``proxy_preset`` names the proxy task (``cpu-tiny``, ``paper`` or a YAML file) and ``proxy``
    overrides its keys (``--set proxy.epochs=2``). ``trials`` counts controller samples: every
    one of them gets a ledger record, whether it was trained or replayed as a duplicate.
    """

    # the default follows the real-proxy comparison (docs/controller.md, "The default algorithm")
    algorithm: str = "evolution"  # evolution | reinforce | ppo | random
    algorithm_options: dict[str, Any] = field(default_factory=dict)
    trials: int = 10
    seed: int = 0

    # the search space (paper: P3..P7, 7 cells of which 2 intermediate)
    min_level: int = 3
    max_level: int = 7
    num_cells: int = 7
    num_intermediate: int = 2

    proxy_preset: str = "cpu-tiny"
    proxy: dict[str, Any] = field(default_factory=dict)

    # where a sample's reward comes from (docs/oneshot.md): `proxy`, a stand-alone proxy
    # training per architecture; `supernet`, its score on shared weights trained once for the
    # whole space (an inference pass), the top `reevaluate_top` then trained stand-alone.
    # `supernet` names a finished supernet folder of this space and proxy task; left empty, the
    # search trains one into its own folder (OUT/supernet) from the `supernet_preset` with
    # `supernet_options` (e.g. {steps: 4000}), its proxy task and space being the search's.
    reward: str = "proxy"
    supernet: str | None = None
    supernet_preset: str = "cpu-tiny"
    supernet_options: dict[str, Any] = field(default_factory=dict)

    # what the reward weighs (docs/cost.md): `metric: none` is the AP alone; `latency` or
    # `flops` with a `target` and a `form` (soft | hard | absolute) make the search cost-aware.
    # Each new architecture's cost is measured once, after its first proxy training, when the
    # objective needs it or `measure_cost` is true (an accuracy-only search with costs recorded)
    objective: Objective = field(default_factory=Objective)
    measure_cost: bool = False

    # cluster resources
    concurrent: int = 2  # trials running at once
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractions share a GPU between trials
    address: str | None = None  # an existing Ray cluster; None starts a local one
    num_cpus: int | None = None  # CPUs of the local Ray instance (None: all)
    dashboard: bool = False  # the Ray dashboard, bound to 127.0.0.1

    # failures and duplicates
    max_failures: int = 2  # retries of a trial whose worker died (infrastructure failures)
    # Ray Tune keeps every trial of a Tune run in the driver's memory (about 50 KB each), so a
    # long search runs as consecutive Tune runs of at most this many trials each (between two,
    # the last trials of one finish before the next starts: about concurrent / (2 x this) of
    # the slots' time idles; 0: a single run). docs/search.md, "Paper-scale driver"
    tune_run_trials: int = 1000
    penalty: float = 0.0  # reward fed back for a diverged trial
    # a trial stopped by the proxy's max_train_seconds safety net (status timeout): discard it
    # like an infrastructure failure (the controller learns nothing), or feed back `penalty`
    on_timeout: str = "discard"
    duplicates: str = "replay"  # replay the recorded reward, or reevaluate
    max_evaluations: int = 1  # with reevaluate: trainings per architecture before replaying

    # the end of a search: its best `reevaluate_top` architectures (by their search rewards)
    # are trained again with `reevaluate_seeds` more seeds each, and the exported ranking is by
    # the mean over all of an architecture's runs (docs/search.md, "Re-evaluation")
    reevaluate_top: int = 2
    reevaluate_seeds: int = 1
    # re-evaluation rewards also join the mean replayed to the controller when it samples a
    # re-evaluated architecture again (a resumed search); they are never fed as new samples
    reevaluate_feedback: bool = False

    # early stopping of proxy trials (ASHA on per-epoch reward reports)
    asha: bool = False
    asha_grace_epochs: int = 1
    asha_reduction: float = 2.0

    top_k: int = 5

    # the console (docs/search.md, "The console"): a running trial tells the driver its epoch
    # and step at most every `progress_seconds`; off a terminal, a line of where the running
    # trials are every `console_every` seconds
    progress_seconds: float = 10.0
    console_every: float = 60.0

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"trials={self.trials} must be at least 1")
        if self.concurrent < 1:
            raise ValueError(f"concurrent={self.concurrent} must be at least 1")
        if self.duplicates not in DUPLICATE_POLICIES:
            raise ValueError(
                f"duplicates={self.duplicates!r} is unknown; choose one of {DUPLICATE_POLICIES}"
            )
        if self.max_evaluations < 1:
            raise ValueError(f"max_evaluations={self.max_evaluations} must be at least 1")
        if self.on_timeout not in TIMEOUT_POLICIES:
            raise ValueError(
                f"on_timeout={self.on_timeout!r} is unknown; choose one of {TIMEOUT_POLICIES}"
            )
        for name in ("reevaluate_top", "reevaluate_seeds"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name}={getattr(self, name)} must be 0 (no re-evaluation) or more"
                )
        if self.reevaluate_top > self.trials:
            raise ValueError(
                f"reevaluate_top={self.reevaluate_top} is larger than trials={self.trials}: a "
                "search re-evaluates at most the architectures it sampled; lower reevaluate_top "
                "or raise trials"
            )
        if self.max_failures < 0:
            raise ValueError(f"max_failures={self.max_failures} must be 0 or more")
        if self.tune_run_trials < 0:
            raise ValueError(
                f"tune_run_trials={self.tune_run_trials} must be 0 (one Tune run) or more"
            )
        for name in ("progress_seconds", "console_every"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"{name}={getattr(self, name)} must be a positive number of seconds"
                )
        if self.cpus_per_trial < 0 or self.gpus_per_trial < 0:
            raise ValueError("cpus_per_trial and gpus_per_trial must not be negative")
        if self.reward not in REWARD_SOURCES:
            raise ValueError(f"reward={self.reward!r} is unknown; choose one of {REWARD_SOURCES}")
        if self.reward == "supernet":
            self._check_supernet()

    @property
    def costs_measured(self) -> bool:
        """Whether the search measures each new architecture's cost."""
        return self.objective.active or self.measure_cost

    def _check_supernet(self) -> None:
        """What a shared-weight search cannot do, refused before anything runs."""
        if self.asha:
            raise ValueError(
                "asha=true with reward=supernet: ASHA stops proxy trainings early, and a "
                "shared-weight score has no training to stop; set asha=false"
            )
        if self.duplicates == "reevaluate":
            raise ValueError(
                "duplicates=reevaluate with reward=supernet: a shared-weight score is the same "
                "every time; set duplicates=replay"
            )
        if self.reevaluate_top < 1 or self.reevaluate_seeds < 1:
            raise ValueError(
                f"reevaluate_top={self.reevaluate_top} and reevaluate_seeds="
                f"{self.reevaluate_seeds} with reward=supernet: the search must train its best "
                "architectures stand-alone (its ranking never rests on shared-weight scores "
                "alone); set both to 1 or more"
            )
        if self.reevaluate_feedback:
            raise ValueError(
                "reevaluate_feedback=true with reward=supernet would mix stand-alone APs into "
                "the shared-weight scores the controller learns from; set it false"
            )
        if self.objective.active or self.measure_cost:
            raise ValueError(
                "objective.metric / measure_cost with reward=supernet: the one-shot search does "
                "not measure costs yet; use reward=proxy for a cost-aware search"
            )
        decided = sorted(set(self.supernet_options) & set(SUPERNET_FROM_SEARCH))
        if decided:
            raise ValueError(
                f"supernet_options sets {', '.join(decided)}: a search's supernet takes its "
                "proxy task and space from the search; set them at the top level"
            )

    @property
    def reevaluations(self) -> int:
        """Re-evaluation trials at the end of the search, at most (fewer if fewer finished)."""
        return self.reevaluate_top * self.reevaluate_seeds

    def space(self) -> SearchSpace:
        return SearchSpace(
            min_level=self.min_level,
            max_level=self.max_level,
            num_cells=self.num_cells,
            num_intermediate=self.num_intermediate,
        )

    def proxy_config(self) -> ProxyConfig:
        """The proxy preset with this search's ``proxy`` overrides, checked key by key."""
        resolved = with_overrides(self.proxy_preset, self.proxy)
        if self.asha and resolved.eval_every != 1:
            # ASHA decides on per-epoch rewards
            resolved = config_io.from_dict(ProxyConfig, {"eval_every": 1}, base=resolved)
        return resolved

    def supernet_config(self) -> SupernetConfig:
        """The configuration of the supernet this search trains when ``supernet`` is empty:
        ``supernet_preset`` with ``supernet_options``, on this search's proxy task and space."""
        from nasfpn.supernet.config import SupernetConfig, preset_path

        base = config_io.load(SupernetConfig, preset_path(self.supernet_preset))
        settings = {**self.supernet_options, **{name: getattr(self, name)
                                                for name in SUPERNET_FROM_SEARCH}}  # fmt: skip
        return config_io.from_dict(SupernetConfig, settings, base=base)


# the search preset that is SearchConfig's own defaults (the quick start's search), not a file
DEFAULT_PRESET = "default"


def search_preset_path(name: str) -> Path | Traversable | None:
    """``paper`` -> the package's ``presets/search/paper.yaml``; ``default`` -> None (the
    defaults above); a path is returned as it is."""
    if name == DEFAULT_PRESET and not Path(name).exists():
        return None
    return config_io.find_preset(name, "search", also=[DEFAULT_PRESET])


def load_search_config(
    path_or_preset: str | None = None, overrides: list[str] | tuple = ()
) -> SearchConfig:
    """A search preset name or YAML file (None: the defaults), then ``key=value`` overrides."""
    path = search_preset_path(path_or_preset) if path_or_preset is not None else None
    return config_io.load(SearchConfig, path, overrides)
