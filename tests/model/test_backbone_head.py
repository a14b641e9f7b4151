import math

import pytest
import torch
import torchvision
from torch import nn

from nasfpn.model.backbone import BackboneWeightsError, ResNet, load_pretrained
from nasfpn.model.head import SepBNHead


@pytest.mark.parametrize(("depth", "c5"), [(10, 512), (18, 512), (50, 2048)])
def test_resnet_levels_and_channels(depth: int, c5: int) -> None:
    net = ResNet(depth, frozen_stages=0)
    feats = net(torch.randn(1, 3, 67, 93))
    assert list(feats) == [3, 4, 5]
    assert feats[5].shape[1] == c5 and net.out_channels[-1] == c5
    assert [tuple(f.shape[-2:]) for f in feats.values()] == [(9, 12), (5, 6), (3, 3)]


def test_resnet50_has_torchvision_parameters() -> None:
    ours = ResNet(50).state_dict()
    theirs = {
        k: v
        for k, v in torchvision.models.resnet50().state_dict().items()
        if not k.startswith("fc.")
    }
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_resnet10_is_one_basic_block_per_stage() -> None:
    net = ResNet(10)
    assert [len(getattr(net, f"layer{i}")) for i in range(1, 5)] == [1, 1, 1, 1]
    assert isinstance(net.layer1[0], torchvision.models.resnet.BasicBlock)


def test_frozen_stages_have_no_gradient_and_stay_in_eval() -> None:
    net = ResNet(18, frozen_stages=1).train()
    assert not any(p.requires_grad for p in net.conv1.parameters())
    assert not any(p.requires_grad for p in net.layer1.parameters())
    assert all(p.requires_grad for p in net.layer2.parameters())
    assert not net.bn1.training and not net.layer1[0].bn1.training
    assert net.layer2[0].bn1.training


def test_frozen_norm_keeps_every_bn_in_eval() -> None:
    net = ResNet(18, frozen_stages=0, norm="frozen").train()
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training or m.weight.requires_grad for m in bns)
    assert net.layer4[0].conv1.weight.requires_grad


def test_sync_norm_converts_and_keeps_keys() -> None:
    net = ResNet(18, norm="sync")
    assert isinstance(net.layer2[0].bn1, nn.SyncBatchNorm)
    assert set(net.state_dict()) == set(ResNet(18).state_dict())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 42}, "depth 42 is not supported"),
        ({"norm": "group"}, "norm 'group' is unknown"),
        ({"frozen_stages": 7}, "frozen_stages=7"),
        ({"out_levels": (3, 6)}, "out_levels"),
    ],
)
def test_backbone_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ResNet(**kwargs)


def test_load_pretrained_torchvision_checkpoint(tmp_path) -> None:
    reference = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    net = ResNet(18)
    load_pretrained(net, path)
    torch.testing.assert_close(net.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    torch.testing.assert_close(net.bn1.running_var, reference.bn1.running_var)


def test_load_pretrained_errors(tmp_path) -> None:
    with pytest.raises(BackboneWeightsError, match="do not exist"):
        load_pretrained(ResNet(18), tmp_path / "missing.pth")
    wrong = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), wrong)
    with pytest.raises(BackboneWeightsError, match=r"does not fit a ResNet-18.*unexpected keys"):
        load_pretrained(ResNet(18), wrong)
    tampered = torchvision.models.resnet18().state_dict()
    tampered["conv1.weight"] = torch.zeros(64, 1, 7, 7)  # a one-channel stem
    shapes = tmp_path / "tampered.pth"
    torch.save(tampered, shapes)
    with pytest.raises(BackboneWeightsError, match=r"shape mismatches.*conv1.weight"):
        load_pretrained(ResNet(18), shapes)
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(BackboneWeightsError, match="could not read"):
        load_pretrained(ResNet(18), junk)
    listed = tmp_path / "list.pth"
    torch.save([1, 2], listed)
    with pytest.raises(BackboneWeightsError, match="expected a state dict"):
        load_pretrained(ResNet(18), listed)


def test_head_shares_convs_across_levels_with_separate_bn() -> None:
    head = SepBNHead(num_classes=3, in_channels=8, feat_channels=8, num_levels=5)
    names = dict(head.named_parameters())
    assert sum(n.startswith("cls_convs.") for n in names) == 4  # one set of 4 convs
    assert sum(n.startswith("cls_norms.") for n in names) == 5 * 4 * 2  # BN weight+bias per level
    prior = 1 / (1 + math.exp(-head.cls_logits.bias[0].item()))
    assert prior == pytest.approx(0.01)
    feats = [torch.randn(2, 8, s, s) for s in (16, 8, 4, 2, 1)]
    cls, reg = head(feats)
    assert [c.shape for c in cls] == [(2, 27, s, s) for s in (16, 8, 4, 2, 1)]
    assert [r.shape for r in reg] == [(2, 36, s, s) for s in (16, 8, 4, 2, 1)]
    with pytest.raises(ValueError, match="built for 5 levels, got 4"):
        head(feats[:4])
    with pytest.raises(ValueError, match="num_classes=0"):
        SepBNHead(num_classes=0)
