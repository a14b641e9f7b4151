"""Backbones that return the C2..C5 feature maps: ResNets and MobileNetV2.

The layers keep torchvision's names (ResNet: ``conv1``, ``bn1``, ``layer1`` .. ``layer4``;
MobileNetV2: ``features.0`` .. ``features.18``), so an ImageNet checkpoint in torchvision's
format loads as is and mmdetection's ResNet keys map one to one. ResNet-10 (basic blocks
``[1, 1, 1, 1]``) is the proxy-task backbone of paper section 4; MobileNetV2 that of the mobile
detectors (NAS-FPNLite, paper Table 1).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.mobilenetv2 import MobileNetV2 as _TorchvisionMobileNetV2
from torchvision.models.resnet import BasicBlock, Bottleneck

# depth -> (block, blocks per stage)
RESNET_SPECS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}
NORM_MODES = ("trainable", "frozen", "sync")
BACKBONES = (*(f"resnet{d}" for d in RESNET_SPECS), "mobilenet_v2")


class BackboneWeightsError(ValueError):
    """Pretrained backbone weights that are missing or do not fit the backbone."""


class FeatureBackbone(nn.Module):
    """What the backbones share: ``channels`` (level -> channels of C2..C5), ``out_levels``, the
    freezing of their first stages and of BN (``norm``), and what their weights are called."""

    name: str  # in messages: "ResNet-50", "MobileNetV2"
    classifier_prefix: str  # the ImageNet classifier's keys in a torchvision checkpoint
    channels: dict[int, int]
    out_levels: tuple[int, ...]
    norm: str

    @property
    def out_channels(self) -> tuple[int, ...]:
        return tuple(self.channels[lvl] for lvl in self.out_levels)

    def _frozen_modules(self) -> list[nn.Module]:
        raise NotImplementedError

    def unused_key(self, key: str) -> bool:
        """Whether a key of the ImageNet network's checkpoint is one this backbone leaves out
        (its classifier)."""
        return key.startswith(self.classifier_prefix)

    def _finish(self) -> None:
        """After the layers are built: SyncBatchNorm if asked, then the freezing."""
        if self.norm == "sync":
            # Replaces the BN children in place and keeps the state-dict keys. SyncBatchNorm
            # needs a process group when it trains (torchrun or Ray Train set one up).
            nn.SyncBatchNorm.convert_sync_batchnorm(self)
        for module in self._frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)
        if self.norm == "frozen":
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    for p in m.parameters():
                        p.requires_grad_(False)

    def train(self, mode: bool = True) -> FeatureBackbone:
        super().train(mode)
        if mode:
            for module in self._frozen_modules():
                module.eval()
            if self.norm == "frozen":
                for m in self.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.eval()
        return self


def _check_settings(norm: str, frozen_stages: int, out_levels: tuple[int, ...]) -> None:
    if norm not in NORM_MODES:
        raise ValueError(f"backbone norm {norm!r} is unknown; choose one of {NORM_MODES}")
    if not 0 <= frozen_stages <= 4:
        raise ValueError(f"frozen_stages={frozen_stages!r} must be between 0 and 4")
    if not out_levels or min(out_levels) < 2 or max(out_levels) > 5:
        raise ValueError(
            f"backbone out_levels {out_levels!r} must lie in 2..5 (C2..C5, strides 4..32)"
        )


class ResNet(FeatureBackbone):
    """A torchvision-style ResNet without its classifier, returning ``{level: feature}``.

    ``frozen_stages``: 0 freezes nothing, 1 the stem and ``layer1`` (mmdetection's default for
    the crop640 recipe), k the stem and ``layer1..layerk``. Frozen parts have no gradients and
    their BN layers stay in eval mode whatever ``train()`` says.
    ``norm``: ``trainable`` (BN with batch statistics everywhere not frozen), ``frozen`` (every
    BN in eval mode with fixed affine parameters: mmdetection's ``norm_eval=True``), or ``sync``
    (``SyncBatchNorm``; it needs a process group at training time).
    """

    def __init__(
        self,
        depth: int = 50,
        frozen_stages: int = 1,
        norm: str = "trainable",
        out_levels: tuple[int, ...] = (3, 4, 5),
        zero_init_residual: bool = True,
    ) -> None:
        super().__init__()
        if depth not in RESNET_SPECS:
            raise ValueError(
                f"ResNet depth {depth!r} is not supported; choose one of {sorted(RESNET_SPECS)}"
            )
        _check_settings(norm, frozen_stages, out_levels)
        block, layers = RESNET_SPECS[depth]
        self.depth = depth
        self.name, self.classifier_prefix = f"ResNet-{depth}", "fc."
        self.frozen_stages = frozen_stages
        self.norm = norm
        self.out_levels = tuple(sorted(out_levels))

        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes = 64
        self.layer1 = self._make_layer(block, 64, layers[0], stride=1)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        expansion = block.expansion
        # channels of C2..C5
        self.channels = {lvl: 64 * 2 ** (lvl - 2) * expansion for lvl in range(2, 6)}
        self._init_weights(zero_init_residual)
        self._finish()

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        modules = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        modules += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # torchvision's ResNet initialisation; zero-initialised last BN of each residual branch
        # as mmdetection's ResNet does by default (it only matters when training from scratch,
        # as the proxy task does).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _frozen_modules(self) -> list[nn.Module]:
        stages = [nn.ModuleList([self.conv1, self.bn1])] if self.frozen_stages >= 1 else []
        stages += [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]
        return stages

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = {}
        for level, layer in zip(range(2, 6), (self.layer1, self.layer2, self.layer3, self.layer4)):
            x = layer(x)
            if level in self.out_levels:
                feats[level] = x
            if level >= self.out_levels[-1]:
                break
        return feats


# MobileNetV2: the last layer of ``features`` at each level, as the TF Object Detection API's
# FPNLite feature extractor taps it (layer_4, layer_7, layer_14, layer_19: the expansion-free
# block outputs at strides 4, 8, 16 and the final 1x1 conv to 1280 at stride 32)
MOBILENET_V2_TAPS = {2: 3, 3: 6, 4: 13, 5: 18}
MOBILENET_V2_CHANNELS = {2: 24, 3: 32, 4: 96, 5: 1280}


class MobileNetV2(FeatureBackbone):
    """torchvision's MobileNetV2 (width multiplier 1.0) without its classifier, returning
    ``{level: feature}``: C3 = ``features[6]`` (32 channels), C4 = ``features[13]`` (96),
    C5 = ``features[18]`` (1280), the taps of FPNLite (and C2 = ``features[3]``, 24).

    ``frozen_stages`` k freezes ``features`` up to C(k+1)'s tap (1: the stem and the stride-4
    blocks, as a ResNet's 1 freezes its stem and ``layer1``). ``norm`` as for :class:`ResNet`.
    Initialised as torchvision initialises it; ImageNet weights in torchvision's format load with
    :func:`load_pretrained`.
    """

    def __init__(
        self,
        frozen_stages: int = 0,
        norm: str = "trainable",
        out_levels: tuple[int, ...] = (3, 4, 5),
    ) -> None:
        super().__init__()
        _check_settings(norm, frozen_stages, out_levels)
        self.name, self.classifier_prefix = "MobileNetV2", "classifier."
        self.frozen_stages, self.norm = frozen_stages, norm
        self.out_levels = tuple(sorted(out_levels))
        self.channels = dict(MOBILENET_V2_CHANNELS)
        # only the layers up to the deepest level asked for: C5 needs all 19
        last = MOBILENET_V2_TAPS[self.out_levels[-1]]
        self.features = _TorchvisionMobileNetV2().features[: last + 1]
        self._finish()

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages == 0:
            return []
        last = MOBILENET_V2_TAPS[self.frozen_stages + 1]
        return list(self.features[: last + 1])

    def unused_key(self, key: str) -> bool:
        """The classifier, and the layers after the deepest level this backbone was built for."""
        head, _, rest = key.partition(".")
        if head == "features" and rest.split(".")[0].isdigit():
            return int(rest.split(".")[0]) >= len(self.features)
        return super().unused_key(key)

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        taps = {MOBILENET_V2_TAPS[lvl]: lvl for lvl in self.out_levels}
        feats = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in taps:
                feats[taps[i]] = x
        return feats


def build_backbone(
    name: str, frozen_stages: int = 1, norm: str = "trainable", out_levels=(3, 4, 5)
) -> FeatureBackbone:
    """``resnet10`` .. ``resnet101`` or ``mobilenet_v2``, with a clear error for anything else."""
    if name == "mobilenet_v2":
        return MobileNetV2(frozen_stages, norm, tuple(out_levels))
    if name.startswith("resnet") and name[6:].isdigit() and int(name[6:]) in RESNET_SPECS:
        return ResNet(int(name[6:]), frozen_stages, norm, tuple(out_levels))
    raise ValueError(f"backbone {name!r} is unknown; choose one of {list(BACKBONES)}")


def load_pretrained(backbone: FeatureBackbone, path: str | Path) -> None:
    """Load ImageNet weights saved in torchvision's format (``resnet50-*.pth``,
    ``mobilenet_v2-*.pth``) from a local file.

    The classifier (``fc.*``, ``classifier.*``) is ignored, and so are a MobileNetV2's layers
    beyond the deepest level it was built for; every other key must match in name and shape.
    Nothing is downloaded.
    """
    path = Path(path)
    if not path.is_file():
        raise BackboneWeightsError(
            f"pretrained backbone weights {str(path)!r} do not exist; download torchvision's "
            f"{backbone.name} ImageNet checkpoint on a machine with internet, copy it "
            "here and pass its path, or set the model's pretrained path to null to train from "
            "scratch"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt or non-torch file
        raise BackboneWeightsError(
            f"could not read {str(path)!r} as a torch checkpoint ({err}); expected a state dict "
            f"saved with torch.save, in torchvision's {backbone.name} format"
        ) from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BackboneWeightsError(
            f"{str(path)!r} holds a {type(state).__name__}, expected a state dict (name -> tensor)"
        )
    state = {k: v for k, v in state.items() if not backbone.unused_key(k)}
    own = backbone.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in own)
    wrong = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    )
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys (first: {missing[:3]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys (first: {unexpected[:3]})")
        if wrong:
            problems.append(f"{len(wrong)} shape mismatches (first: {wrong[:3]})")
        raise BackboneWeightsError(
            f"{str(path)!r} does not fit a {backbone.name}: "
            + "; ".join(problems)
            + f". Use torchvision's {backbone.name} ImageNet checkpoint for this backbone."
        )
    backbone.load_state_dict(state, strict=False)
