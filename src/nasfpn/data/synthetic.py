"""The embedded synthetic detection dataset: coloured shapes on textured backgrounds, COCO format.

No COCO can be downloaded on the project's machines, so ``nasfpn data synth`` (and
:func:`embedded_dataset`, which later commands call when no dataset is named) writes a small
detection dataset in COCO's layout::

    OUT/train/000000000001.jpg ...     OUT/val/000001000001.jpg ...
    OUT/annotations/instances_train.json, instances_val.json

Eight object classes of distinct shapes and colours (ids with gaps, like COCO's), objects at
COCO's small / medium / large scales, unannotated distractor shapes, occlusion, a few crowd
regions and a textured, non-uniform background. Every image is drawn from its own random
generator seeded by ``(seed, split, index)``, so the output is byte-identical for a seed
whatever the number of worker processes. See docs/data.md for the full description.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from nasfpn.data.annotations import write_json

VERSION = 2
DEFAULT_SIZE = 192
DEFAULT_TRAIN = 1200
DEFAULT_VAL = 300
DEFAULT_SEED = 0
SPLITS = ("train", "val")
JPEG_QUALITY = 90


@dataclass(frozen=True)
class ShapeClass:
    """One object class of the synthetic set: a COCO category id, a name and a base colour."""

    id: int
    name: str
    colour: tuple[int, int, int]


# ids with gaps (as COCO's 1..90 for 80 classes), so that label mapping is always exercised
CLASSES: tuple[ShapeClass, ...] = (
    ShapeClass(2, "disc", (215, 45, 40)),
    ShapeClass(3, "ring", (40, 85, 215)),
    ShapeClass(5, "square", (45, 165, 65)),
    ShapeClass(7, "triangle", (235, 195, 35)),
    ShapeClass(11, "cross", (195, 60, 195)),
    ShapeClass(13, "star", (245, 125, 25)),
    ShapeClass(17, "striped square", (35, 185, 195)),
    ShapeClass(19, "frame", (240, 240, 240)),
)
DISTRACTORS = ("ellipse", "bar", "half-disc", "hexagon", "blob")

# layout of one image
OBJECTS_PER_IMAGE = (3, 10)  # annotated objects, inclusive
DISTRACTORS_PER_IMAGE = (0, 2)
# object scale: a COCO size bin is drawn first, then sqrt(area) log-uniformly inside it. The
# bins are COCO's (sqrt(area) < 32, 32-96, > 96 px) at S = 192 (SCALE_REFERENCE) and scale
# with S. Small objects are drawn rarely because occlusion and the image border turn many
# medium ones into small ones, and a tiny detector trained for a minute barely learns them;
# large ones more often than COCO holds them because occlusion and the border shrink them: the
# default set ends with 20% small, 66% medium, 14% large objects (COCO: 41/34/24).
SCALE_REFERENCE = 192
SCALE_BINS = ((16, 32), (32, 96), (100, 160))  # sqrt(area) in px at S = SCALE_REFERENCE
SCALE_PROBS = (0.08, 0.5, 0.42)
CROWD_PROBABILITY = 0.05  # images with one crowd region (a cluster of small same-class objects)
MIN_VISIBLE_FRACTION = 0.65  # objects occluded more than 35% are not drawn at all
COLOUR_JITTER = 14  # per channel, +-
BRIGHTNESS_JITTER = 15  # on all channels, +-
MIN_VISIBLE_PIXELS = 12


@dataclass(frozen=True)
class _Shape:
    kind: str  # a class name or a distractor name
    label: int  # index into CLASSES, or -1 for distractors
    cx: float
    cy: float
    radius: float
    aspect: float  # x / y stretch
    angle: float
    colour: np.ndarray  # (3,) float32 RGB
    param: float  # a shape-specific parameter in [0, 1)
    shade: float  # strength of the linear shading across the shape
    shade_angle: float
    group: int = -1  # crowd members share a group id >= 0

    def window(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``: a pixel window holding the whole shape (may leave the image)."""
        # every shape fits in a radius of 1.21 of its frame (the frame class's corners)
        e = math.ceil(self.radius * math.sqrt(max(self.aspect, 1 / self.aspect)) * 1.21) + 1
        x, y = int(self.cx), int(self.cy)
        return x - e, y - e, x + e, y + e


