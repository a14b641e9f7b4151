"""Training-step speed of our RetinaNets against torchvision's, measured in one run.

For each detector: backbone -> neck -> head -> loss -> backward on the same images, boxes and
batch, after warm-up; the median of the timed repeats is reported with the forward FLOPs. The
references are torchvision's ``retinanet_resnet50_fpn`` and ``retinanet_resnet50_fpn_v2``
(their image transform is skipped, so that every model sees the same tensor). A second table
times the necks alone on the same backbone features: NAS-FPN 7@256 against our FPN, next to
their FLOP ratio.

    uv run python benchmarks/model_speed.py --size 640 --batch 2 --repeats 5 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.detection import retinanet_resnet50_fpn, retinanet_resnet50_fpn_v2
from torchvision.models.detection.image_list import ImageList

from nasfpn.model import ModelConfig, build_retinanet


def _targets(batch: int, size: int, num_classes: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(batch):
        xy = torch.rand(8, 2, generator=g) * size * 0.7
        wh = 16 + torch.rand(8, 2, generator=g) * size * 0.3
        boxes = torch.cat([xy, (xy + wh).clamp(max=size)], 1)
        out.append({"boxes": boxes, "labels": torch.randint(0, num_classes, (8,), generator=g)})
    return out


def _ours(arch: str) -> tuple[Callable, Callable, torch.nn.Module]:
    model = build_retinanet(arch, ModelConfig(num_classes=91)).train()

    def step(images, targets):
        losses = model.loss(model(images), targets)
        sum(losses.values()).backward()

    return step, model, model


def _torchvision(builder) -> tuple[Callable, Callable, torch.nn.Module]:
    model = builder(weights=None, weights_backbone=None, num_classes=91).train()

    def forward(images):
        feats = list(model.backbone(images).values())
        return model.head(feats), feats

    def step(images, targets):
        head_out, feats = forward(images)
        image_list = ImageList(images, [tuple(images.shape[-2:])] * images.shape[0])
        anchors = model.anchor_generator(image_list, feats)
        losses = model.compute_loss(targets, head_out, anchors)
        sum(losses.values()).backward()

    class Forward(torch.nn.Module):  # for the FLOP counter
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, images):
            return forward(images)

    return step, Forward(), model


def _time(fn: Callable[[], None], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _flops(module: torch.nn.Module, *inputs) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*inputs)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, args.size, args.size)
    targets = _targets(args.batch, args.size, 91)

    rows = []
    candidates = {
        "ours R-50-FPN (mmdet crop640 FPN, SepBN head)": lambda: _ours("fpn"),
        "torchvision retinanet_resnet50_fpn": lambda: _torchvision(retinanet_resnet50_fpn),
        "torchvision retinanet_resnet50_fpn_v2": lambda: _torchvision(retinanet_resnet50_fpn_v2),
        "ours R-50-NAS-FPN 7@256": lambda: _ours("nasfpn"),
    }
    for name, make in candidates.items():
        step, forward, model = make()
        seconds = _time(
            lambda m=model, s=step: (m.zero_grad(set_to_none=True), s(images, targets)),
            args.repeats,
        )
        flops = _flops(forward.eval(), images)
        model.train()
        rows.append({"model": name, "seconds": seconds, "flops": flops})
        print(f"{name:<48} {seconds * 1000:9.0f} ms/step  {flops / 1e9:7.1f} GFLOPs", flush=True)
    ref = rows[1]["seconds"]
    for r in rows:
        r["time_vs_torchvision_v1"] = r["seconds"] / ref

    # necks alone, forward + backward, on the same R-50 features
    fpn, nas = build_retinanet("fpn"), build_retinanet("nasfpn")
    with torch.no_grad():
        feats = fpn.backbone(images)
    feats = {k: v.requires_grad_() for k, v in feats.items()}
    necks = {}
    for name, neck in (("fpn", fpn.neck), ("nasfpn 7@256", nas.neck)):
        neck.train()
        seconds = _time(
            lambda neck=neck: sum(o.sum() for o in neck(feats)).backward(), args.repeats
        )
        necks[name] = {"seconds": seconds, "flops": _flops(neck.eval(), feats)}
        print(f"neck {name:<20} {seconds * 1000:9.0f} ms  {necks[name]['flops'] / 1e9:7.1f} GFLOPs")
    time_ratio = necks["nasfpn 7@256"]["seconds"] / necks["fpn"]["seconds"]
    flop_ratio = necks["nasfpn 7@256"]["flops"] / necks["fpn"]["flops"]
    print(f"NAS-FPN / FPN neck: time x{time_ratio:.2f}, FLOPs x{flop_ratio:.2f}")

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}",
        "size": args.size,
        "batch": args.batch,
        "repeats": args.repeats,
        "detectors": rows,
        "necks": necks,
        "neck_time_ratio": time_ratio,
        "neck_flop_ratio": flop_ratio,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
