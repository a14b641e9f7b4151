"""The mobile detectors' parts: MobileNetV2's features, separable convs in the cells, the FPN
(FPNLite) and the head, and `nasfpn inspect` on them."""

from __future__ import annotations

import json
import random

import pytest
import torch
import torchvision
from torch import nn

from nasfpn.cli import main
from nasfpn.model import (
    FPNLITE,
    BackboneWeightsError,
    MobileNetV2,
    ModelConfig,
    NASFPNNeck,
    build_retinanet,
    load_pretrained,
)
from nasfpn.model.anchors import AnchorSpec
from nasfpn.model.build import fpn_levels
from nasfpn.model.layers import SeparableConv2d
from nasfpn.space import NASFPN, SearchSpace
from nasfpn.space.serialize import to_json

MOBILE_SPACE = SearchSpace(min_level=3, max_level=6, num_cells=6)


def test_mobilenet_v2_gives_the_fpnlite_taps_at_their_strides() -> None:
    backbone = MobileNetV2(out_levels=(2, 3, 4, 5)).eval()
    with torch.no_grad():
        feats = backbone(torch.zeros(1, 3, 320, 320))
    assert {lvl: tuple(f.shape[1:]) for lvl, f in feats.items()} == {
        2: (24, 80, 80), 3: (32, 40, 40), 4: (96, 20, 20), 5: (1280, 10, 10),
    }  # fmt: skip
    assert backbone.out_channels == (24, 32, 96, 1280)
    # the same maps as torchvision's own network at those layers
    reference = torchvision.models.mobilenet_v2().eval()
    reference.load_state_dict(backbone.state_dict(), strict=False)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        ours = backbone(x)
        y = x
        for i, layer in enumerate(reference.features):
            y = layer(y)
            if i in (3, 6, 13, 18):
                torch.testing.assert_close(ours[{3: 2, 6: 3, 13: 4, 18: 5}[i]], y)


def test_a_backbone_built_to_c4_stops_there_and_freezing_follows_the_stages() -> None:
    short = MobileNetV2(out_levels=(3, 4))
    assert len(short.features) == 14 and set(short(torch.zeros(1, 3, 64, 64))) == {3, 4}
    frozen = MobileNetV2(frozen_stages=1)
    trainable = [p.requires_grad for layer in frozen.features for p in layer.parameters()]
    assert not any(p.requires_grad for p in frozen.features[:4].parameters())
    assert all(p.requires_grad for p in frozen.features[4:].parameters()) and any(trainable)
    frozen.train()
    assert not frozen.features[0].training and frozen.features[4].training


