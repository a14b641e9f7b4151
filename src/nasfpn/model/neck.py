"""Feature-pyramid necks: NAS-FPN built from any genotype, and mmdetection's crop640 FPN.

The NAS-FPN neck interprets a :class:`~nasfpn.space.Genotype` with one generic loop (the way
tensorflow/tpu ``nasfpn.py`` interprets its block specs); nothing here knows the published cell.
The two reference implementations differ in small ways that change results; they are named
variants (docs/architecture.md, section "variants"):

* ``mmdet`` (default): mmdetection ``NASFPN`` with mmcv ``merge_cells`` — the 40.5 AP model.
* ``tf``: the paper authors' tensorflow/tpu ``nasfpn.py``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nasfpn.model import layers
from nasfpn.space import Genotype


@dataclass(frozen=True)
class NeckVariant:
    """Where mmdetection and tensorflow/tpu build the same genotype differently."""

    name: str
    # "avg_fine": fine + coarse * sigmoid(avgpool(fine))  (mmcv GlobalPoolingCell)
    # "max_coarse": coarse + fine * sigmoid(maxpool(coarse))  (tpu _global_attention)
    global_pool: str
    # P6/P7 from the projected P5: "conv_bn_pool" (1x1 conv + BN, then 2x2 max pool) or "pool"
    extra_levels: str
    lateral_bias: bool
    cell_conv_bias: bool
    bn_momentum: float  # PyTorch convention: weight of the new batch statistic
    bn_eps: float
    # value that pads a map before a max-pool downsample when sizes do not divide
    pool_pad_value: float
    # conv initialisation: "caffe2_xavier" (mmcv Caffe2XavierInit) or "glorot_uniform" (Keras)
    conv_init: str


VARIANTS: dict[str, NeckVariant] = {
    "mmdet": NeckVariant(
        name="mmdet",
        global_pool="avg_fine",
        extra_levels="conv_bn_pool",
        lateral_bias=False,
        cell_conv_bias=True,
        bn_momentum=0.1,
        bn_eps=1e-5,
        pool_pad_value=0.0,  # mmcv BaseMergeCell._resize pads with zeros
        conv_init="caffe2_xavier",
    ),
    "tf": NeckVariant(
        name="tf",
        global_pool="max_coarse",
        extra_levels="pool",
        lateral_bias=True,
        cell_conv_bias=True,
        bn_momentum=1 - 0.997,  # TF momentum 0.997 is the weight of the running average
        bn_eps=1e-4,
        pool_pad_value=-math.inf,  # TF 'SAME' max pooling ignores padded positions
        conv_init="glorot_uniform",
    ),
}


def get_variant(name: str) -> NeckVariant:
    if name not in VARIANTS:
        raise ValueError(
            f"neck variant {name!r} is unknown; choose one of {sorted(VARIANTS)} "
            "('mmdet' reproduces the 40.5 AP model, 'tf' the paper authors' code)"
        )
    return VARIANTS[name]


def resize_to(x: Tensor, size: tuple[int, int], pad_value: float = 0.0) -> Tensor:
    """Bring ``x`` to spatial ``size``: nearest upsampling, or max pooling by the size ratio.

    Follows mmcv ``BaseMergeCell._resize``: a map that does not divide by the target size is
    padded (split evenly, the extra row/column at the end) up to the next multiple before
    pooling, so odd input sizes never raise. Upsampling goes to the explicit size.
    """
    h, w = x.shape[-2:]
    th, tw = size
    if (h, w) == (th, tw):
        return x
    if h <= th and w <= tw:
        return F.interpolate(x, size=(th, tw), mode="nearest")
    if h < th or w < tw:
        # mixed directions only happen with degenerate 1-pixel maps; pool then upsample
        x = resize_to(x, (min(h, th), min(w, tw)), pad_value)
        return F.interpolate(x, size=(th, tw), mode="nearest")
    pad_h = math.ceil(h / th) * th - h
    pad_w = math.ceil(w / tw) * tw - w
    if pad_h or pad_w:
        pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        x = F.pad(x, pad, value=pad_value)
    kernel = (x.shape[-2] // th, x.shape[-1] // tw)
    return F.max_pool2d(x, kernel_size=kernel, stride=kernel)


def _conv_bn(
    in_ch: int,
    out_ch: int,
    kernel: int,
    bias: bool,
    variant: NeckVariant,
    stride: int = 1,
    separable: bool = False,
) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            conv=layers.conv(in_ch, out_ch, kernel, stride, bias, separable),
            bn=nn.BatchNorm2d(out_ch, eps=variant.bn_eps, momentum=variant.bn_momentum),
        )
    )


class MergingCellOutput(nn.Module):
    """The part of a merging cell that has weights: ReLU -> 3x3 conv -> BN (paper section 3);
    the conv depthwise-separable in the mobile pyramids (NAS-FPNLite)."""

    def __init__(self, width: int, variant: NeckVariant, separable: bool = False) -> None:
        super().__init__()
        self.conv = layers.conv(width, width, 3, bias=variant.cell_conv_bias, separable=separable)
        self.bn = nn.BatchNorm2d(width, eps=variant.bn_eps, momentum=variant.bn_momentum)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(F.relu(x)))


class NASFPNNeck(nn.Module):
    """Backbone maps -> lateral projections (+ extra coarse levels) -> N repeats of the genotype.

    Each repeat has its own weights; the outputs of repeat ``k`` are the inputs of repeat
    ``k + 1`` (docs section 3). Returns the pyramid as a list ordered from the finest level.
    With ``return_repeats=True`` the forward also returns every repeat's pyramid (for deeply
    supervised anytime detection, paper section 3.2).
    """

    def __init__(
        self,
        genotype: Genotype,
        in_channels: dict[int, int],
        width: int = 256,
        repeats: int = 7,
        variant: str | NeckVariant = "mmdet",
        separable: bool = False,
    ) -> None:
        super().__init__()
        genotype.validate()
        if repeats < 1:
            raise ValueError(f"repeats={repeats!r}: the pyramid must be repeated at least once")
        self.variant = get_variant(variant) if isinstance(variant, str) else variant
        self.levels = genotype.levels
        self.width = width
        self.repeats = repeats
        self.separable = separable
        backbone_levels = [lvl for lvl in self.levels if lvl in in_channels]
        if not backbone_levels or backbone_levels != list(self.levels[: len(backbone_levels)]):
            raise ValueError(
                f"the genotype's levels {self.levels} need backbone maps from level "
                f"{self.levels[0]} on, but the backbone gives levels {sorted(in_channels)}"
            )
        self.backbone_levels = tuple(backbone_levels)
        v = self.variant
        self.lateral = nn.ModuleList(
            _conv_bn(in_channels[lvl], width, 1, v.lateral_bias, v) for lvl in backbone_levels
        )
        n_extra = len(self.levels) - len(backbone_levels)
        self.extra = (
            nn.ModuleList(_conv_bn(width, width, 1, False, v) for _ in range(n_extra))
            if v.extra_levels == "conv_bn_pool"
            else nn.ModuleList()
        )
        self.n_extra = n_extra
        self._use(genotype)
        self.repeat_cells = nn.ModuleList(
            nn.ModuleList(MergingCellOutput(width, v, separable) for _ in self.plans)
            for _ in range(repeats)
        )
        self.reset_parameters()

    def _use(self, genotype: Genotype) -> None:
        self.genotype = genotype
        self.plans = genotype.trace()
        self.output_nodes = tuple(genotype.output_nodes().values())

    def set_genotype(self, genotype: Genotype) -> None:
        """Run ``genotype`` on these weights from now on (weight sharing, :mod:`nasfpn.supernet`).

        A merging cell's weights (ReLU, 3x3 conv, BN at the pyramid's width) have the same
        shapes whatever its inputs, level and operation, so any genotype with as many cells and
        the same levels runs here: cell ``k`` of every repeat keeps its own weights.
        """
        genotype.validate()
        cells = len(self.repeat_cells[0])
        if len(genotype.cells) != cells or genotype.levels != self.levels:
            raise ValueError(
                f"a genotype of {len(genotype.cells)} cells over levels {genotype.levels} "
                f"cannot run on this neck of {cells} cells over levels {self.levels}"
            )
        self._use(genotype)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if self.variant.conv_init == "caffe2_xavier":
                    # mmcv Caffe2XavierInit: kaiming uniform, a=1, fan_in, leaky_relu
                    nn.init.kaiming_uniform_(
                        m.weight, a=1, mode="fan_in", nonlinearity="leaky_relu"
                    )
                else:
                    nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _inputs(self, feats: dict[int, Tensor]) -> list[Tensor]:
        maps = [lat(feats[lvl]) for lvl, lat in zip(self.backbone_levels, self.lateral)]
        for i in range(self.n_extra):
            x = self.extra[i](maps[-1]) if self.extra else maps[-1]
            # ceil_mode keeps a 1-pixel map at 1 pixel: same result as a 2x2 pool on even sizes
            maps.append(F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True))
        return maps

    def _merge(self, a: Tensor, b: Tensor, level_a: int, level_b: int, op: str) -> Tensor:
        if op == "sum":
            return a + b
        # global_pool: the coarser input (input_a on a tie) is "coarse", the other "fine"
        coarse, fine = (a, b) if level_a >= level_b else (b, a)
        if self.variant.global_pool == "avg_fine":
            return fine + coarse * torch.sigmoid(fine.mean(dim=(2, 3), keepdim=True))
        return coarse + fine * torch.sigmoid(coarse.amax(dim=(2, 3), keepdim=True))

    def _pyramid(self, maps: list[Tensor], cells: nn.ModuleList) -> list[Tensor]:
        node_levels = self.genotype.node_levels()
        sizes = {lvl: tuple(m.shape[-2:]) for lvl, m in zip(self.levels, maps)}
        pad = self.variant.pool_pad_value
        nodes = list(maps)
        for plan, out in zip(self.plans, cells):
            cell = plan.cell
            size = sizes[cell.level]
            a = resize_to(nodes[cell.input_a], size, pad)
            b = resize_to(nodes[cell.input_b], size, pad)
            x = self._merge(a, b, node_levels[cell.input_a], node_levels[cell.input_b], cell.op)
            for j in plan.absorbs:  # unconnected nodes at this level (same size)
                x = x + nodes[j]
            nodes.append(out(x))
        return [nodes[n] for n in self.output_nodes]

    def forward(
        self, feats: dict[int, Tensor], return_repeats: bool = False
    ) -> list[Tensor] | tuple[list[Tensor], list[list[Tensor]]]:
        maps = self._inputs(feats)
        per_repeat = []
        for cells in self.repeat_cells:
            maps = self._pyramid(maps, cells)
            per_repeat.append(maps)
        return (maps, per_repeat) if return_repeats else maps


class FPNNeck(nn.Module):
    """mmdetection's FPN as configured for the crop640 baseline (R-50-FPN, 37.9 AP).

    ``FPN(start_level=1, add_extra_convs='on_input', relu_before_extra_convs=True,
    no_norm_on_lateral=True, norm_cfg=BN)``: 1x1 laterals with bias and no norm, top-down
    nearest upsampling to the explicit size, 3x3 output convs without bias + BN, and P6/P7 by
    stride-2 3x3 conv + BN from C5 and from ReLU(P6).

    ``separable=True`` makes its 3x3 convs depthwise-separable: FPNLite, the mobile baseline of
    paper Table 1 (the TF Object Detection API's FPNLite builds the same top-down pathway; it
    takes its extra levels from the top output rather than from C5, and uses ReLU6).
    """

    def __init__(
        self,
        in_channels: dict[int, int],
        width: int = 256,
        levels: tuple[int, ...] = (3, 4, 5, 6, 7),
        separable: bool = False,
    ) -> None:
        super().__init__()
        self.levels = tuple(levels)
        self.backbone_levels = tuple(lvl for lvl in self.levels if lvl in in_channels)
        variant = VARIANTS["mmdet"]  # PyTorch BN defaults
        self.lateral = nn.ModuleList(
            nn.Sequential(OrderedDict(conv=nn.Conv2d(in_channels[lvl], width, 1)))
            for lvl in self.backbone_levels
        )
        self.output = nn.ModuleList(
            _conv_bn(width, width, 3, False, variant, separable=separable)
            for _ in self.backbone_levels
        )
        n_extra = len(self.levels) - len(self.backbone_levels)
        top = in_channels[self.backbone_levels[-1]]
        self.extra = nn.ModuleList(
            _conv_bn(top if i == 0 else width, width, 3, False, variant, 2, separable)
            for i in range(n_extra)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # mmdet FPN: Xavier, uniform distribution
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, feats: dict[int, Tensor]) -> list[Tensor]:
        laterals = [lat(feats[lvl]) for lvl, lat in zip(self.backbone_levels, self.lateral)]
        for i in range(len(laterals) - 1, 0, -1):
            up = F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest")
            laterals[i - 1] = laterals[i - 1] + up
        outs = [conv(x) for conv, x in zip(self.output, laterals)]
        x = feats[self.backbone_levels[-1]]  # 'on_input': P6 from C5
        for i, conv in enumerate(self.extra):
            x = conv(x if i == 0 else F.relu(x))
            outs.append(x)
        return outs