def _frame(shape: _Shape, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of a window in the shape's rotated, normalised frame (unit radius)."""
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5 - shape.cx
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - shape.cy
    c, s = math.cos(shape.angle), math.sin(shape.angle)
    sx = shape.radius * math.sqrt(shape.aspect)
    sy = shape.radius / math.sqrt(shape.aspect)
    u = (xs * c + ys * s) / sx
    v = (ys * c - xs * s) / sy
    return u, v


def _mask(kind: str, u: np.ndarray, v: np.ndarray, p: float) -> np.ndarray:
    """Boolean mask of a shape in its normalised frame; ``p`` in [0, 1) varies its proportions."""
    au, av = np.abs(u), np.abs(v)
    r2 = u * u + v * v
    if kind in ("disc", "ellipse", "blob"):
        if kind == "blob":  # a superellipse: between a diamond and a rounded square
            e = 1.2 + 2.5 * p
            return au**e + av**e <= 1.0
        return r2 <= 1.0
    if kind == "ring":
        inner = 0.45 + 0.25 * p
        return (r2 <= 1.0) & (r2 >= inner * inner)
    if kind in ("square", "striped square"):
        return (au <= 0.8) & (av <= 0.8)
    if kind == "frame":
        inner = 0.45 + 0.2 * p
        return (au <= 0.85) & (av <= 0.85) & ((au >= inner) | (av >= inner))
    if kind == "triangle":  # equilateral, inscribed in the unit circle
        m = v <= 0.5
        for a in (math.pi / 6, 5 * math.pi / 6):
            m &= u * math.cos(a) - v * math.sin(a) <= 0.5
        return m
    if kind == "cross":
        t = 0.22 + 0.12 * p
        return ((au <= t) & (av <= 0.95)) | ((av <= t) & (au <= 0.95))
    if kind == "star":  # five points: radius 1 at the tips, ~0.45 between them
        phase = (np.arctan2(v, u) * (5 / (2 * math.pi))) % 1.0
        return np.sqrt(r2) <= 0.42 + 0.58 * np.abs(phase - 0.5) ** 1.3 * 2.46
    if kind == "bar":
        return (au <= 1.0) & (av <= 0.12 + 0.1 * p)
    if kind == "half-disc":
        return (r2 <= 1.0) & (v <= 0.1)
    if kind == "hexagon":
        return (av <= 0.866) & (au * 0.866 + av * 0.5 <= 0.866)
    raise ValueError(f"unknown shape kind {kind!r}")


def _colour(rng: np.random.Generator, base: tuple[int, int, int]) -> np.ndarray:
    jitter = rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, 3) + rng.uniform(
        -BRIGHTNESS_JITTER, BRIGHTNESS_JITTER
    )  # per channel, then brightness
    return np.clip(np.asarray(base, np.float32) + jitter, 0, 255).astype(np.float32)


def _new_shape(
    rng: np.random.Generator, kind: str, label: int, colour: np.ndarray,
    cx: float, cy: float, radius: float, group: int = -1,
) -> _Shape:  # fmt: skip
    aspect = math.exp(rng.uniform(-0.35, 0.35))
    if kind in ("ellipse", "bar"):
        aspect = rng.uniform(2.5, 4.5)
    return _Shape(
        kind=kind,
        label=label,
        cx=cx,
        cy=cy,
        radius=radius,
        aspect=aspect,
        angle=rng.uniform(0, 2 * math.pi),
        colour=colour,
        param=rng.random(),
        shade=rng.uniform(0.0, 0.25),
        shade_angle=rng.uniform(0, 2 * math.pi),
        group=group,
    )


