"""``nasfpn inspect``: an architecture's cells, parameters and FLOPs."""

from __future__ import annotations

import argparse

from nasfpn.cli.output import emit_json


def run(args: argparse.Namespace) -> int:
    # torch is imported here, not at the top, so that `nasfpn --help` stays instant
    from nasfpn.model import ModelConfig, build_retinanet, count_flops, parameter_breakdown
    from nasfpn.model.anchors import AnchorSpec
    from nasfpn.model.build import FPNLITE, resolve_arch

    lite = str(args.arch) == FPNLITE
    genotype = None if lite else resolve_arch(args.arch)
    if genotype is not None:
        levels = genotype.levels
    else:
        if not 4 <= args.max_level <= 8:
            raise ValueError(f"--max-level {args.max_level} must be 4 to 8 (P3 up to P4..P8)")
        levels = tuple(range(3, args.max_level + 1))
    cfg = ModelConfig(
        backbone=args.backbone,
        repeats=args.repeats,
        width=args.width,
        variant=args.variant,
        num_classes=args.num_classes,
        separable=args.separable or lite,
        anchors=AnchorSpec(strides=tuple(2**lvl for lvl in levels)),  # one per level
    )
    model = build_retinanet(genotype if genotype is not None else args.arch, cfg)
    params = parameter_breakdown(model)
    flops = count_flops(model, args.image_size)
    summary = {
        "arch": str(args.arch),
        "neck": ("fpnlite" if cfg.separable else "fpn") if genotype is None else "nasfpn",
        "backbone": cfg.backbone,
        "separable": cfg.separable,
        "levels": list(levels),
        "repeats": cfg.repeats if genotype is not None else None,
        "width": cfg.width,
        "variant": cfg.variant if genotype is not None else None,
        "num_classes": cfg.num_classes,
        "image_size": args.image_size,
        "params": params,
        "flops": flops,
    }
    latency = None
    if args.latency:
        from nasfpn.cost.latency import model_latency

        latency = model_latency(model, args.image_size, batch=args.batch, threads=args.threads,
                                warmup=args.warmup, repeats=args.timed_runs)  # fmt: skip
        summary["latency_ms"] = latency.median_ms
        summary["latency"] = latency.to_dict()
    if genotype is not None:
        summary["key"] = genotype.key()
        summary["genotype"] = genotype.to_dict()
    if args.json:
        emit_json(summary, indent=2)
        return 0
    if genotype is not None:
        print(format_cells(genotype))
        print(
            f"key: {genotype.key()}   repeats x width: {cfg.repeats}@{cfg.width}   "
            f"variant: {cfg.variant}"
        )
    elif cfg.separable:
        print(f"FPNLite neck (the FPN baseline with separable convs), width {cfg.width}")
    else:
        print(f"FPN neck (mmdetection crop640 baseline), width {cfg.width}")
    convs = "depthwise-separable" if cfg.separable else "dense"
    print(f"backbone: {cfg.backbone}   classes: {cfg.num_classes}   levels: "
          f"P{levels[0]}-P{levels[-1]}   3x3 convs of the pyramid and head: {convs}")  # fmt: skip
    for part in ("backbone", "neck", "head", "total"):
        print(f"params.{part:<9} {params[part]:>12,}  ({params[part] / 1e6:.2f} M)")
    print(
        f"flops @{args.image_size}  {flops:>12,}  ({flops / 1e9:.2f} GFLOPs, "
        f"{flops / 2e9:.2f} G multiply-adds)"
    )
    if latency is not None:
        print(
            f"latency @{args.image_size}  {latency.median_ms:.1f} ms median (quartiles "
            f"{latency.q1_ms:.1f}-{latency.q3_ms:.1f}, min {latency.min_ms:.1f}, max "
            f"{latency.max_ms:.1f}) over {latency.repeats} runs after {latency.warmup} warm-up, "
            f"batch {latency.batch}, {latency.threads} thread(s), float32, forward + "
            f"post-processing on {latency.cpu_model}"
        )
    return 0


def format_cells(genotype) -> str:
    """The cells of a genotype as a text table, with the unconnected nodes each absorbs."""
    levels = genotype.node_levels()

    def name(node: int) -> str:
        return f"P{levels[node]}" if node < genotype.num_inputs else f"n{node}"

    rows = [("node", "level", "op", "input a", "input b", "absorbs", "output")]
    for plan in genotype.trace():
        c = plan.cell
        rows.append(
            (
                f"n{plan.node}",
                f"P{c.level}",
                c.op,
                f"{c.input_a} ({name(c.input_a)})",
                f"{c.input_b} ({name(c.input_b)})",
                ", ".join(f"{j} ({name(j)})" for j in plan.absorbs) or "-",
                f"-> P{c.level}" if c.is_output else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="print an architecture's cells, parameters and FLOPs",
        description="Build a RetinaNet for ARCH and print its cells, parameter counts and FLOPs.",
    )
    p.add_argument(
        "arch", help="a built-in name (nasfpn), 'fpn', 'fpnlite', or a genotype JSON file"
    )
    p.add_argument(
        "--backbone",
        default="resnet50",
        help="resnet10|resnet18|resnet34|resnet50|resnet101|mobilenet_v2 (default resnet50)",
    )
    p.add_argument(
        "--separable",
        action="store_true",
        help="depthwise-separable 3x3 convs in the cells and the head (NAS-FPNLite; fpnlite "
        "implies it)",
    )
    p.add_argument(
        "--max-level",
        type=int,
        default=7,
        help="fpn/fpnlite: the coarsest level, P3 up to it (default 7; a genotype has its own)",
    )
    p.add_argument("--repeats", type=int, default=7, help="pyramid repeats N (default 7)")
    p.add_argument("--width", type=int, default=256, help="pyramid width C (default 256)")
    p.add_argument(
        "--variant",
        default="mmdet",
        choices=["mmdet", "tf"],
        help="which reference's semantics (default mmdet)",
    )
    p.add_argument("--num-classes", type=int, default=80, help="object classes (default 80)")
    p.add_argument(
        "--image-size", type=int, default=640, help="square input for FLOPs (640; mobile: 320)"
    )
    p.add_argument(
        "--latency",
        action="store_true",
        help="also time inference on this machine (forward + post-processing, float32)",
    )
    p.add_argument("--threads", type=int, default=1, help="latency: torch threads (default 1)")
    p.add_argument("--batch", type=int, default=1, help="latency: images per run (default 1)")
    p.add_argument("--warmup", type=int, default=20, help="latency: untimed runs (default 20)")
    p.add_argument("--timed-runs", type=int, default=20, help="latency: timed runs (default 20)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
