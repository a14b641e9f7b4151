"""Load mmdetection's crop640 RetinaNet checkpoints into our models.

mmdetection hard-codes the published NAS-FPN cell as named merge cells; our neck builds the same
network from the genotype with one loop, so the weights map by a fixed table (docs/references.md
lists the naming rules and where they come from). Only the published genotype and the FPN
baseline have mmdetection checkpoints; any other architecture is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor

from nasfpn.model.neck import FPNNeck, NASFPNNeck
from nasfpn.model.retinanet import RetinaNet
from nasfpn.space import NASFPN

# mmdetection NASFPN stage cell name -> index of the cell in the published genotype. The two
# conv-free GlobalPoolingCells (gp_43_5, gp_54_7) have no weights: their conv is the one of the
# sum cell that follows them (docs section 2).
NASFPN_CELLS = {
    "gp_64_4": 0,
    "sum_44_4": 1,
    "sum_43_3": 2,
    "sum_34_4": 3,
    "sum_55_5": 4,
    "sum_77_7": 5,
    "gp_75_6": 6,
}

_RULES_NASFPN = [
    (r"^neck\.lateral_convs\.(\d+)\.(conv|bn)\.(.+)$", r"neck.lateral.\1.\2.\3"),
    (r"^neck\.extra_downsamples\.(\d+)\.0\.(conv|bn)\.(.+)$", r"neck.extra.\1.\2.\3"),
]
_RULES_FPN = [
    (r"^neck\.lateral_convs\.(\d+)\.conv\.(.+)$", r"neck.lateral.\1.conv.\2"),
]
_RULES_HEAD = [
    (r"^bbox_head\.(cls|reg)_convs\.(\d+)\.(\d+)\.bn\.(.+)$", r"head.\1_norms.\2.\3.\4"),
    (r"^bbox_head\.retina_cls\.(.+)$", r"head.cls_logits.\1"),
    (r"^bbox_head\.retina_reg\.(.+)$", r"head.bbox_pred.\1"),
]
_STAGE = re.compile(r"^neck\.fpn_stages\.(\d+)\.(\w+?)\.out_conv\.(conv|bn)\.(.+)$")
_FPN_CONV = re.compile(r"^neck\.fpn_convs\.(\d+)\.(conv|bn)\.(.+)$")
_SHARED_CONV = re.compile(r"^bbox_head\.(cls|reg)_convs\.(\d+)\.(\d+)\.conv\.weight$")


class CheckpointMappingError(ValueError):
    """An mmdetection state dict that does not fit the model it is loaded into."""


def _rename(key: str, model: RetinaNet) -> str | None:
    """Our name for an mmdetection key; None for a duplicate of a shared head conv."""
    if key.startswith("backbone."):
        return key
    if m := _SHARED_CONV.match(key):
        branch, level, i = m.groups()
        return f"head.{branch}_convs.{i}.weight" if level == "0" else None
    for pattern, repl in _RULES_HEAD:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    if isinstance(model.neck, NASFPNNeck):
        if m := _STAGE.match(key):
            repeat, cell, part, rest = m.groups()
            if cell not in NASFPN_CELLS:
                raise CheckpointMappingError(f"unknown mmdetection NAS-FPN cell {cell!r} in {key}")
            return f"neck.repeat_cells.{repeat}.{NASFPN_CELLS[cell]}.{part}.{rest}"
        rules = _RULES_NASFPN
    else:
        if m := _FPN_CONV.match(key):
            i, part, rest = m.groups()
            n_out = len(model.neck.output)
            where = f"output.{i}" if int(i) < n_out else f"extra.{int(i) - n_out}"
            return f"neck.{where}.{part}.{rest}"
        rules = _RULES_FPN
    for pattern, repl in rules:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    raise CheckpointMappingError(
        f"mmdetection key {key!r} has no counterpart in this model; expected a "
        "retinanet_r50_nasfpn_crop640 or retinanet_r50_fpn_crop640 checkpoint"
    )


def from_mmdet_state_dict(state: dict[str, Tensor], model: RetinaNet) -> dict[str, Tensor]:
    """Rename an mmdetection RetinaNet state dict into ``model``'s names.

    ``model`` must be a RetinaNet with the published NAS-FPN genotype (``mmdet`` variant) or the
    FPN neck, with the checkpoint's backbone depth, repeats, width and classes. The head convs
    that mmdetection stores once per level (shared tensors) are checked to be equal and kept
    once. Every key of ``model`` must be covered, and every shape must match.
    """
    neck = model.neck
    if isinstance(neck, NASFPNNeck):
        if neck.genotype.key() != NASFPN.key() or neck.variant.name != "mmdet":
            raise CheckpointMappingError(
                "mmdetection checkpoints hold the published NAS-FPN cell with mmdetection's "
                "semantics; build the model with arch 'nasfpn' and variant 'mmdet'"
            )
    elif not isinstance(neck, FPNNeck):
        raise CheckpointMappingError(f"no mmdetection mapping for a {type(neck).__name__} neck")
    state = {k: v for k, v in state.items() if not k.startswith("data_preprocessor.")}
    own = model.state_dict()
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        name = _rename(key, model)
        if name is None:
            m = _SHARED_CONV.match(key)
            first = f"bbox_head.{m.group(1)}_convs.0.{m.group(3)}.conv.weight"
            if first in state and not torch.equal(state[first], value):
                raise CheckpointMappingError(f"{key} should share its weights with {first}")
            continue
        if name not in own:
            raise CheckpointMappingError(
                f"mmdetection key {key!r} maps to {name!r}, which this model lacks: check "
                "repeats, backbone depth and the number of classes"
            )
        if tuple(own[name].shape) != tuple(value.shape):
            raise CheckpointMappingError(
                f"{key}: checkpoint shape {tuple(value.shape)} but the model has "
                f"{tuple(own[name].shape)} at {name}; check width, backbone and num_classes"
            )
        out[name] = value
    missing = sorted(set(own) - set(out))
    if missing:
        raise CheckpointMappingError(
            f"the checkpoint leaves {len(missing)} of the model's tensors unset "
            f"(first: {missing[:3]}); it was made for a different configuration"
        )
    return out


def load_mmdet_checkpoint(model: RetinaNet, path: str | Path) -> None:
    """Load an mmdetection ``.pth`` (its ``state_dict`` entry) into ``model``, strictly."""
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointMappingError(f"{path} holds no state dict")
    model.load_state_dict(from_mmdet_state_dict(state, model), strict=True)