@functools.cache
def _unit_area(kind: str) -> float:
    """Area of a shape of radius 1 (middle proportions), to turn a target area into a radius."""
    u, v = np.meshgrid(*[(np.arange(-300, 300, dtype=np.float32) + 0.5) / 200] * 2)
    return float(_mask(kind, u, v, 0.5).sum()) / 200**2


def _radius(rng: np.random.Generator, kind: str, size: int) -> float:
    lo, hi = SCALE_BINS[int(rng.choice(len(SCALE_BINS), p=SCALE_PROBS))]
    side = math.exp(rng.uniform(math.log(lo), math.log(hi))) * size / SCALE_REFERENCE
    return side / math.sqrt(_unit_area(kind))


def _centre(rng: np.random.Generator, r: float, h: int, w: int) -> tuple[float, float]:
    """A centre that keeps at least about half of a large shape inside the image."""
    mx, my = min(0.8 * r, 0.5 * w), min(0.8 * r, 0.5 * h)
    return rng.uniform(mx, w - mx), rng.uniform(my, h - my)


def _layout(rng: np.random.Generator, h: int, w: int, size: int) -> list[_Shape]:
    """Shapes of one image in drawing order (later ones occlude earlier ones)."""
    shapes = []
    for _ in range(rng.integers(OBJECTS_PER_IMAGE[0], OBJECTS_PER_IMAGE[1] + 1)):
        label = int(rng.integers(len(CLASSES)))
        cls = CLASSES[label]
        colour = _colour(rng, cls.colour)
        r = _radius(rng, cls.name, size)
        shapes.append(_new_shape(rng, cls.name, label, colour, *_centre(rng, r, h, w), r))
    for _ in range(rng.integers(DISTRACTORS_PER_IMAGE[0], DISTRACTORS_PER_IMAGE[1] + 1)):
        kind = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
        if rng.random() < 0.5:  # a class colour on a wrong shape: colour alone does not decide
            colour = _colour(rng, CLASSES[int(rng.integers(len(CLASSES)))].colour)
        else:
            colour = rng.uniform(20, 235, 3).astype(np.float32)
        r = _radius(rng, kind, size)
        shapes.append(_new_shape(rng, kind, -1, colour, *_centre(rng, r, h, w), r))
    # larger shapes tend to lie behind smaller ones (as in photographs), with random exceptions
    depth = [-math.log(s.radius) + rng.normal(0, 0.6) for s in shapes]
    shapes = [shapes[i] for i in np.argsort(depth, kind="stable")]
    if rng.random() < CROWD_PROBABILITY:  # drawn on top, as a group
        label = int(rng.integers(len(CLASSES)))
        cls = CLASSES[label]
        gx, gy = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.2 * h, 0.8 * h)
        spread = size * rng.uniform(0.06, 0.12)
        colour = _colour(rng, cls.colour)
        for _ in range(rng.integers(8, 21)):
            cx, cy = gx + rng.normal(0, spread), gy + rng.normal(0, spread)
            r = size * rng.uniform(0.012, 0.025)
            shapes.append(_new_shape(rng, cls.name, label, colour, cx, cy, r, group=0))
    return shapes


