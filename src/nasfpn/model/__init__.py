"""RetinaNet detectors with a NAS-FPN neck built from a genotype, or the FPN baseline."""

from nasfpn.model.anchors import AnchorSpec
from nasfpn.model.backbone import BackboneWeightsError, MobileNetV2, ResNet, load_pretrained
from nasfpn.model.build import FPN, FPNLITE, ModelConfig, build_retinanet, resolve_arch
from nasfpn.model.head import SepBNHead
from nasfpn.model.neck import VARIANTS, FPNNeck, NASFPNNeck, NeckVariant
from nasfpn.model.retinanet import LossSettings, RetinaNet, TestSettings
from nasfpn.model.summary import count_flops, count_parameters, parameter_breakdown

__all__ = [
    "FPN",
    "FPNLITE",
    "VARIANTS",
    "AnchorSpec",
    "BackboneWeightsError",
    "FPNNeck",
    "LossSettings",
    "MobileNetV2",
    "ModelConfig",
    "NASFPNNeck",
    "NeckVariant",
    "ResNet",
    "RetinaNet",
    "SepBNHead",
    "TestSettings",
    "build_retinanet",
    "count_flops",
    "count_parameters",
    "load_pretrained",
    "parameter_breakdown",
    "resolve_arch",
]
