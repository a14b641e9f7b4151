"""The processes of one training run, for every room that trains with several (retraining,
the shared weights of :mod:`nasfpn.supernet`): this process's rank, the world size and its
device, read from the process group Ray Train set up or from ``torchrun``'s environment, and the
launch of a training function on Ray Train's workers.

One code path serves every way of running: a single process, ``torchrun --nproc-per-node N``
(the group is created here: NCCL on GPUs, gloo on CPUs) and Ray Train's ``TorchTrainer``
(:func:`fit_on_ray_train`, which imports Ray; nothing else here does).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

RAY_TRAIN_STORAGE = "ray"  # the folder under a run's output that Ray Train's own storage takes


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run: rank, world size, local rank (GPU index), device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # this process created the group (and destroys it at the end)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's BN running statistics on every process. DDP broadcasts them at the start of
        each forward, so after the last step every process holds its own; evaluation and the
        final check must see the checkpoint's (rank 0's)."""
        if self.world_size > 1:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` (in rank order) on every process."""
        if self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def _device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise ValueError(
            f"device {name!r} is unknown; choose auto, cpu or cuda (each process takes "
            "cuda:LOCAL_RANK)"
        )
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for, but CUDA is not available; use auto or cpu")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def setup_distributed(device: str = "auto") -> DistInfo:
    """Rank and world size from an existing process group (Ray Train), else from torchrun's
    environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``; the group is created here: NCCL on
    GPUs, gloo on CPUs), else a single process."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistInfo(0, 1, local_rank, dev)
    dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, owns_group=True)


def _ray_train_entry(config: dict[str, Any]) -> None:
    """One Ray Train worker: the process group is Ray's; the GPU index is read from LOCAL_RANK,
    as under torchrun; then the room's own training function."""
    import ray.train

    os.environ["LOCAL_RANK"] = str(ray.train.get_context().get_local_rank())
    config["worker"](config["job"])


def fit_on_ray_train(
    worker: Callable[[dict[str, Any]], None],
    job: dict[str, Any],
    out: str | Path,
    *,
    workers: int,
    address: str | None = None,
    use_gpu: bool = False,
    cpus_per_worker: float = 1.0,
) -> None:
    """Run ``worker(job)`` in each of ``workers`` Ray Train processes (one torch process group)
    on the cluster at ``address`` (None: a local Ray started here), and return when all have
    finished; a worker's failure is raised. ``worker`` must be importable by the workers (a
    module-level function) and write its results under ``out``: Ray Train returns nothing, and
    its own storage (``out/ray``, :data:`RAY_TRAIN_STORAGE`) holds nothing else."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from nasfpn.ray_setup import init_ray

    num_cpus = None if address else max(int(workers * cpus_per_worker), 1)
    init_ray(address, num_cpus=num_cpus, log_to_driver=True)
    trainer = TorchTrainer(
        _ray_train_entry,
        train_loop_config={"worker": worker, "job": job},
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus_per_worker}
        ),
        run_config=RunConfig(name="ray", storage_path=str(Path(out).resolve() / RAY_TRAIN_STORAGE)),
    )
    trainer.fit()  # raises if a worker failed
