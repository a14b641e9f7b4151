"""Multi-node retraining through Ray Train's ``TorchTrainer`` (docs/retrain.md, "Ray").

The one module outside ``search`` that imports Ray (docs/architecture.md): Ray Train starts one
worker process per slot, sets up the torch process group (gloo on CPUs, NCCL on GPUs) and calls
:func:`_worker`, which calls the same :func:`nasfpn.retrain.retrain` as a single process or
``torchrun`` do. Import it only on this path (``nasfpn retrain --ray-workers N``).

Every worker writes to and resumes from the run's output folder, so on several nodes it must be
on storage they all see (NFS, a mounted bucket); Ray's own storage is used for nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nasfpn import config as config_io
from nasfpn.retrain.config import RetrainConfig
from nasfpn.space import Genotype

SUMMARY_FILE = "ray_summary.json"


def _worker(job: dict[str, Any]) -> None:
    """One Ray Train worker: the process group is Ray's; the rest is :func:`retrain`."""
    import ray.train

    from nasfpn.retrain.run import retrain, write_json

    context = ray.train.get_context()
    # retrain() reads the GPU index from LOCAL_RANK, as under torchrun
    os.environ["LOCAL_RANK"] = str(context.get_local_rank())
    genotype = Genotype.from_dict(job["genotype"]) if job["genotype"] is not None else None
    cfg = config_io.from_dict(RetrainConfig, job["config"])
    summary = retrain(genotype, cfg, job["out"], resume=job["resume"])
    if context.get_world_rank() == 0:  # for the driver, which Ray Train gives no return value
        write_json(Path(job["out"]) / SUMMARY_FILE, summary)


def launch(
    genotype: Genotype | None,
    cfg: RetrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    workers: int = 2,
    address: str | None = None,
    use_gpu: bool = False,
    cpus_per_worker: float = 1.0,
) -> dict[str, Any]:
    """Run :func:`retrain` on ``workers`` Ray Train workers and return rank 0's summary."""
    import json

    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    out = Path(out).resolve()
    from nasfpn.ray_setup import init_ray

    num_cpus = None if address else max(int(workers * cpus_per_worker), 1)
    init_ray(address, num_cpus=num_cpus, log_to_driver=True)
    job = {
        "genotype": genotype.to_dict() if genotype is not None else None,
        "config": config_io.to_dict(cfg),
        "out": str(out),
        "resume": resume,
    }
    trainer = TorchTrainer(
        _worker,
        train_loop_config=job,
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus_per_worker}
        ),
        run_config=RunConfig(name="ray", storage_path=str(out / "ray")),
    )
    trainer.fit()  # raises if a worker failed
    return json.loads((out / SUMMARY_FILE).read_text())
