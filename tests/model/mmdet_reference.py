"""What mmdetection's RetinaNet state dicts look like, rebuilt from facts read in its source.

No checkpoint is downloaded: the functions here return ordered ``dict[str, torch.Tensor]``
objects with exactly the key names, shapes and dtypes that ``model.state_dict()`` gives for

* ``configs/nas_fpn/retinanet_r50_nasfpn_crop640_50e_coco.py`` (mmdetection v2.x; 40.5 AP), and
* ``configs/nas_fpn/retinanet_r50_fpn_crop640_50e_coco.py`` (mmdetection v2.x; 37.9 AP),

with tensors on the ``meta`` device by default (cheap: R-50 plus 7 stacks builds in
milliseconds) or zero-filled on a real device when asked.

Facts used, and the file each one comes from
-------------------------------------------
* Top-level module order of ``RetinaNet`` (``SingleStageDetector``): ``backbone``, ``neck``,
  ``bbox_head``; keys are prefixed with those names.
* ``mmdet/models/backbones/resnet.py``: stem ``conv1`` (7x7, no bias) then its norm registered
  as ``bn1`` (``build_norm_layer(..., postfix=1)``); stages ``layer1``..``layer4``; in a
  ``Bottleneck`` the registration order is ``conv1, bn1, conv2, bn2, conv3, bn3, downsample``
  (the norms are built first but added with ``add_module`` right after each conv), all convs
  bias-free; ``BasicBlock`` likewise with two convs. Depth table 18/34/50/101/152.
* ``mmdet/models/utils/res_layer.py`` (``ResLayer``): the first block of every stage gets
  ``downsample = Sequential(conv1x1 (no bias), norm)`` when the stride is not 1 or the
  channel count changes (so ``layer1.0`` has one too for Bottleneck nets), giving keys
  ``downsample.0.weight`` and ``downsample.1.*``.
* ``mmcv/cnn/bricks/norm.py``: a ``BN`` layer's abbreviation is ``bn`` (``infer_abbr``), so a
  ``ConvModule``'s norm is the child ``bn``; BatchNorm2d state is ``weight, bias,
  running_mean, running_var`` (float32, shape (C,)) and ``num_batches_tracked`` (int64, shape
  ()).
* ``mmcv/cnn/bricks/conv_module.py``: children ``conv`` then ``bn``; ``bias='auto'`` means a
  bias only when there is no norm layer; an explicit ``bias=True`` keeps it even with BN.
* ``mmdet/models/necks/nas_fpn.py`` (v2.1+, the version using ``mmcv.ops.merge_cells``):
  ``lateral_convs`` (1x1 ConvModule, BN, no act, so no bias) for C3..C5, then
  ``extra_downsamples.{0,1}`` = ``Sequential(ConvModule 1x1 + BN, MaxPool2d(2, 2))``, then
  ``fpn_stages.{k}`` (one ``ModuleDict`` per stack) with cells in insertion order
  ``gp_64_4, sum_44_4, sum_43_3, sum_34_4, gp_43_5, sum_55_5, gp_54_7, sum_77_7, gp_75_6``;
  ``gp_43_5`` and ``gp_54_7`` are built with ``with_out_conv=False`` and hold no state.
* ``mmcv/ops/merge_cells.py``: a cell's conv is the child ``out_conv``, a ConvModule built
  with ``out_conv_cfg = dict(groups=1, kernel_size=3, padding=1, bias=True)`` and order
  ``('act', 'conv', 'norm')``: so every cell conv HAS a bias although BN follows it. The
  ``input1_conv``/``input2_conv`` children are empty ``nn.Sequential`` (no state) and the
  global pool has no parameters. (mmdetection v1.x's own ``MergingCell`` called the child
  ``conv_out`` and used ``bias='auto'``, i.e. no bias; see ``cell_conv_name`` /
  ``cell_conv_bias`` below.)
* ``mmdet/models/necks/fpn.py`` with the crop640 FPN overrides (``no_norm_on_lateral=True``,
  ``norm_cfg=BN``, ``relu_before_extra_convs=True``) on top of
  ``configs/_base_/models/retinanet_r50_fpn.py`` (``start_level=1``,
  ``add_extra_convs='on_input'``, ``num_outs=5``): ``lateral_convs.{0,1,2}`` are 1x1 convs
  WITH bias and without BN; ``fpn_convs.{0,1,2}`` are 3x3 convs with BN and no bias;
  ``fpn_convs.3`` is the stride-2 3x3 conv on C5 (2048 input channels) and ``fpn_convs.4`` the
  stride-2 3x3 conv on P6 (256 input channels), both with BN and no bias. All lateral convs
  are registered before all fpn convs (two ModuleLists).
* ``mmdet/models/dense_heads/retina_sepbn_head.py``: ``cls_convs`` and ``reg_convs`` are
  ``ModuleList`` (one per input level, ``num_ins=5``) of ``ModuleList`` (``stacked_convs=4``)
  of ConvModule(3x3, BN) -> conv without bias; afterwards ``cls_convs[j][i].conv`` is
  re-pointed at ``cls_convs[0][i].conv`` for ``j >= 1`` (same for ``reg_convs``). The key
  order is unchanged by the re-pointing (the child name already exists), and
  ``Module.state_dict()`` does not de-duplicate shared modules, so every level lists its own
  copy of ``conv.weight`` while ``named_parameters()``/``parameters()`` see one tensor.
  Then ``retina_cls`` (3x3, ``num_anchors * num_classes`` outputs, bias) and ``retina_reg``
  (3x3, ``num_anchors * 4`` outputs, bias). ``num_anchors = 3 scales x 3 ratios = 9``;
  sigmoid focal loss, so ``cls_out_channels = num_classes`` (no background channel).
  The loss modules (FocalLoss, L1Loss) have no state.

Sanity numbers (see :func:`mmdet_parameter_summary`): the standard mmdetection RetinaNet
R-50-FPN (``RetinaHead``, no norm in neck or head) has 37,968,692 parameter elements, of
which 37,743,348 are trainable with ``frozen_stages=1``; the latter is the 37.74M that
mmdetection's ``get_flops.py`` reports (it counts ``requires_grad`` parameters only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import torch

Spec = tuple[str, tuple[int, ...], torch.dtype]

_F32 = torch.float32
_I64 = torch.int64

# mmdet/models/backbones/resnet.py, ResNet.arch_settings: block type and blocks per stage.
RESNET_ARCH: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}

# mmdet/models/necks/nas_fpn.py: cell names of one stack, in ModuleDict insertion order, and
# whether the cell owns an out_conv (gp_43_5 / gp_54_7 are GlobalPoolingCell(with_out_conv=False)).
NASFPN_CELLS: tuple[tuple[str, bool], ...] = (
    ("gp_64_4", True),
    ("sum_44_4", True),
    ("sum_43_3", True),
    ("sum_34_4", True),
    ("gp_43_5", False),
    ("sum_55_5", True),
    ("gp_54_7", False),
    ("sum_77_7", True),
    ("gp_75_6", True),
)

# BatchNorm2d buffers; everything else in these state dicts is an nn.Parameter.
_BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")

# Head convs shared across levels (retina_sepbn_head.py): level j >= 1 aliases level 0.
_SHARED_HEAD_CONV = re.compile(
    r"^(?P<pre>.*\b(?:cls|reg)_convs\.)(?P<lvl>\d+)(?P<post>\.\d+\.conv\.)"
)


# --------------------------------------------------------------------------- primitives


def _conv(name: str, cin: int, cout: int, k: int, *, bias: bool) -> Iterator[Spec]:
    """nn.Conv2d state: ``weight`` (cout, cin, k, k) then ``bias`` (cout,) if present."""
    yield f"{name}.weight", (cout, cin, k, k), _F32
    if bias:
        yield f"{name}.bias", (cout,), _F32


def _bn(name: str, c: int) -> Iterator[Spec]:
    """nn.BatchNorm2d state (affine, tracking running stats)."""
    yield f"{name}.weight", (c,), _F32
    yield f"{name}.bias", (c,), _F32
    yield f"{name}.running_mean", (c,), _F32
    yield f"{name}.running_var", (c,), _F32
    yield f"{name}.num_batches_tracked", (), _I64


def _conv_module(
    prefix: str, cin: int, cout: int, k: int, *, norm: bool, bias: bool | str = "auto"
) -> Iterator[Spec]:
    """mmcv ConvModule: child ``conv`` then child ``bn`` (conv_module.py, norm.py).

    ``bias='auto'`` resolves to ``not norm``; the activation layer has no state. The norm is
    always sized by ``cout`` here (every ConvModule in these models has the norm after the
    conv, including order ('act', 'conv', 'norm')).
    """
    with_bias = (not norm) if bias == "auto" else bool(bias)
    yield from _conv(f"{prefix}conv", cin, cout, k, bias=with_bias)
    if norm:
        yield from _bn(f"{prefix}bn", cout)


# --------------------------------------------------------------------------- backbone


def resnet_out_channels(depth: int = 50) -> list[int]:
    """Channels of C2..C5 (mmdet ResNet ``out_indices=(0, 1, 2, 3)``)."""
    kind, _ = RESNET_ARCH[depth]
    expansion = 4 if kind == "bottleneck" else 1
    return [64 * 2**i * expansion for i in range(4)]


def resnet_backbone_specs(depth: int = 50, prefix: str = "backbone.") -> Iterator[Spec]:
    """mmdet ResNet (style 'pytorch', no deep stem, no avg_down, no DCN/plugins).

    Naming from mmdet/models/backbones/resnet.py (_make_stem_layer, BasicBlock, Bottleneck) and
    mmdet/models/utils/res_layer.py (downsample Sequential(conv, norm)). Strides do not change
    shapes, so they are not modelled.
    """
    kind, blocks = RESNET_ARCH[depth]
    expansion = 4 if kind == "bottleneck" else 1
    # Stem: conv1 (7x7/2, no bias) then norm1 registered as "bn1"; relu and maxpool hold no state.
    yield from _conv(f"{prefix}conv1", 3, 64, 7, bias=False)
    yield from _bn(f"{prefix}bn1", 64)
    inplanes = 64
    for stage, n_blocks in enumerate(blocks):
        planes = 64 * 2**stage
        out = planes * expansion
        for b in range(n_blocks):
            p = f"{prefix}layer{stage + 1}.{b}."
            cin = inplanes if b == 0 else out
            if kind == "bottleneck":
                yield from _conv(f"{p}conv1", cin, planes, 1, bias=False)
                yield from _bn(f"{p}bn1", planes)
                yield from _conv(f"{p}conv2", planes, planes, 3, bias=False)
                yield from _bn(f"{p}bn2", planes)
                yield from _conv(f"{p}conv3", planes, out, 1, bias=False)
                yield from _bn(f"{p}bn3", out)
            else:
                yield from _conv(f"{p}conv1", cin, planes, 3, bias=False)
                yield from _bn(f"{p}bn1", planes)
                yield from _conv(f"{p}conv2", planes, planes, 3, bias=False)
                yield from _bn(f"{p}bn2", planes)
            # ResLayer: projection shortcut on the first block when stride != 1 (stages 2-4)
            # or inplanes != planes * expansion (stage 1 of Bottleneck nets).
            if b == 0 and (stage > 0 or inplanes != out):
                yield from _conv(f"{p}downsample.0", inplanes, out, 1, bias=False)
                yield from _bn(f"{p}downsample.1", out)
        inplanes = out


# --------------------------------------------------------------------------- necks


def nasfpn_neck_specs(
    in_channels: list[int],
    width: int = 256,
    stack_times: int = 7,
    start_level: int = 1,
    num_outs: int = 5,
    prefix: str = "neck.",
    cell_conv_name: str = "out_conv",
    cell_conv_bias: bool = True,
) -> Iterator[Spec]:
    """mmdet NASFPN with ``norm_cfg=BN`` (mmdet/models/necks/nas_fpn.py, mmcv/ops/merge_cells.py).

    ``cell_conv_name``/``cell_conv_bias`` default to the mmcv merge cells (v2.1+ and v3:
    ``out_conv`` with bias); mmdetection v1.x used ``conv_out`` without bias.
    """
    backbone_end = len(in_channels)
    # lateral_convs: ConvModule(c_i, width, 1, norm_cfg=BN, act_cfg=None) -> no conv bias.
    for i, c in enumerate(in_channels[start_level:backbone_end]):
        yield from _conv_module(f"{prefix}lateral_convs.{i}.", c, width, 1, norm=True)
    # extra_downsamples: Sequential(ConvModule(width, width, 1, BN), MaxPool2d(2, 2)).
    for i in range(num_outs - backbone_end + start_level):
        yield from _conv_module(f"{prefix}extra_downsamples.{i}.0.", width, width, 1, norm=True)
    # fpn_stages: one ModuleDict per stack; cells with a conv own a 3x3 ConvModule + BN.
    for s in range(stack_times):
        for cell, has_conv in NASFPN_CELLS:
            if has_conv:
                yield from _conv_module(
                    f"{prefix}fpn_stages.{s}.{cell}.{cell_conv_name}.",
                    width,
                    width,
                    3,
                    norm=True,
                    bias=cell_conv_bias,
                )


def fpn_neck_specs(
    in_channels: list[int],
    width: int = 256,
    start_level: int = 1,
    num_outs: int = 5,
    prefix: str = "neck.",
    norm: bool = True,
    norm_on_lateral: bool = False,
    extra_on_input: bool = True,
) -> Iterator[Spec]:
    """mmdet FPN (mmdet/models/necks/fpn.py).

    Defaults are the crop640 FPN baseline: ``norm_cfg=BN``, ``no_norm_on_lateral=True``,
    ``add_extra_convs='on_input'`` (the first extra conv reads C5). For the standard RetinaNet
    FPN pass ``norm=False``.
    """
    backbone_end = len(in_channels)
    used = in_channels[start_level:backbone_end]
    # lateral_convs: 1x1, norm only if norm and not no_norm_on_lateral; bias='auto'.
    for i, c in enumerate(used):
        yield from _conv_module(
            f"{prefix}lateral_convs.{i}.", c, width, 1, norm=norm and norm_on_lateral
        )
    # fpn_convs: 3x3 output convs, then the stride-2 extra convs (P6 from C5 or P5, P7 from P6).
    for i in range(len(used)):
        yield from _conv_module(f"{prefix}fpn_convs.{i}.", width, width, 3, norm=norm)
    for e in range(num_outs - backbone_end + start_level):
        cin = in_channels[backbone_end - 1] if (e == 0 and extra_on_input) else width
        yield from _conv_module(f"{prefix}fpn_convs.{len(used) + e}.", cin, width, 3, norm=norm)


# --------------------------------------------------------------------------- heads


def retina_sepbn_head_specs(
    num_classes: int = 80,
    in_channels: int = 256,
    feat_channels: int = 256,
    stacked_convs: int = 4,
    num_ins: int = 5,
    num_anchors: int = 9,
    prefix: str = "bbox_head.",
) -> Iterator[Spec]:
    """RetinaSepBNHead with BN (mmdet/models/dense_heads/retina_sepbn_head.py).

    Every level lists its tower convs (``{cls,reg}_convs.{level}.{i}.conv.weight``) although
    levels >= 1 alias level 0's tensor; see :func:`shared_head_aliases`.
    """
    for branch in ("cls_convs", "reg_convs"):
        for lvl in range(num_ins):
            for i in range(stacked_convs):
                cin = in_channels if i == 0 else feat_channels
                yield from _conv_module(
                    f"{prefix}{branch}.{lvl}.{i}.", cin, feat_channels, 3, norm=True
                )
    yield from _conv(f"{prefix}retina_cls", feat_channels, num_anchors * num_classes, 3, bias=True)
    yield from _conv(f"{prefix}retina_reg", feat_channels, num_anchors * 4, 3, bias=True)


def retina_head_specs(
    num_classes: int = 80,
    in_channels: int = 256,
    feat_channels: int = 256,
    stacked_convs: int = 4,
    num_anchors: int = 9,
    prefix: str = "bbox_head.",
) -> Iterator[Spec]:
    """Standard RetinaHead (no norm, convs with bias, shared over levels); for sanity checks."""
    for branch in ("cls_convs", "reg_convs"):
        for i in range(stacked_convs):
            cin = in_channels if i == 0 else feat_channels
            yield from _conv_module(f"{prefix}{branch}.{i}.", cin, feat_channels, 3, norm=False)
    yield from _conv(f"{prefix}retina_cls", feat_channels, num_anchors * num_classes, 3, bias=True)
    yield from _conv(f"{prefix}retina_reg", feat_channels, num_anchors * 4, 3, bias=True)


# --------------------------------------------------------------------------- assembling


def _materialise(specs: Iterable[Spec], device: str | torch.device) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, shape, dtype in specs:
        if name in out:
            raise AssertionError(f"duplicate key {name}")
        if torch.device(device).type == "meta":
            out[name] = torch.empty(shape, dtype=dtype, device="meta")
        else:
            out[name] = torch.zeros(shape, dtype=dtype, device=device)
    return out


def mmdet_nasfpn_retinanet_state_dict(
    num_classes: int = 80,
    stack_times: int = 7,
    width: int = 256,
    depth: int = 50,
    *,
    device: str | torch.device = "meta",
    cell_conv_name: str = "out_conv",
    cell_conv_bias: bool = True,
) -> dict[str, torch.Tensor]:
    """``state_dict()`` of mmdetection's ``retinanet_r50_nasfpn_crop640_50e_coco`` model."""
    specs = [
        *resnet_backbone_specs(depth),
        *nasfpn_neck_specs(
            resnet_out_channels(depth),
            width=width,
            stack_times=stack_times,
            cell_conv_name=cell_conv_name,
            cell_conv_bias=cell_conv_bias,
        ),
        *retina_sepbn_head_specs(num_classes, in_channels=width, feat_channels=width),
    ]
    return _materialise(specs, device)


