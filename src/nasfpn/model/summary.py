"""Parameter and FLOP counts of a detector."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(module: nn.Module) -> int:
    """Every parameter element, trainable or frozen; a tensor shared by two layers counts once."""
    return sum(p.numel() for p in module.parameters())


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """``{"backbone", "neck", "head", "total"}`` parameter counts of a :class:`RetinaNet`."""
    parts = {name: count_parameters(getattr(model, name)) for name in ("backbone", "neck", "head")}
    parts["total"] = count_parameters(model)
    return parts


@torch.no_grad()
def count_flops(model: nn.Module, image_size: int | tuple[int, int], batch: int = 1) -> int:
    """FLOPs of one forward pass (a multiply-add counts as 2), by PyTorch's FLOP counter.

    Convolutions and matrix products are counted; element-wise ops, pooling and resizing are
    not, as in fvcore and mmcv's counters. mmdetection's "GFLOPs" are multiply-adds: half of
    this figure.
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    param = next(model.parameters())
    images = torch.zeros(batch, 3, h, w, dtype=param.dtype, device=param.device)
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter:
            model(images)
    finally:
        model.train(was_training)
    return counter.get_total_flops()
