"""Parity with mmdetection's crop640 RetinaNets, on state dicts synthesised from its source."""

import importlib.util
from pathlib import Path

import pytest
import torch

from nasfpn.model import ModelConfig, build_retinanet
from nasfpn.model.mmdet_compat import (
    CheckpointMappingError,
    from_mmdet_state_dict,
    load_mmdet_checkpoint,
)

_spec = importlib.util.spec_from_file_location(
    "mmdet_reference", Path(__file__).with_name("mmdet_reference.py")
)
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


def _unique_shapes(state: dict[str, torch.Tensor], aliases: set[str]) -> list[tuple]:
    return sorted(
        tuple(v.shape) for k, v in state.items() if k not in aliases and not ref.is_buffer_key(k)
    )


@pytest.fixture(scope="module")
def models():
    with torch.device("meta"):
        return {"nasfpn": build_retinanet("nasfpn"), "fpn": build_retinanet("fpn")}


@pytest.mark.parametrize(
    ("arch", "make_ref"),
    [
        ("nasfpn", ref.mmdet_nasfpn_retinanet_state_dict),
        ("fpn", ref.mmdet_fpn_retinanet_state_dict),
    ],
)
def test_same_parameter_tensors_as_mmdetection(models, arch, make_ref) -> None:
    theirs = make_ref()
    ours = models[arch]
    aliases = set(ref.shared_head_aliases(theirs))
    params = list(ours.parameters())  # shared tensors once
    count, elements = ref.mmdet_unique_parameter_count(theirs)
    assert (len(params), sum(p.numel() for p in params)) == (count, elements)
    assert sorted(tuple(p.shape) for p in params) == _unique_shapes(theirs, aliases)


@pytest.mark.parametrize(
    ("arch", "make_ref"),
    [
        ("nasfpn", ref.mmdet_nasfpn_retinanet_state_dict),
        ("fpn", ref.mmdet_fpn_retinanet_state_dict),
    ],
)
def test_mmdetection_state_dict_maps_onto_ours(arch, make_ref, tmp_path) -> None:
    torch.manual_seed(0)
    theirs = {
        k: torch.randn(v.shape) if v.dtype.is_floating_point else torch.tensor(7)
        for k, v in make_ref(device="meta").items()
    }
    for alias, first in ref.shared_head_aliases(theirs).items():
        theirs[alias] = theirs[first]
    model = build_retinanet(arch)
    mapped = from_mmdet_state_dict(theirs, model)
    assert set(mapped) == set(model.state_dict())
    model.load_state_dict(mapped, strict=True)
    sd = model.state_dict()
    torch.testing.assert_close(
        sd["backbone.layer3.5.conv2.weight"], theirs["backbone.layer3.5.conv2.weight"]
    )
    torch.testing.assert_close(
        sd["head.cls_norms.3.2.running_var"], theirs["bbox_head.cls_convs.3.2.bn.running_var"]
    )
    torch.testing.assert_close(sd["head.bbox_pred.bias"], theirs["bbox_head.retina_reg.bias"])
    if arch == "nasfpn":
        torch.testing.assert_close(
            sd["neck.repeat_cells.6.4.conv.weight"],
            theirs["neck.fpn_stages.6.sum_55_5.out_conv.conv.weight"],
        )
        torch.testing.assert_close(
            sd["neck.extra.1.bn.weight"], theirs["neck.extra_downsamples.1.0.bn.weight"]
        )
    else:
        torch.testing.assert_close(
            sd["neck.extra.1.conv.weight"], theirs["neck.fpn_convs.4.conv.weight"]
        )
        torch.testing.assert_close(sd["neck.output.0.bn.bias"], theirs["neck.fpn_convs.0.bn.bias"])

    path = tmp_path / "mmdet.pth"
    torch.save({"meta": {"epoch": 50}, "state_dict": theirs}, path)
    fresh = build_retinanet(arch)
    load_mmdet_checkpoint(fresh, path)
    torch.testing.assert_close(
        fresh.state_dict()["head.cls_logits.weight"], theirs["bbox_head.retina_cls.weight"]
    )


def test_mapping_errors() -> None:
    theirs = {
        k: torch.zeros(v.shape, dtype=v.dtype)
        for k, v in ref.mmdet_nasfpn_retinanet_state_dict(device="meta").items()
    }
    with pytest.raises(CheckpointMappingError, match="arch 'nasfpn' and variant 'mmdet'"):
        from_mmdet_state_dict(theirs, build_retinanet("nasfpn", ModelConfig(variant="tf")))
    with pytest.raises(CheckpointMappingError, match="checkpoint shape"):
        from_mmdet_state_dict(theirs, build_retinanet("nasfpn", ModelConfig(num_classes=20)))
    with pytest.raises(CheckpointMappingError, match="which this model lacks"):
        from_mmdet_state_dict(theirs, build_retinanet("nasfpn", ModelConfig(repeats=3)))
    partial = {k: v for k, v in theirs.items() if "fpn_stages.6" not in k}
    with pytest.raises(CheckpointMappingError, match="leaves 49 of the model's tensors unset"):
        from_mmdet_state_dict(partial, build_retinanet("nasfpn"))
    unshared = dict(theirs)
    unshared["bbox_head.cls_convs.2.1.conv.weight"] = torch.ones(256, 256, 3, 3)
    with pytest.raises(CheckpointMappingError, match="should share its weights"):
        from_mmdet_state_dict(unshared, build_retinanet("nasfpn"))
    stray = dict(theirs, **{"neck.something.weight": torch.zeros(1)})
    with pytest.raises(CheckpointMappingError, match="has no counterpart"):
        from_mmdet_state_dict(stray, build_retinanet("nasfpn"))