def mmdet_fpn_retinanet_state_dict(
    num_classes: int = 80,
    width: int = 256,
    depth: int = 50,
    *,
    device: str | torch.device = "meta",
) -> dict[str, torch.Tensor]:
    """``state_dict()`` of mmdetection's ``retinanet_r50_fpn_crop640_50e_coco`` model."""
    specs = [
        *resnet_backbone_specs(depth),
        *fpn_neck_specs(resnet_out_channels(depth), width=width),
        *retina_sepbn_head_specs(num_classes, in_channels=width, feat_channels=width),
    ]
    return _materialise(specs, device)


def mmdet_standard_retinanet_state_dict(
    num_classes: int = 80,
    width: int = 256,
    depth: int = 50,
    *,
    device: str | torch.device = "meta",
) -> dict[str, torch.Tensor]:
    """``retinanet_r50_fpn_1x_coco`` (plain FPN, RetinaHead): the 37.74M reference point."""
    specs = [
        *resnet_backbone_specs(depth),
        *fpn_neck_specs(resnet_out_channels(depth), width=width, norm=False),
        *retina_head_specs(num_classes, in_channels=width, feat_channels=width),
    ]
    return _materialise(specs, device)


# --------------------------------------------------------------------------- counting


def is_buffer_key(key: str) -> bool:
    """True for BatchNorm buffers (running stats, batch counter); False for parameters."""
    return key.endswith(_BUFFER_SUFFIXES)


