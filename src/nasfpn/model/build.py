"""Build a RetinaNet from a model configuration and a genotype (or the FPN / FPNLite baseline)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from nasfpn import space
from nasfpn.model.anchors import AnchorSpec
from nasfpn.model.backbone import build_backbone, load_pretrained
from nasfpn.model.head import SepBNHead
from nasfpn.model.neck import FPNNeck, NASFPNNeck, get_variant
from nasfpn.model.retinanet import LossSettings, RetinaNet, TestSettings
from nasfpn.space import Genotype

FPN = "fpn"
FPNLITE = "fpnlite"  # the FPN baseline with separable convs (separable=True)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that shapes the detector. Defaults: R-50 NAS-FPN 7@256 (docs section 5)."""

    backbone: str = "resnet50"  # resnet10|18|34|50|101 or mobilenet_v2
    pretrained: str | None = None  # local torchvision-format checkpoint of the backbone
    frozen_stages: int = 1
    norm: str = "trainable"  # backbone BN: trainable | frozen | sync
    repeats: int = 7
    width: int = 256
    variant: str = "mmdet"
    num_classes: int | None = 80  # None: a trainer fills in its data's category count
    head_convs: int = 4
    # depthwise-separable 3x3 convs in the merging cells, the FPN and the head (the mobile
    # detectors of paper Table 1: NAS-FPNLite, FPNLite)
    separable: bool = False
    anchors: AnchorSpec = field(default_factory=AnchorSpec)
    loss: LossSettings = field(default_factory=LossSettings)
    test: TestSettings = field(default_factory=TestSettings)


def resolve_arch(arch: str | Path | Genotype) -> Genotype | None:
    """A genotype, a built-in name, a genotype JSON path, or ``fpn`` (returns ``None``; FPNLite
    is ``fpn`` with the model's ``separable`` set)."""
    if isinstance(arch, Genotype):
        return arch
    if str(arch) == FPN:
        return None
    return space.get_genotype(str(arch))


def build_retinanet(arch: str | Path | Genotype, cfg: ModelConfig | None = None) -> RetinaNet:
    """RetinaNet with a NAS-FPN neck for ``arch`` (or mmdetection's crop640 FPN for ``fpn``;
    ``fpnlite`` is that FPN with ``separable`` set). The FPN's levels are those of
    ``cfg.anchors.strides`` (P3-P7 by default; P3-P6 with four strides)."""
    cfg = cfg or ModelConfig()
    if str(arch) == FPNLITE:
        cfg = replace(cfg, separable=True)
    if cfg.num_classes is None:
        raise ValueError(
            "num_classes=None: build the model with the dataset's number of categories "
            "(nasfpn retrain fills it in from the training annotations), e.g. num_classes=80"
        )
    genotype = None if str(arch) == FPNLITE else resolve_arch(arch)
    levels = genotype.levels if genotype is not None else fpn_levels(cfg.anchors.strides)
    backbone = build_backbone(
        cfg.backbone,
        frozen_stages=cfg.frozen_stages,
        norm=cfg.norm,
        out_levels=tuple(lvl for lvl in levels if lvl <= 5),
    )
    if cfg.pretrained:
        load_pretrained(backbone, cfg.pretrained)
    if genotype is None:
        neck = FPNNeck(backbone.channels, width=cfg.width, levels=levels, separable=cfg.separable)
        bn_eps, bn_momentum = 1e-5, 0.1
    else:
        neck = NASFPNNeck(genotype, backbone.channels, cfg.width, cfg.repeats, cfg.variant,
                          separable=cfg.separable)  # fmt: skip
        variant = get_variant(cfg.variant)
        bn_eps, bn_momentum = variant.bn_eps, variant.bn_momentum
    if len(cfg.anchors.strides) != len(levels):
        raise ValueError(
            f"anchor strides {cfg.anchors.strides} must give one stride per pyramid level "
            f"{levels}; set model.anchors.strides={[2**lvl for lvl in levels]}"
        )
    head = SepBNHead(
        num_classes=cfg.num_classes,
        num_anchors=cfg.anchors.num_anchors,
        num_levels=len(levels),
        in_channels=cfg.width,
        feat_channels=cfg.width,
        stacked_convs=cfg.head_convs,
        bn_eps=bn_eps,
        bn_momentum=bn_momentum,
        separable=cfg.separable,
    )
    return RetinaNet(backbone, neck, head, cfg.anchors, cfg.loss, cfg.test)


def fpn_levels(strides: tuple[int, ...]) -> tuple[int, ...]:
    """The pyramid levels of anchor strides ``(8, 16, ...)``: 8 is P3, doubling per level."""
    levels = []
    for stride in strides:
        level = stride.bit_length() - 1
        if stride < 1 or 2**level != stride:
            raise ValueError(f"anchor stride {stride} is not a power of two (P3 has stride 8)")
        levels.append(level)
    if levels[0] < 2 or levels != list(range(levels[0], levels[0] + len(levels))):
        raise ValueError(
            f"anchor strides {strides} must double from level to level, from stride 4 or more "
            "(8, 16, 32, 64, 128 for P3-P7)"
        )
    return tuple(levels)
