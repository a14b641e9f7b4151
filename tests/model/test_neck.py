import math

import pytest
import torch
import torch.nn.functional as F

from nasfpn.model.neck import VARIANTS, FPNNeck, NASFPNNeck, get_variant, resize_to
from nasfpn.space import NASFPN, Genotype, MergingCell

IN_CH = {3: 8, 4: 12, 5: 16}


def _feats(h: int, w: int, seed: int = 0) -> dict[int, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        lvl: torch.randn(2, ch, math.ceil(h / 2**lvl), math.ceil(w / 2**lvl), generator=g)
        for lvl, ch in IN_CH.items()
    }


def test_resize_pools_with_padding_when_sizes_do_not_divide() -> None:
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    # padded to 6x6 (one zero row/column at the end), then 3x3 max pooling
    assert resize_to(x, (2, 2)).flatten().tolist() == [12.0, 14.0, 22.0, 24.0]
    neg = -torch.ones(1, 1, 3, 3)
    # the padded row/column count as 0 for mmcv and are ignored by TF's 'SAME' pooling
    assert resize_to(neg, (2, 2), 0.0).flatten().tolist() == [-1.0, 0.0, 0.0, 0.0]
    assert resize_to(neg, (2, 2), -math.inf).flatten().tolist() == [-1.0] * 4


def test_resize_upsamples_nearest_to_the_exact_size() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    assert resize_to(x, (3, 3)).reshape(3, 3).tolist() == [[1, 1, 2], [1, 1, 2], [3, 3, 4]]
    assert resize_to(x, (2, 2)) is x


@pytest.mark.parametrize("variant", ["mmdet", "tf"])
def test_global_pool_formulas_by_hand(variant: str) -> None:
    neck = NASFPNNeck(NASFPN, IN_CH, width=1, repeats=1, variant=variant)
    coarse = torch.tensor([1.0, 3.0]).reshape(1, 1, 1, 2)
    fine = torch.tensor([-2.0, 4.0]).reshape(1, 1, 1, 2)
    sig = torch.sigmoid
    if variant == "mmdet":  # fine + coarse * sigmoid(mean(fine))
        expected = fine + coarse * sig(torch.tensor(1.0))
    else:  # coarse + fine * sigmoid(max(coarse))
        expected = coarse + fine * sig(torch.tensor(3.0))
    # the coarser input takes the coarse role whichever of a, b it is
    torch.testing.assert_close(neck._merge(coarse, fine, 5, 4, "global_pool"), expected)
    torch.testing.assert_close(neck._merge(fine, coarse, 4, 5, "global_pool"), expected)
    # on a tie, input a is the coarse one
    torch.testing.assert_close(neck._merge(coarse, fine, 4, 4, "global_pool"), expected)
    torch.testing.assert_close(neck._merge(coarse, fine, 4, 4, "sum"), coarse + fine)


def test_variant_settings() -> None:
    mm = NASFPNNeck(NASFPN, IN_CH, width=4, repeats=2, variant="mmdet")
    tf = NASFPNNeck(NASFPN, IN_CH, width=4, repeats=2, variant="tf")
    assert mm.lateral[0].conv.bias is None and tf.lateral[0].conv.bias is not None
    assert len(mm.extra) == 2 and len(tf.extra) == 0  # P6/P7: conv+BN+pool vs pool
    assert mm.repeat_cells[0][0].conv.bias is not None
    bn_mm, bn_tf = mm.repeat_cells[1][6].bn, tf.repeat_cells[1][6].bn
    assert (bn_mm.eps, bn_mm.momentum) == (1e-5, 0.1)
    assert bn_tf.eps == 1e-4 and bn_tf.momentum == pytest.approx(0.003)
    with pytest.raises(ValueError, match="neck variant 'keras' is unknown"):
        get_variant("keras")
    assert set(VARIANTS) == {"mmdet", "tf"}


def test_mmdet_init_is_caffe2_xavier() -> None:
    neck = NASFPNNeck(NASFPN, IN_CH, width=64, repeats=1)
    w = neck.repeat_cells[0][0].conv.weight  # fan_in = 64 * 9, bound sqrt(3 / fan_in)
    bound = math.sqrt(3 / (64 * 9))
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert (neck.repeat_cells[0][0].conv.bias == 0).all()


def _relu_conv_bn(cell, x):
    return cell.bn(cell.conv(F.relu(x)))