def _paint_ids(shapes: list[_Shape], masks: list[np.ndarray], h: int, w: int) -> np.ndarray:
    """Instance map: the index + 1 of the shape that owns each pixel (0 = background)."""
    ids = np.zeros((h, w), np.int16)
    for i, (shape, mask) in enumerate(zip(shapes, masks)):
        if mask is None:
            continue
        x0, y0, x1, y1 = shape.window()
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if cx0 >= cx1 or cy0 >= cy1:
            continue
        sub = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        ids[cy0:cy1, cx0:cx1][sub] = i + 1
    return ids


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Gradient + low-frequency colour noise + a faint periodic texture, ``(h, w, 3)`` float32."""
    c0, c1 = rng.uniform(35, 220, (2, 3)).astype(np.float32)
    a = rng.uniform(0, 2 * math.pi)
    # low-frequency blotches: a coarse random grid plus the gradient at its nodes, bilinearly
    # upsampled (exact for the linear gradient; elementwise, no BLAS, so bit-reproducible)
    g = int(rng.integers(3, 8))
    fy = np.linspace(0, g - 1, h, dtype=np.float32)
    fx = np.linspace(0, g - 1, w, dtype=np.float32)
    ny = np.arange(g, dtype=np.float32)[:, None] * ((h - 1) / (g - 1) / h)
    nx = np.arange(g, dtype=np.float32)[None, :] * ((w - 1) / (g - 1) / w)
    t = (nx * math.cos(a) + ny * math.sin(a)) * 0.5 + 0.5  # (g, g) gradient position in [0, 1]
    grid = c0 + (c1 - c0) * t[..., None] + rng.normal(0, 20, (g, g, 3)).astype(np.float32)
    iy, ix = np.minimum(fy.astype(int), g - 2), np.minimum(fx.astype(int), g - 2)
    ty, tx = (fy - iy)[:, None, None], (fx - ix)[None, :, None]
    rows = grid[iy] * (1 - ty) + grid[iy + 1] * ty  # (h, g, 3)
    img = rows[:, ix] * (1 - tx) + rows[:, ix + 1] * tx  # (h, w, 3)
    # texture: stripes of random period and direction
    period = rng.uniform(5, 28)
    b = rng.uniform(0, 2 * math.pi)
    phase = (np.arange(w, dtype=np.float32) * math.cos(b))[None, :] + (
        np.arange(h, dtype=np.float32) * math.sin(b)
    )[:, None]
    img += (rng.uniform(0, 14) * np.sin(phase * (2 * math.pi / period)))[..., None]
    return img


def _render(
    rng: np.random.Generator,
    h: int,
    w: int,
    shapes: list[_Shape],
    frames: list[tuple[np.ndarray, np.ndarray]],
    masks: list,
    ids: np.ndarray,
) -> np.ndarray:
    img = _background(rng, h, w)
    for i, (shape, (u, v), mask) in enumerate(zip(shapes, frames, masks)):
        if mask is None:
            continue
        x0, y0, x1, y1 = shape.window()
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if cx0 >= cx1 or cy0 >= cy1:
            continue
        own = ids[cy0:cy1, cx0:cx1] == i + 1
        if not own.any():
            continue
        inside = np.s_[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        u, v, own = u[inside], v[inside], own
        ramp = u * math.cos(shape.shade_angle) + v * math.sin(shape.shade_angle)
        colour = shape.colour * (1.0 + shape.shade * ramp)[..., None]  # (h', w', 3)
        if shape.kind == "striped square":  # dark stripes across the square
            stripes = ((u + 0.8) * (2.5 + 2 * shape.param)).astype(np.int32) % 2 == 1
            colour = np.where(stripes[..., None], colour * 0.25, colour)
        img[cy0:cy1, cx0:cx1][own] = colour[own]
    img = np.clip(img, 0, 255).astype(np.uint8)
    # soft edges, then sensor noise
    blurred = Image.fromarray(img).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    noise = rng.standard_normal((h, w, 3), dtype=np.float32) * rng.uniform(2, 8)
    return np.clip(np.asarray(blurred, np.float32) + noise, 0, 255).astype(np.uint8)


def draw_image(
    seed: int, split: int, index: int, size: int = DEFAULT_SIZE
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One image ``(h, w, 3)`` uint8 and its annotations (without ids), from its own seed.

    The long side is ``size``; the short side is 60-100% of it. Boxes are the *visible* extent
    of each object (COCO boxes enclose the visible segmentation), ``area`` its visible pixel
    count; objects hidden more than ``1 - MIN_VISIBLE_FRACTION`` are left out of the image.
    """
    rng = np.random.default_rng((seed, split, index))
    short = round(size * rng.uniform(0.6, 1.0))
    h, w = (short, size) if rng.random() < 0.7 else (size, short)
    shapes = _layout(rng, h, w, size)
    frames, masks = [], []
    for shape in shapes:
        u, v = _frame(shape, *shape.window())
        frames.append((u, v))
        masks.append(_mask(shape.kind, u, v, shape.param))
    ids = _paint_ids(shapes, masks, h, w)
    # drop annotated objects that are mostly hidden (by others or the image border) and paint again
    visible = np.bincount(ids.ravel(), minlength=len(shapes) + 1)[1:]
    for i, shape in enumerate(shapes):
        full = int(masks[i].sum())
        if (
            shape.label >= 0
            and shape.group < 0
            and (visible[i] < MIN_VISIBLE_FRACTION * full or visible[i] < MIN_VISIBLE_PIXELS)
        ):
            masks[i] = None
    ids = _paint_ids(shapes, masks, h, w)
    image = _render(rng, h, w, shapes, frames, masks, ids)
    return image, _annotations(shapes, masks, ids)


