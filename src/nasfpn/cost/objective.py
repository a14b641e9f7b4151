"""Cost-aware objectives: a search's reward from an architecture's AP and its cost.

``metric`` is what the cost is: ``latency`` (milliseconds, measured: :mod:`nasfpn.cost.latency`)
or ``flops`` (counted, a multiply-add as two); ``none`` keeps the reward the AP alone. ``target``
is the cost aimed at, in the metric's unit. ``form`` is how AP and cost combine, with ``weight``
(None: the form's documented default):

``soft``
    MnasNet's ``AP x (cost / target) ^ w`` with ``w = weight`` (default -0.07) on both sides of
    the target: a smooth trade, 10% more cost costing about 0.7% of the AP.
``hard``
    Vertex AI NAS's ``AP x min((target / cost) ^ weight, 1)`` (default weight 1): no reward for
    being under the target, a steep fall above it (MnasNet's hard constraint is the same form).
``absolute``
    TuNAS's ``AP + weight x |cost / target - 1|`` (default weight -0.07): it pulls the cost
    towards the target from both sides. TuNAS tunes its weight per search; tune it to the spread
    of AP in your space.

Plain Python (no torch): the search's driver computes rewards with it, and the analysis re-weights
a finished search's records with another objective without running anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from nasfpn.rewards import FLOPS, LATENCY

METRICS = ("none", "latency", "flops")
FORMS = ("soft", "hard", "absolute")
DEFAULT_WEIGHTS = {"soft": -0.07, "hard": 1.0, "absolute": -0.07}
COST_COLUMNS = {"latency": LATENCY, "flops": FLOPS}  # where records keep the costs


@dataclass(frozen=True)
class Objective:
    """A search's objective (its YAML block ``objective:``; ``--set objective.metric=latency``).

    How the cost is measured: the proxy task's model (or ``model``, overrides of its model
    settings, e.g. ``{backbone: mobilenet_v2, separable: true}`` to cost the deployed detector),
    at ``image_size`` (None: the proxy's), batch ``batch``, ``threads`` torch threads, after
    ``warmup`` runs, the median of ``repeats``. Each architecture is costed once, on the worker
    that trains it first.
    """

    metric: str = "none"  # none | latency | flops
    target: float | None = None  # milliseconds, or FLOPs
    form: str = "soft"  # soft | hard | absolute
    weight: float | None = None  # None: the form's default (DEFAULT_WEIGHTS)
    model: dict[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    batch: int = 1
    threads: int = 1
    warmup: int = 20
    repeats: int = 20

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(
                f"objective.metric={self.metric!r} is unknown; choose one of {METRICS}"
            )
        if self.form not in FORMS:
            raise ValueError(f"objective.form={self.form!r} is unknown; choose one of {FORMS}")
        if self.metric != "none":
            unit = "milliseconds" if self.metric == "latency" else "FLOPs"
            if self.target is None:
                raise ValueError(
                    f"objective.metric={self.metric} needs objective.target (the {self.metric} "
                    f"aimed at, in {unit}), e.g. --set objective.target=50"
                )
            if not self.target > 0 or not math.isfinite(self.target):
                raise ValueError(
                    f"objective.target={self.target} must be a positive number of {unit}"
                )
        for name, least in (("batch", 1), ("threads", 1), ("warmup", 0), ("repeats", 1)):
            if getattr(self, name) < least:
                raise ValueError(f"objective.{name}={getattr(self, name)} must be at least {least}")
        if self.image_size is not None and self.image_size < 32:
            raise ValueError(f"objective.image_size={self.image_size} must be at least 32, or null")

    @property
    def active(self) -> bool:
        """Whether the reward depends on cost (``metric`` is not ``none``)."""
        return self.metric != "none"

    @property
    def cost_column(self) -> str | None:
        return COST_COLUMNS.get(self.metric)

    @property
    def resolved_weight(self) -> float:
        return DEFAULT_WEIGHTS[self.form] if self.weight is None else float(self.weight)

    def value(self, ap: float, cost: float | None) -> float:
        """The reward of an architecture with ``ap`` and ``cost`` (AP alone for ``none``)."""
        if not self.active:
            return float(ap)
        if cost is None or not cost > 0:
            raise ValueError(
                f"a {self.metric} of {cost!r}: the objective needs a positive measured cost"
            )
        ratio, w = cost / float(self.target), self.resolved_weight
        if self.form == "soft":
            return float(ap) * ratio**w
        if self.form == "hard":
            return float(ap) * min((1 / ratio) ** w, 1.0)
        return float(ap) + w * abs(ratio - 1)

    def describe(self) -> str:
        if not self.active:
            return "AP"
        unit = " ms" if self.metric == "latency" else " FLOPs"
        target = f"{self.target:g}{unit}"
        w = self.resolved_weight
        return {
            "soft": f"AP x ({self.metric} / {target}) ^ {w:g}",
            "hard": f"AP x min(({target} / {self.metric}) ^ {w:g}, 1)",
            "absolute": f"AP + {w:g} x |{self.metric} / {target} - 1|",
        }[self.form]


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """The indices of the points ``(cost, ap)`` that no other point dominates (no more cost and
    at least the AP, better in one), ordered by cost. Equal points are all kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    last: tuple[float, float] | None = None
    for i in order:
        cost, ap = points[i]
        if ap > best or (last is not None and (cost, ap) == last):
            front.append(i)
            best = max(best, ap)
            last = (cost, ap)
    return front