def test_torchvision_weights_load_locally_and_a_wrong_file_is_named(tmp_path) -> None:
    source = torchvision.models.mobilenet_v2()
    path = tmp_path / "mobilenet_v2-imagenet.pth"
    torch.save(source.state_dict(), path)  # torchvision's format, classifier included
    backbone = MobileNetV2(out_levels=(3, 4))  # layers after C4 in the file are left out
    load_pretrained(backbone, path)
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, source.state_dict()[key])
    resnet = torchvision.models.resnet18()
    torch.save(resnet.state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(BackboneWeightsError, match="does not fit a MobileNetV2"):
        load_pretrained(MobileNetV2(), tmp_path / "resnet18.pth")
    with pytest.raises(BackboneWeightsError, match="torchvision's MobileNetV2 ImageNet"):
        load_pretrained(MobileNetV2(), tmp_path / "missing.pth")


def test_a_separable_conv_has_the_shapes_of_a_dense_one_and_fewer_weights() -> None:
    sep = SeparableConv2d(48, 48, 3)
    assert sum(p.numel() for p in sep.parameters()) == 48 * 9 + 48 * 48 + 48
    x = torch.randn(2, 48, 10, 10)
    assert sep(x).shape == nn.Conv2d(48, 48, 3, padding=1)(x).shape
    assert SeparableConv2d(48, 64, 3, stride=2)(x).shape == (2, 64, 5, 5)


def test_separable_cells_run_any_genotype_of_the_mobile_space() -> None:
    channels = {3: 32, 4: 96, 5: 1280}
    first, second = (MOBILE_SPACE.decode(MOBILE_SPACE.sample(random.Random(s))) for s in (0, 1))
    neck = NASFPNNeck(first, channels, width=48, repeats=3, separable=True).eval()
    dense = NASFPNNeck(first, channels, width=48, repeats=3)
    cells = [m for m in neck.modules() if isinstance(m, SeparableConv2d)]
    assert len(cells) == 3 * 6  # every merging cell's 3x3 conv, nothing else
    assert sum(p.numel() for p in neck.parameters()) < sum(p.numel() for p in dense.parameters())
    feats = {3: torch.randn(1, 32, 40, 40), 4: torch.randn(1, 96, 20, 20),
             5: torch.randn(1, 1280, 10, 10)}  # fmt: skip
    with torch.no_grad():
        out = neck(feats)
        assert [tuple(o.shape) for o in out] == [(1, 48, s, s) for s in (40, 20, 10, 5)]
        neck.set_genotype(second)  # weight sharing works the same on separable cells
        assert [tuple(o.shape) for o in neck(feats)] == [tuple(o.shape) for o in out]


def test_mobile_detectors_build_and_detect() -> None:
    a4 = AnchorSpec(strides=(8, 16, 32, 64))
    genotype = MOBILE_SPACE.decode(MOBILE_SPACE.sample(random.Random(2)))
    lite = ModelConfig(backbone="mobilenet_v2", repeats=3, width=48, separable=True,
                       num_classes=5, anchors=a4, head_convs=2)  # fmt: skip
    for arch in (genotype, FPNLITE):
        model = build_retinanet(arch, lite).eval()
        head_convs = [m for m in model.head.modules() if isinstance(m, SeparableConv2d)]
        assert len(head_convs) == 2 * 2 + 2  # the stacked convs of both branches, both outputs
        with torch.no_grad():
            cls, box = model(torch.zeros(1, 3, 128, 128))
            assert len(cls) == len(box) == 4
            assert model.detect((cls, box), [(128, 128)])[0]["boxes"].shape[1] == 4
    # fpnlite is fpn with the separable setting
    plain = build_retinanet("fpn", ModelConfig(backbone="mobilenet_v2", num_classes=5))
    assert not any(isinstance(m, SeparableConv2d) for m in plain.modules())


def test_the_levels_of_anchor_strides() -> None:
    assert fpn_levels((8, 16, 32, 64)) == (3, 4, 5, 6)
    with pytest.raises(ValueError, match="not a power of two"):
        fpn_levels((8, 24))
    with pytest.raises(ValueError, match="must double"):
        fpn_levels((8, 32))


def test_inspect_mobile_models(capsys) -> None:
    args = ["--backbone", "mobilenet_v2", "--width", "48", "--image-size", "320", "--json"]
    assert main(["inspect", "nasfpn", "--repeats", "3", "--separable", *args]) == 0
    lite = json.loads(capsys.readouterr().out)
    assert lite["separable"] and lite["key"] == NASFPN.key() and lite["levels"] == [3, 4, 5, 6, 7]
    assert main(["inspect", "nasfpn", "--repeats", "3", *args]) == 0
    dense = json.loads(capsys.readouterr().out)
    assert lite["params"]["backbone"] == dense["params"]["backbone"]
    assert lite["params"]["neck"] < dense["params"]["neck"] and lite["flops"] < dense["flops"]
    assert main(["inspect", "fpnlite", "--max-level", "6", *args]) == 0
    fpnlite = json.loads(capsys.readouterr().out)
    assert fpnlite["neck"] == "fpnlite" and fpnlite["separable"]
    assert fpnlite["levels"] == [3, 4, 5, 6]
    assert main(["inspect", "fpnlite", "--max-level", "9"]) == 2
    assert "--max-level 9 must be 4 to 8" in capsys.readouterr().err


def test_a_separable_model_whose_levels_the_backbone_lacks_is_a_one_line_error(
    tmp_path, capsys
) -> None:
    space = SearchSpace(min_level=1, max_level=4, num_cells=6)
    path = tmp_path / "p1_p4.json"
    path.write_text(to_json(space.decode(space.sample(random.Random(0)))))
    argv = ["inspect", str(path), "--backbone", "mobilenet_v2", "--separable"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "out_levels (1, 2, 3, 4) must lie in 2..5" in err
    assert "Traceback" not in err and err.count("\n") == 1
