"""What an architecture costs to run, and rewards that weigh it (docs/cost.md).

:mod:`nasfpn.cost.latency` measures inference latency on this machine (torch);
:mod:`nasfpn.cost.objective` combines AP and cost into a search's reward and finds Pareto
fronts (plain Python, so that the analysis re-weights a finished search without torch). Latency
is measured, not assumed: at equal FLOPs the published NAS-FPNLite ran 9% slower than FPNLite
(paper Table 1).
"""

from nasfpn.cost.objective import COST_COLUMNS, FORMS, METRICS, Objective, pareto_front

__all__ = ["COST_COLUMNS", "FORMS", "METRICS", "Objective", "pareto_front"]
