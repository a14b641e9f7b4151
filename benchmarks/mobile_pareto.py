"""Does a latency-aware search find mobile pyramids that dominate FPNLite? (issue 27)

On the embedded set, with the `cpu-mobile` search and proxy presets (MobileNetV2, separable
convs, the P3-P6 space):

1. The latency target of the latency-aware search: ``--target-ms``, or FPNLite's latency (the
   `cpu-mobile` retrain model with the FPN, batch 1, one thread, ``--image-size``) measured here.
2. Two searches at the same budget and seed: accuracy-only (costs recorded) and latency-aware
   (``objective.metric=latency``, ``objective.target``, ``objective.form``, ``objective.weight``).
   Aging evolution (the preset's population of 6): the same seed gives both the same 6 random
   proposals, and they part where selection, which sees the objective, starts.
3. The best of each search (its ``best_genotype.json``), FPNLite and the published cell built
   with separable convs (P3-P7), each retrained ``--retrain-seeds`` times with the `cpu-mobile`
   retrain preset, two at a time.
4. On the idle machine, ``--rounds`` interleaved rounds of latency measurements of those four
   and of torchvision's ``ssdlite320_mobilenet_v3_large`` built without weights (an outside
   reference point; it resizes every input to 320 px itself). The table gives retrain AP mean
   and std over seeds, latency (median of the rounds' medians, and each round's) and FLOPs, and
   whether each model dominates FPNLite (higher mean AP at no more latency), with the AP margin
   in seed stds. The figure draws both searches' Pareto fronts (AP against the latency measured
   on the worker during the search) with the measured models as reference lines.

    uv run python benchmarks/mobile_pareto.py --out runs/mobile-pareto [--trials 40] [--seed 0]
        [--retrain-seeds 3] [--parallel 2] [--rounds 5] [--target-ms MS] [--form soft]
        [--weight W] [--image-size 320] [--json OUT]

Resumable: every search and retraining is a `nasfpn` command whose folder persists under
``--out``; run the same command again to continue (searches with `--resume`, retrainings with
`--resume`). The latencies are measured again on every run (a minute or two).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_quality import _run  # a nasfpn command, its output appended to a log

NASFPN_CMD = [sys.executable, "-m", "nasfpn"]
PUBLISHED_STRIDES = "model.anchors.strides=[8,16,32,64,128]"  # the published cell is P3-P7


def latency_of(arch: str, image_size: int, *extra: str) -> dict:
    """`nasfpn inspect --latency --json` of the cpu-mobile retrain model for ``arch``."""
    cmd = [*NASFPN_CMD, "inspect", arch, "--backbone", "mobilenet_v2", "--separable", "--repeats",
           "3", "--width", "48", "--num-classes", "8", "--image-size", str(image_size),
           "--latency", "--json", *extra]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    return {"latency_ms": doc["latency_ms"], "q1_ms": doc["latency"]["q1_ms"],
            "q3_ms": doc["latency"]["q3_ms"], "min_ms": doc["latency"]["min_ms"],
            "flops": doc["flops"], "cpu_model": doc["latency"]["cpu_model"]}  # fmt: skip


def ssdlite_latency(image_size: int) -> dict:
    """torchvision's SSDLite320 (MobileNetV3-Large), no weights: forward with its own
    transform and post-processing, batch 1, one thread, 20 warm-up and 20 timed runs."""
    import torch
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    from nasfpn.cost.latency import measure_latency, spread

    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).eval()
    image = [torch.rand(3, image_size, image_size, generator=torch.Generator().manual_seed(0))]
    with torch.inference_mode():
        times = spread(measure_latency(lambda: model(image), threads=1))
    return {"latency_ms": times["median_ms"], "q1_ms": times["q1_ms"], "q3_ms": times["q3_ms"],
            "min_ms": times["min_ms"], "flops": None}  # fmt: skip


SSDLITE = "ssdlite320_mobilenet_v3_large"


def interleaved(models: dict[str, tuple[str, list[str]] | None], size: int, rounds: int) -> dict:
    """Each model's latency over ``rounds`` interleaved rounds (A B C A B C ...), so that a slow
    spell of the machine (another tenant, a busy neighbour) hits every model alike: per model, the
    median of its rounds' medians, every round's median, the lowest single run, and its FLOPs.
    ``None`` stands for the SSDLite reference."""
    runs: dict[str, list[dict]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, spec in models.items():
            if spec is None:
                runs[name].append(ssdlite_latency(320))
            else:
                runs[name].append(latency_of(spec[0], size, *spec[1]))
    result = {}
    for name, measured in runs.items():
        medians = [m["latency_ms"] for m in measured]
        result[name] = {"latency_ms": statistics.median(medians), "rounds_ms": medians,
                        "min_ms": min(m["min_ms"] for m in measured),
                        "flops": measured[0]["flops"],
                        "cpu_model": measured[0].get("cpu_model")}  # fmt: skip
    return result


def fmt_rounds(row: dict) -> str:
    return ", ".join(f"{v:.1f}" for v in row["rounds_ms"])


def draw(fronts: dict, references: dict, rows: dict, size: int, path: Path) -> None:
    """The two searches' fronts (AP against the latency measured on the worker) with the
    retrained models' latencies as reference lines."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for (name, doc), colour in zip(fronts.items(), ("#4c72b0", "#c44e52")):
        front = doc["fronts"]["latency_ms"]
        ax.step([m["latency_ms"] for m in front], [m["AP"] for m in front], where="post",
                color=colour, label=f"{name} search: Pareto front")  # fmt: skip
        ax.scatter([m["latency_ms"] for m in front], [m["AP"] for m in front], color=colour, s=20)
    lines = {**references, **{n: r for n, r in rows.items() if n.endswith("best")}}
    for name, ref in lines.items():
        ax.axvline(ref["latency_ms"], color="0.6", linestyle=":", linewidth=1)
        ax.text(ref["latency_ms"], ax.get_ylim()[1], f" {name}", rotation=90, va="top",
                fontsize=7, color="0.4")  # fmt: skip
    cpu = rows["fpnlite"]["cpu_model"]
    ax.set_xlabel(f"latency (ms), batch 1, one thread, {size} px, {cpu}")
    ax.set_ylabel("proxy AP (mean of its runs)")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)


