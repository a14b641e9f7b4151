"""Search algorithms behind one propose/feedback interface. No Ray, no training.

``make_algorithm(name, space, seed=0, **options)`` builds ``reinforce`` or ``ppo`` (an LSTM
policy, Zoph & Le 2017 / ENAS, trained with REINFORCE or PPO), ``random`` (random search) or
``evolution`` (regularized evolution, Real et al. 2019). ``landscapes`` and ``bench`` measure
them on reward functions with a known optimum (``nasfpn bench-search``). See docs/controller.md.
"""

from nasfpn.controller.base import Algorithm, FeedbackError, Proposal, check_reward
from nasfpn.controller.evolution import EvolutionConfig, RegularizedEvolution, mutate
from nasfpn.controller.factory import ALGORITHMS, algorithm_options, make_algorithm
from nasfpn.controller.landscapes import (
    LANDSCAPES,
    Landscape,
    MatchLandscape,
    NKLandscape,
    make_landscape,
)
from nasfpn.controller.policy import LSTMPolicy
from nasfpn.controller.ppo import PPO, PPOConfig
from nasfpn.controller.random_search import RandomConfig, RandomSearch
from nasfpn.controller.reinforce import Reinforce, ReinforceConfig

__all__ = [
    "ALGORITHMS",
    "LANDSCAPES",
    "PPO",
    "Algorithm",
    "EvolutionConfig",
    "FeedbackError",
    "LSTMPolicy",
    "Landscape",
    "MatchLandscape",
    "NKLandscape",
    "PPOConfig",
    "Proposal",
    "RandomConfig",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "ReinforceConfig",
    "algorithm_options",
    "check_reward",
    "make_algorithm",
    "make_landscape",
    "mutate",
]
