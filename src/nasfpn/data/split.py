"""The proxy split: proxy-train and a held-out reward slice of one COCO annotation file.

The paper searches with a reward measured on images held out of COCO train2017, never on
val2017: 7,392 held-out images, the other 110,895 for proxy training (docs section 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasfpn.data.annotations import load_annotations, write_json

DEFAULT_HOLDOUT = 7392
PROXY_TRAIN_FILE = "proxy_train.json"
REWARD_FILE = "reward.json"


@dataclass(frozen=True)
class Split:
    """The two annotation dicts of a proxy split."""

    proxy_train: dict[str, Any]
    reward: dict[str, Any]


def split_annotations(
    data: dict[str, Any],
    *,
    holdout: int = DEFAULT_HOLDOUT,
    seed: int = 0,
    subset: float | None = None,
    source: str = "the annotation file",
) -> Split:
    """Split a COCO annotation dict by image into proxy-train and reward (held-out) dicts.

    A permutation of the image ids seeded by ``seed`` puts its first ``holdout`` images in the
    reward slice; proxy-train is the rest, or with ``subset`` the first ``round(subset * n)`` of
    the rest, so a smaller subset is contained in a larger one of the same seed. Annotations
    follow their images; ``info``, ``licenses`` and ``categories`` are copied to both; images
    and annotations keep the source file's order.
    """
    images = data["images"]
    n = len(images)
    if holdout < 1:
        raise ValueError(f"--holdout {holdout} must be 1 or more images")
    if holdout >= n:
        raise ValueError(
            f"{source} has {n} images, not more than --holdout {holdout}; pass a smaller "
            f"--holdout (e.g. {max(n // 5, 1)}, a fifth) so that proxy-train keeps some images"
        )
    if subset is not None and not 0 < subset <= 1:
        raise ValueError(f"--subset {subset} must be a fraction in (0, 1], e.g. 0.1")
    ids = sorted(img["id"] for img in images)
    order = [ids[i] for i in np.random.default_rng(seed).permutation(n)]
    reward_ids = set(order[:holdout])
    rest = order[holdout:]
    if subset is not None:
        keep = round(subset * len(rest))
        if keep == 0:
            raise ValueError(
                f"--subset {subset} of {len(rest)} proxy-train images keeps none; use at least "
                f"{1 / len(rest):.3g} (one image)"
            )
        rest = rest[:keep]
    return Split(_select(data, set(rest)), _select(data, reward_ids))


def _select(data: dict[str, Any], image_ids: set[int]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k not in ("images", "annotations")}
    out["images"] = [img for img in data["images"] if img["id"] in image_ids]
    out["annotations"] = [a for a in data["annotations"] if a["image_id"] in image_ids]
    return out


def write_split(
    annotations: str | Path,
    out: str | Path,
    *,
    holdout: int = DEFAULT_HOLDOUT,
    seed: int = 0,
    subset: float | None = None,
) -> tuple[Path, Path, Split]:
    """Split an annotation file and write ``proxy_train.json`` and ``reward.json`` into ``out``."""
    data = load_annotations(annotations)
    split = split_annotations(
        data, holdout=holdout, seed=seed, subset=subset, source=repr(str(annotations))
    )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; give a folder for the split")
    out.mkdir(parents=True, exist_ok=True)
    train_path, reward_path = out / PROXY_TRAIN_FILE, out / REWARD_FILE
    write_json(split.proxy_train, train_path)
    write_json(split.reward, reward_path)
    return train_path, reward_path, split