def shared_head_aliases(state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
    """``{alias_key: canonical_key}`` for RetinaSepBNHead tower convs of levels >= 1.

    The canonical key is the level-0 key with the same branch and depth; only the conv
    weights (and biases, if any) are shared, never the BN entries.
    """
    aliases: dict[str, str] = {}
    for key in state_dict:
        m = _SHARED_HEAD_CONV.match(key)
        if m and m.group("lvl") != "0":
            canonical = f"{m.group('pre')}0{m.group('post')}{key[m.end() :]}"
            if canonical in state_dict:
                aliases[key] = canonical
    return aliases


def frozen_key(key: str, frozen_stages: int = 1) -> bool:
    """Parameters that mmdet ResNet._freeze_stages sets ``requires_grad=False``."""
    if frozen_stages < 0 or not key.startswith("backbone."):
        return False
    rest = key[len("backbone.") :]
    if rest.startswith(("conv1.", "bn1.")):
        return True
    return any(rest.startswith(f"layer{i}.") for i in range(1, frozen_stages + 1))


def mmdet_unique_parameter_count(state_dict: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(distinct parameter tensors, their total elements): what ``model.parameters()`` sees."""
    aliases = shared_head_aliases(state_dict)
    keys = [k for k in state_dict if not is_buffer_key(k) and k not in aliases]
    return len(keys), sum(state_dict[k].numel() for k in keys)


def mmdet_parameter_summary(
    state_dict: dict[str, torch.Tensor], frozen_stages: int = 1
) -> dict[str, int]:
    """Key and element counts of a synthesised state dict, per family and in total."""
    aliases = shared_head_aliases(state_dict)
    n_tensors, n_elems = mmdet_unique_parameter_count(state_dict)
    params = [k for k in state_dict if not is_buffer_key(k) and k not in aliases]
    summary = {
        "state_dict_keys": len(state_dict),
        "aliased_keys": len(aliases),
        "buffer_keys": sum(is_buffer_key(k) for k in state_dict),
        "unique_parameter_tensors": n_tensors,
        "parameter_elements": n_elems,
        "trainable_parameter_elements": sum(
            state_dict[k].numel() for k in params if not frozen_key(k, frozen_stages)
        ),
    }
    for family in ("backbone", "neck", "bbox_head"):
        summary[f"{family}_parameter_elements"] = sum(
            state_dict[k].numel() for k in params if k.startswith(family + ".")
        )
    return summary


def family_keys(state_dict: dict[str, torch.Tensor], family: str) -> list[str]:
    """Keys of one family ('backbone', 'neck' or 'bbox_head'), in state-dict order."""
    return [k for k in state_dict if k.startswith(family + ".")]


if __name__ == "__main__":  # pragma: no cover - manual inspection aid
    for fn in (
        mmdet_nasfpn_retinanet_state_dict,
        mmdet_fpn_retinanet_state_dict,
        mmdet_standard_retinanet_state_dict,
    ):
        sd = fn()
        print(fn.__name__, mmdet_parameter_summary(sd))
