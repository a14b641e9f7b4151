"""An architecture's cost as a search records it: the costed model's latency and FLOPs.

The costed model is the proxy task's detector for the genotype (its backbone, repeats x width,
head, separable setting and the data's classes), with the objective's ``model`` overrides, at
the objective's ``image_size`` (the proxy's by default), freshly initialised: latency depends on
the architecture, not on what it learnt (docs/cost.md on post-processing).
"""

from __future__ import annotations

from typing import Any

from nasfpn import config as config_io
from nasfpn.cost.latency import model_latency
from nasfpn.cost.objective import Objective
from nasfpn.data import load_annotations
from nasfpn.model import ModelConfig, build_retinanet, count_flops
from nasfpn.proxy_train import data as proxy_data
from nasfpn.proxy_train.config import ProxyConfig
from nasfpn.space import Genotype


def costed_model_config(genotype: Genotype, proxy: ProxyConfig, objective: Objective,
                        num_classes: int) -> ModelConfig:  # fmt: skip
    """The proxy's model for ``genotype``'s levels with the objective's overrides."""
    base = proxy.model_config(num_classes, genotype.levels)
    return config_io.from_dict(ModelConfig, objective.model, prefix="objective.model.", base=base)


def architecture_cost(
    genotype: Genotype, proxy: ProxyConfig, objective: Objective
) -> dict[str, Any]:
    """``{"latency_ms", "cost_flops", "latency"}`` of ``genotype`` (the median, the FLOPs of
    the costed model, and the whole latency measurement)."""
    files = proxy_data.prepare(proxy)
    num_classes = len(load_annotations(files.train_annotations)["categories"])
    cfg = costed_model_config(genotype, proxy, objective, num_classes)
    size = objective.image_size or proxy.image_size
    model = build_retinanet(genotype, cfg)
    flops = count_flops(model, size)
    latency = model_latency(model, size, batch=objective.batch, threads=objective.threads,
                            warmup=objective.warmup, repeats=objective.repeats)  # fmt: skip
    return {"latency_ms": latency.median_ms, "cost_flops": flops, "latency": latency.to_dict()}


def check_objective_model(objective: Objective, proxy: ProxyConfig, space) -> None:
    """Build the proxy's model and the costed model of the space's first sample (no data
    needed): a space whose levels the backbone cannot give, and the objective's overrides, are
    refused here, before a search writes anything, not on a worker."""
    import random

    genotype = space.decode(space.sample(random.Random(0)))
    try:
        build_retinanet(genotype, proxy.model_config(1, genotype.levels))
    except ValueError as err:
        raise ValueError(
            f"the search space (levels P{space.min_level}-P{space.max_level}) does not fit the "
            f"proxy's {proxy.backbone} ({err}); its backbone gives levels 2-5, so choose "
            "min_level 5 or less"
        ) from err
    if objective.model:  # otherwise the costed model is the one just built
        build_retinanet(genotype, costed_model_config(genotype, proxy, objective, num_classes=1))