def _mmdet_stage(neck: NASFPNNeck, cells, p3, p4, p5, p6, p7):
    """mmdetection NASFPN.forward's hard-coded stage, written out op by op.

    mmcv: a cell resizes both inputs to the output size, then GlobalPoolingCell(x1, x2) is
    x2 + sigmoid(avgpool(x2)) * x1; the cells with a conv apply ReLU -> conv -> BN.
    """

    def rs(x, ref):
        return resize_to(x, tuple(ref.shape[-2:]))

    def gp(x1, x2, ref):
        x1, x2 = rs(x1, ref), rs(x2, ref)
        return x2 + torch.sigmoid(x2.mean((2, 3), keepdim=True)) * x1

    def add(x1, x2, ref):
        return rs(x1, ref) + rs(x2, ref)

    c = list(cells)
    p4_1 = _relu_conv_bn(c[0], gp(p6, p4, p4))  # gp_64_4
    p4_2 = _relu_conv_bn(c[1], add(p4_1, p4, p4))  # sum_44_4
    p3_o = _relu_conv_bn(c[2], add(p4_2, p3, p3))  # sum_43_3
    p4_o = _relu_conv_bn(c[3], add(p3_o, p4_2, p4))  # sum_34_4
    p5_o = _relu_conv_bn(c[4], add(p5, gp(p4_o, p3_o, p5), p5))  # gp_43_5 (no conv), sum_55_5
    p7_o = _relu_conv_bn(c[5], add(p7, gp(p5_o, p4_2, p7), p7))  # gp_54_7 (no conv), sum_77_7
    p6_o = _relu_conv_bn(c[6], gp(p7_o, p5_o, p6))  # gp_75_6
    return p3_o, p4_o, p5_o, p6_o, p7_o


@pytest.mark.parametrize("size", [(128, 128), (97, 131)])
def test_published_cell_equals_mmdetection_forward(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    neck = NASFPNNeck(NASFPN, IN_CH, width=4, repeats=2).eval()
    for p in neck.parameters():  # non-trivial BN affine and biases
        torch.nn.init.normal_(p, std=0.5)
    feats = _feats(*size)
    ours = neck(feats)

    # mmdetection: laterals (1x1 conv + BN), P6/P7 by 1x1 conv + BN + 2x2 max pool
    p = [lat(feats[lvl]) for lvl, lat in zip((3, 4, 5), neck.lateral)]
    for extra in neck.extra:
        p.append(F.max_pool2d(extra(p[-1]), 2, 2, ceil_mode=True))
    for cells in neck.repeat_cells:
        p = _mmdet_stage(neck, cells, *p)
    for a, b in zip(ours, p):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("variant", ["mmdet", "tf"])
def test_any_size_gives_five_maps_at_strides_8_to_128(variant: str) -> None:
    neck = NASFPNNeck(NASFPN, IN_CH, width=4, repeats=2, variant=variant)
    for h, w in [(64, 64), (97, 131), (300, 33), (129, 257)]:
        outs = neck(_feats(h, w))
        assert [tuple(o.shape[-2:]) for o in outs] == [
            (math.ceil(h / 2**lvl), math.ceil(w / 2**lvl)) for lvl in range(3, 8)
        ]


def test_unconnected_nodes_are_summed_into_their_output_cell() -> None:
    # Zeroing P5 (node 2) changes only what absorbs it: the P5 output (node 9) and its consumers.
    neck = NASFPNNeck(NASFPN, IN_CH, width=4, repeats=1).eval()
    maps = neck._inputs(_feats(64, 64))
    base = neck._pyramid(maps, neck.repeat_cells[0])
    maps[2] = torch.zeros_like(maps[2])
    changed = neck._pyramid(maps, neck.repeat_cells[0])
    same = [torch.equal(a, b) for a, b in zip(base, changed)]
    assert same == [True, True, False, False, False]  # P3, P4 built before node 9


def test_return_repeats_for_anytime_detection() -> None:
    neck = NASFPNNeck(NASFPN, IN_CH, width=4, repeats=3)
    final, per_repeat = neck(_feats(64, 64), return_repeats=True)
    assert len(per_repeat) == 3 and per_repeat[-1] is final


def test_neck_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="repeats=0"):
        NASFPNNeck(NASFPN, IN_CH, repeats=0)
    with pytest.raises(ValueError, match="backbone gives levels"):
        NASFPNNeck(NASFPN, {4: 8, 5: 8}, repeats=1)


def test_fpn_neck_matches_mmdetection_crop640_layout() -> None:
    neck = FPNNeck({3: 512, 4: 1024, 5: 2048}, width=256)
    assert all(lat.conv.bias is not None for lat in neck.lateral)  # no norm on laterals
    assert all(out.conv.bias is None for out in neck.output)  # conv + BN
    assert neck.extra[0].conv.in_channels == 2048 and neck.extra[0].conv.stride == (2, 2)
    feats = {
        3: torch.randn(1, 512, 13, 17),
        4: torch.randn(1, 1024, 7, 9),
        5: torch.randn(1, 2048, 4, 5),
    }
    outs = neck(feats)
    assert [tuple(o.shape[-2:]) for o in outs] == [(13, 17), (7, 9), (4, 5), (2, 3), (1, 2)]


def test_small_space_genotype_builds() -> None:
    g = Genotype(
        cells=(
            MergingCell(0, 1, 4, "sum", False),
            MergingCell(2, 3, 3, "global_pool", True),
            MergingCell(0, 3, 4, "sum", True),
            MergingCell(1, 4, 5, "global_pool", True),
        ),
        min_level=3,
        max_level=5,
    )
    neck = NASFPNNeck(g, IN_CH, width=4, repeats=2)
    assert [tuple(o.shape[-2:]) for o in neck(_feats(64, 64))] == [(8, 8), (4, 4), (2, 2)]