def search(out: Path, name: str, trials: int, seed: int, settings: list[str]) -> Path:
    folder = out / name
    if (folder / "search_config.yaml").is_file():
        cmd = [*NASFPN_CMD, "search", "--resume", str(folder), "--trials", str(trials)]
    else:
        cmd = [*NASFPN_CMD, "search", "--config", "cpu-mobile", "--out", str(folder),
               "--trials", str(trials), "--seed", str(seed)]  # fmt: skip
        for item in settings:
            cmd += ["--set", item]
    _run(cmd, out / "commands.log")
    return folder


def retrain(out: Path, name: str, arch: str, seed: int, extra: list[str]) -> float:
    """The retrain AP of ``arch``; its folder is named after the genotype's content, so a best
    genotype that changed when a search was resumed is retrained, not read back stale."""
    tag = name
    if Path(arch).is_file():
        tag += "-" + hashlib.sha256(Path(arch).read_bytes()).hexdigest()[:8]
    folder = out / "retrain" / f"{tag}-s{seed}"
    metrics = folder / "metrics.json"
    if not (metrics.is_file() and json.loads(metrics.read_text()).get("status") == "ok"):
        cmd = [*NASFPN_CMD, "retrain", arch, "--config", "cpu-mobile", "--out", str(folder),
               "--resume", "--set", f"seed={seed}"]  # fmt: skip
        for item in extra:
            cmd += ["--set", item]
        _run(cmd, out / "retrain" / f"{tag}-s{seed}.log")
    return float(json.loads(metrics.read_text())["final"]["AP"])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain-seeds", type=int, default=3)
    parser.add_argument("--target-ms", type=float, help="default: FPNLite's median latency")
    parser.add_argument("--form", default="soft", choices=["soft", "hard", "absolute"])
    parser.add_argument("--weight", type=float, help="the form's weight (default: its own)")
    parser.add_argument("--image-size", type=int, default=320, help="the costed input size")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved latency rounds")
    parser.add_argument("--parallel", type=int, default=2, help="retrainings at a time")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.time()

    size = args.image_size
    fpnlite = ("fpnlite", ["--max-level", "6"])
    target = args.target_ms
    if target is None:
        target = interleaved({"fpnlite": fpnlite}, size, args.rounds)["fpnlite"]["latency_ms"]
    # the costed model is the retrained one (3@48 at the costed size), not the 2@48 proxy model
    cost = [f"objective.image_size={size}", "objective.model.repeats=3"]
    accuracy = search(args.out, "search-accuracy", args.trials, args.seed, cost)
    aware_settings = [*cost, "objective.metric=latency", f"objective.target={target}",
                      f"objective.form={args.form}"]  # fmt: skip
    if args.weight is not None:
        aware_settings.append(f"objective.weight={args.weight}")
    aware = search(args.out, "search-latency", args.trials, args.seed, aware_settings)

    models = {
        "latency-aware best": (str(aware / "best_genotype.json"), []),
        "accuracy-only best": (str(accuracy / "best_genotype.json"), []),
        "fpnlite": ("fpn", []),
        "published (separable)": ("nasfpn", [PUBLISHED_STRIDES]),
    }
    # two retrainings at a time, one thread each (the preset's `threads: 1`), on a 2-core machine
    (args.out / "retrain").mkdir(exist_ok=True)
    jobs = [(name, seed) for name in models for seed in range(args.retrain_seeds)]
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = {}
        for name, seed in jobs:
            arch, extra = models[name]
            slug = name.replace(" ", "-").replace("(", "").replace(")", "")
            futures[name, seed] = pool.submit(retrain, args.out, slug, arch, seed, extra)

    # latency of every model and reference, interleaved rounds on the now idle machine
    timed = {name: (fpnlite if arch == "fpn" else (arch, [])) for name, (arch, _) in models.items()}
    latencies = interleaved({**timed, SSDLITE: None}, size, args.rounds)
    rows = {}
    for name in models:
        aps = [futures[(name, seed)].result() for seed in range(args.retrain_seeds)]
        rows[name] = {"retrain_aps": aps, "mean": statistics.fmean(aps),
                      "std": statistics.stdev(aps) if len(aps) > 1 else None,
                      **latencies[name]}  # fmt: skip
    published = "published (separable)"
    references = {"fpnlite": rows["fpnlite"], published: rows[published],
                  SSDLITE: latencies[SSDLITE]}  # fmt: skip

    searches = (("accuracy-only", accuracy), ("latency-aware", aware))
    fronts = {name: json.loads((folder / "pareto.json").read_text()) for name, folder in searches}
    draw(fronts, references, rows, size, args.out / "mobile_pareto.png")

    base = rows["fpnlite"]
    print(f"\nlatency target {target:.1f} ms; {SSDLITE} {latencies[SSDLITE]['latency_ms']:.1f} ms "
          f"(rounds {fmt_rounds(latencies[SSDLITE])})")  # fmt: skip
    print("\n| model | retrain AP (mean +- std over seeds) | latency ms, median of rounds "
          "(round medians) | GFLOPs | dominates FPNLite | AP margin in seed stds |")  # fmt: skip
    print("|---|---:|---:|---:|---|---:|")
    for name, row in rows.items():
        std = row["std"] or 0.0
        spread = statistics.fmean([s for s in (row["std"], base["std"]) if s] or [float("nan")])
        dominates = row["mean"] > base["mean"] and row["latency_ms"] <= base["latency_ms"]
        print(
            f"| {name} | {row['mean']:.4f} +- {std:.4f} | {row['latency_ms']:.1f} "
            f"({fmt_rounds(row)}) | {row['flops'] / 1e9:.2f} | "
            f"{'yes' if dominates else 'no'} | {(row['mean'] - base['mean']) / spread:+.2f} |"
        )
    out = {"target_ms": target, "references": references, "rows": rows,
           "fronts": {n: d["fronts"] for n, d in fronts.items()},
           "seconds": time.time() - start}  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
