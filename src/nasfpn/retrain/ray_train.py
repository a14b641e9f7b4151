"""Multi-node retraining through Ray Train's ``TorchTrainer`` (docs/retrain.md, "Ray").

Imported only on this path (``nasfpn retrain --ray-workers N``): Ray Train starts one worker
process per slot, sets up the torch process group (gloo on CPUs, NCCL on GPUs) and calls
:func:`_worker`, which calls the same :func:`nasfpn.retrain.retrain` as a single process or
``torchrun`` do (:func:`nasfpn.distributed.fit_on_ray_train`).

Every worker writes to and resumes from the run's output folder, so on several nodes it must be
on storage they all see (NFS, a mounted bucket); Ray's own storage is used for nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasfpn import config as config_io
from nasfpn.retrain.config import RetrainConfig
from nasfpn.space import Genotype

SUMMARY_FILE = "ray_summary.json"


def _worker(job: dict[str, Any]) -> None:
    """One Ray Train worker: :func:`retrain` in the group Ray set up."""
    import torch.distributed as dist

    from nasfpn.retrain.run import retrain, write_json

    genotype = Genotype.from_dict(job["genotype"]) if job["genotype"] is not None else None
    cfg = config_io.from_dict(RetrainConfig, job["config"])
    summary = retrain(genotype, cfg, job["out"], resume=job["resume"])
    if dist.get_rank() == 0:  # for the driver, which Ray Train gives no return value
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
    from nasfpn.distributed import fit_on_ray_train

    out = Path(out).resolve()
    job = {
        "genotype": genotype.to_dict() if genotype is not None else None,
        "config": config_io.to_dict(cfg),
        "out": str(out),
        "resume": resume,
    }
    fit_on_ray_train(_worker, job, out, workers=workers, address=address, use_gpu=use_gpu,
                     cpus_per_worker=cpus_per_worker)  # fmt: skip
    return json.loads((out / SUMMARY_FILE).read_text())
