"""Shared weights for the whole search space: train them once, score any genotype on them.

One RetinaNet whose NAS-FPN neck runs every genotype of a space (cell ``k`` keeps its weights
whatever the genotype makes of it) is trained by sampling a path per step
(:func:`train_supernet`); a candidate is then scored by an inference pass on the proxy's reward
split with its path's batch-norm statistics recomputed (:class:`Scorer`). docs/oneshot.md.
"""

from nasfpn.supernet.config import SupernetConfig, load_supernet_config
from nasfpn.supernet.score import Scorer, ScoreResult, check_match, read_summary, score
from nasfpn.supernet.train import SupernetSummary, step_paths, train_supernet

__all__ = [
    "ScoreResult",
    "Scorer",
    "SupernetConfig",
    "SupernetSummary",
    "check_match",
    "load_supernet_config",
    "read_summary",
    "score",
    "step_paths",
    "train_supernet",
]
