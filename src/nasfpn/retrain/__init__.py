"""Full-scale retraining of a chosen architecture, on one process or many (docs/retrain.md).

``retrain(arch, cfg, out)`` is the per-process training function that a single process,
``torchrun`` and Ray Train's ``TorchTrainer`` (:mod:`nasfpn.retrain.ray_train`, imported only
when asked for: the one place outside ``search`` that imports Ray) all run.
"""

from nasfpn.retrain.anytime import AnytimeRetinaNet
from nasfpn.retrain.config import (
    AnytimeConfig,
    DataConfig,
    RetrainConfig,
    load_retrain_config,
    lr_scaling,
    preset_path,
)
from nasfpn.retrain.run import (
    CheckpointError,
    build_model,
    latest_checkpoint,
    load_checkpoint,
    model_summary,
    resolved_config,
    retrain,
)

__all__ = [
    "AnytimeConfig",
    "AnytimeRetinaNet",
    "CheckpointError",
    "DataConfig",
    "RetrainConfig",
    "build_model",
    "latest_checkpoint",
    "load_checkpoint",
    "load_retrain_config",
    "lr_scaling",
    "model_summary",
    "preset_path",
    "resolved_config",
    "retrain",
]
