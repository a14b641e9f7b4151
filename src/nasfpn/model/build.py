"""Build a RetinaNet from a model configuration and a genotype (or the FPN baseline)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nasfpn import space
from nasfpn.model.anchors import AnchorSpec
from nasfpn.model.backbone import ResNet, load_pretrained
from nasfpn.model.head import SepBNHead
from nasfpn.model.neck import FPNNeck, NASFPNNeck, get_variant
from nasfpn.model.retinanet import LossSettings, RetinaNet, TestSettings
from nasfpn.space import Genotype

FPN = "fpn"


@dataclass(frozen=True)
class ModelConfig:
    """Everything that shapes the detector. Defaults: R-50 NAS-FPN 7@256 (docs section 5)."""

    backbone: str = "resnet50"
    pretrained: str | None = None  # local torchvision-format checkpoint of the backbone
    frozen_stages: int = 1
    norm: str = "trainable"  # backbone BN: trainable | frozen | sync
    repeats: int = 7
    width: int = 256
    variant: str = "mmdet"
    num_classes: int | None = 80  # None: a trainer fills in its data's category count
    head_convs: int = 4
    anchors: AnchorSpec = field(default_factory=AnchorSpec)
    loss: LossSettings = field(default_factory=LossSettings)
    test: TestSettings = field(default_factory=TestSettings)


def backbone_depth(name: str) -> int:
    """``resnet50`` -> 50, with a clear error for anything else."""
    from nasfpn.model.backbone import RESNET_SPECS

    choices = [f"resnet{d}" for d in RESNET_SPECS]
    if not name.startswith("resnet") or not name[6:].isdigit() or int(name[6:]) not in RESNET_SPECS:
        raise ValueError(f"backbone {name!r} is unknown; choose one of {choices}")
    return int(name[6:])


def resolve_arch(arch: str | Path | Genotype) -> Genotype | None:
    """A genotype, a built-in name, a genotype JSON path, or ``fpn`` (returns ``None``)."""
    if isinstance(arch, Genotype):
        return arch
    if str(arch) == FPN:
        return None
    return space.get_genotype(str(arch))


def build_retinanet(arch: str | Path | Genotype, cfg: ModelConfig | None = None) -> RetinaNet:
    """RetinaNet with a NAS-FPN neck for ``arch`` (or mmdetection's crop640 FPN for ``fpn``)."""
    cfg = cfg or ModelConfig()
    if cfg.num_classes is None:
        raise ValueError(
            "num_classes=None: build the model with the dataset's number of categories "
            "(nasfpn retrain fills it in from the training annotations), e.g. num_classes=80"
        )
    genotype = resolve_arch(arch)
    levels = genotype.levels if genotype is not None else (3, 4, 5, 6, 7)
    backbone = ResNet(
        depth=backbone_depth(cfg.backbone),
        frozen_stages=cfg.frozen_stages,
        norm=cfg.norm,
        out_levels=tuple(lvl for lvl in levels if lvl <= 5),
    )
    if cfg.pretrained:
        load_pretrained(backbone, cfg.pretrained)
    if genotype is None:
        neck = FPNNeck(backbone.channels, width=cfg.width, levels=levels)
        bn_eps, bn_momentum = 1e-5, 0.1
    else:
        neck = NASFPNNeck(genotype, backbone.channels, cfg.width, cfg.repeats, cfg.variant)
        variant = get_variant(cfg.variant)
        bn_eps, bn_momentum = variant.bn_eps, variant.bn_momentum
    if len(cfg.anchors.strides) != len(levels):
        raise ValueError(
            f"anchor strides {cfg.anchors.strides} must give one stride per pyramid level {levels}"
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
    )
    return RetinaNet(backbone, neck, head, cfg.anchors, cfg.loss, cfg.test)