def _annotations(shapes: list[_Shape], masks: list, ids: np.ndarray) -> list[dict[str, Any]]:
    anns = []
    crowd: list[int] = []
    for i, shape in enumerate(shapes):
        if shape.label < 0 or masks[i] is None:
            continue
        if shape.group >= 0:
            crowd.append(i)
            continue
        box = _visible_box(ids == i + 1)
        if box is not None:
            anns.append({"label": shape.label, "bbox": box[0], "area": box[1], "iscrowd": 0})
    if crowd:
        box = _visible_box(np.isin(ids, np.asarray(crowd) + 1))
        if box is not None:
            label = shapes[crowd[0]].label
            anns.append({"label": label, "bbox": box[0], "area": box[1], "iscrowd": 1})
    return anns


def _visible_box(mask: np.ndarray) -> tuple[list[float], float] | None:
    """``[x, y, w, h]`` in pixel-edge coordinates and pixel count of a mask, or ``None``."""
    cols, rows = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
    if cols.size == 0:
        return None
    x0, x1, y0, y1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], float(mask.sum())


def image_id(split: int, index: int) -> int:
    """COCO-style image id: train images are 1.., val images 1000001.."""
    return split * 1_000_000 + index + 1


def _write_one(job: tuple[int, int, int, int, str]) -> tuple[int, int, list[dict]]:
    seed, split, index, size, folder = job
    image, anns = draw_image(seed, split, index, size)
    path = Path(folder) / f"{image_id(split, index):012d}.jpg"
    # fixed encoder settings and no metadata, so that the bytes depend only on the pixels
    Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY, optimize=False)
    return image.shape[0], image.shape[1], anns


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`write_synthetic` wrote."""

    path: Path
    images: dict[str, int]
    objects: dict[str, int]
    seconds: float


def write_synthetic(
    out: str | Path,
    *,
    train: int = DEFAULT_TRAIN,
    val: int = DEFAULT_VAL,
    size: int = DEFAULT_SIZE,
    seed: int = DEFAULT_SEED,
    workers: int | None = None,
) -> SynthSummary:
    """Write the synthetic dataset to ``out`` (which must not exist or be an empty folder).

    Files are written to a temporary sibling folder that is renamed to ``out`` at the end, so
    ``out`` never holds a partial dataset. ``workers`` processes draw images in parallel
    (default: the CPU count, at most 8; 0 draws in this process); the output does not depend
    on it.
    """
    check_synth_args(train=train, val=val, size=size, seed=seed)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(
            f"{str(out)!r} already exists and is not an empty folder; choose a new output folder "
            "or remove it first"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        counts = _write_into(tmp, train=train, val=val, size=size, seed=seed, workers=workers)
        tmp.chmod(0o755)  # mkdtemp made it private; the dataset is an ordinary folder
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    images = {"train": train, "val": val}
    return SynthSummary(out, images, counts, time.perf_counter() - start)


def check_synth_args(*, train: int, val: int, size: int, seed: int) -> None:
    """Raise ``ValueError`` for image counts, size or seed the generator cannot use."""
    for name, n in (("train", train), ("val", val)):
        if n < 0:
            raise ValueError(f"--{name} {n} must be 0 or more images")
    if train + val == 0:
        raise ValueError("--train 0 and --val 0 would write no images; ask for at least one")
    if size < 64:
        raise ValueError(f"--size {size} is too small for the shapes; use 64 px or more (e.g. 192)")
    if seed < 0:
        raise ValueError(f"--seed {seed} must be 0 or a positive integer")


def _write_into(
    root: Path, *, train: int, val: int, size: int, seed: int, workers: int | None
) -> dict[str, int]:
    (root / "annotations").mkdir()
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    counts = {}
    for split, (name, n) in enumerate((("train", train), ("val", val))):
        folder = root / name
        folder.mkdir()
        jobs = [(seed, split, i, size, str(folder)) for i in range(n)]
        results = _map(_write_one, jobs, workers)
        data = _coco_dict(name, split, results, seed=seed, size=size)
        write_json(data, root / "annotations" / f"instances_{name}.json")
        counts[name] = sum(1 for a in data["annotations"] if not a["iscrowd"])
    return counts


def _map(fn, jobs: list, workers: int) -> Iterator:
    if workers <= 1 or len(jobs) < 16:
        return map(fn, jobs)
    # fork where there is one (as torch's DataLoader does): no re-import of the caller's script
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        # results come back in job order whatever process drew them
        return iter(list(pool.map(fn, jobs, chunksize=max(1, len(jobs) // (8 * workers)))))


def _coco_dict(name: str, split: int, results, *, seed: int, size: int) -> dict[str, Any]:
    images, annotations = [], []
    for index, (h, w, anns) in enumerate(results):
        iid = image_id(split, index)
        images.append({"id": iid, "file_name": f"{iid:012d}.jpg", "width": w, "height": h})
        for ann in anns:
            annotations.append(
                {
                    "id": len(annotations) + 1 + split * 10_000_000,
                    "image_id": iid,
                    "category_id": CLASSES[ann["label"]].id,
                    "bbox": ann["bbox"],
                    "area": ann["area"],
                    "iscrowd": ann["iscrowd"],
                }
            )
    return {
        "info": {
            "description": f"nasfpn synthetic shapes v{VERSION}, {name} split",
            "version": str(VERSION),
            "contributor": "nasfpn (nasfpn data synth)",
            "url": "",
            "seed": seed,
            "size": size,
        },
        "licenses": [{"id": 1, "name": "CC0 1.0", "url": ""}],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c.id, "name": c.name, "supercategory": "shape"} for c in CLASSES],
    }


def cache_root() -> Path:
    """``$NASFPN_CACHE`` if set, else ``~/.cache/nasfpn``."""
    env = os.environ.get("NASFPN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nasfpn"


# the embedded default dataset (what commands use when no dataset is named)
EMBEDDED = {"train": DEFAULT_TRAIN, "val": DEFAULT_VAL, "size": DEFAULT_SIZE, "seed": DEFAULT_SEED}


def embedded_name() -> str:
    """Folder name of the embedded dataset: generator version and parameters."""
    e = EMBEDDED
    return f"synthetic-v{VERSION}-s{e['size']}-train{e['train']}-val{e['val']}-seed{e['seed']}"


def embedded_dataset(cache_dir: str | Path | None = None, *, workers: int | None = None) -> Path:
    """The embedded default dataset's folder, generated on first use (about 6 s on 2 cores).

    It lives in ``cache_dir`` (default :func:`cache_root`) under :func:`embedded_name`. It is
    written to a temporary folder and renamed, so an interrupted run, or two processes racing,
    never leave a partial dataset behind.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    path = root / embedded_name()
    done = path / "annotations" / "instances_val.json"
    if done.is_file():
        return path
    try:
        write_synthetic(path, workers=workers, **EMBEDDED)
    except ValueError:
        if not done.is_file():  # not another process's finished copy: a real problem
            raise
    except OSError as err:
        if not done.is_file():
            raise OSError(
                f"could not write the embedded dataset to {str(path)!r} ({err}); set NASFPN_CACHE "
                "to a writable folder"
            ) from err
    return path
