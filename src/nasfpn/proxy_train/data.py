"""Where a proxy trial's images come from: the proxy-train and reward annotation files.

Given split files (``nasfpn data split``) they are used as they are. Otherwise the data root's
train annotations are split here, by image, with the configured holdout and seed, and the two
files are cached under a name derived from the source file's content and the split settings,
so every worker of a search trains and scores on the very same images.

A proxy configuration's identity (:func:`config_hash`, in every result) is its settings with
the data's paths replaced by the content of the annotation files they name: the same dataset
regenerated, or copied to another machine, keeps its identity (docs/proxy.md, "Identity").
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from nasfpn import config as config_io
from nasfpn.data import (
    content_digest,
    embedded_dataset,
    load_annotations,
    root_files,
    split_annotations,
    write_json,
)
from nasfpn.data.synthetic import cache_root
from nasfpn.proxy_train.config import ProxyConfig


@dataclass(frozen=True)
class ProxyData:
    train_annotations: Path
    reward_annotations: Path
    images: Path


def data_root(cfg: ProxyConfig) -> Path:
    """The configured data root, or the embedded synthetic set (generated on first use)."""
    return Path(cfg.data).expanduser() if cfg.data is not None else embedded_dataset()


def train_files(root: Path) -> tuple[Path, Path]:
    """The train annotation file and image folder of a data root."""
    fix = "give train_annotations, reward_annotations and images explicitly"
    return root_files(root, fix)["train"]


def _split_dir(source: Path, cfg: ProxyConfig) -> Path:
    """The cache folder of a split: named by the source file's content and the split settings,
    never by its path or modification time, so that a regenerated or copied dataset finds it."""
    ident = json.dumps([content_digest(source), cfg.holdout, cfg.split_seed, cfg.subset,
                        cfg.reward_images])  # fmt: skip
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return cache_root() / "splits" / f"{source.stem}-{digest}"


def prepare(cfg: ProxyConfig) -> ProxyData:
    """Resolve (and if needed write) the proxy-train and reward annotation files."""
    if cfg.train_annotations is not None:
        images = cfg.images or (str(train_files(data_root(cfg))[1]) if cfg.data else None)
        if images is None:
            raise ValueError(
                "with train_annotations and reward_annotations, give images (their image "
                "folder) or data (a root whose train images they index)"
            )
        return ProxyData(Path(cfg.train_annotations), Path(cfg.reward_annotations), Path(images))
    source, images = train_files(data_root(cfg))
    if cfg.images is not None:
        images = Path(cfg.images)
    out = _split_dir(source, cfg)
    train_path, reward_path = out / "proxy_train.json", out / "reward.json"
    if not reward_path.is_file():
        split = split_annotations(
            load_annotations(source),
            holdout=cfg.holdout,
            seed=cfg.split_seed,
            subset=None if cfg.subset == 1 else cfg.subset,
            source=repr(str(source)),
        )
        reward = split.reward
        if cfg.reward_images is not None and cfg.reward_images < len(reward["images"]):
            keep = {img["id"] for img in reward["images"][: cfg.reward_images]}
            reward = dict(
                reward,
                images=[i for i in reward["images"] if i["id"] in keep],
                annotations=[a for a in reward["annotations"] if a["image_id"] in keep],
            )
        # write into a temporary folder and rename it: concurrent workers never see half a split
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".tmp-"))
        write_json(split.proxy_train, tmp / "proxy_train.json")
        write_json(reward, tmp / "reward.json")
        try:
            os.rename(tmp, out)
        except OSError:  # another worker got there first; its files are the same
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    return ProxyData(train_path, reward_path, images)


def with_split_files(cfg: ProxyConfig) -> ProxyConfig:
    """``cfg`` with the absolute paths of its prepared split (made here, once): what a driver
    hands to workers, which may run elsewhere (put the data on storage every node sees)."""
    files = prepare(cfg)
    return replace(
        cfg,
        train_annotations=str(files.train_annotations.resolve()),
        reward_annotations=str(files.reward_annotations.resolve()),
        images=str(files.images.resolve()),
    )


# settings added after results were recorded, with the default that reproduces those results:
# left out of the identity at that default, so that earlier results keep their hash
LATER_SETTINGS: dict[str, object] = {"separable": False}


def identity(cfg: ProxyConfig, files: ProxyData | None = None) -> dict:
    """What a proxy result depends on: every setting, with the data named by the content of its
    annotation files (:func:`nasfpn.data.content_digest`) instead of paths. ``data`` and
    ``images`` leave it: the annotation files name the images, and where they lie does not
    matter; nor do the backbone weights' (``pretrained``, by content). ``files`` are the
    prepared split files (:func:`prepare` when not given)."""
    files = files or prepare(cfg)
    weights = cfg.pretrained
    settings = config_io.to_dict(cfg)
    for name, default in LATER_SETTINGS.items():  # at their defaults, as results before them
        if settings.get(name) == default:
            del settings[name]
    return {
        **settings,
        "data": None,
        "images": None,
        "train_annotations": content_digest(files.train_annotations),
        "reward_annotations": content_digest(files.reward_annotations),
        # backbone weights by their content too, where the file is there to read
        "pretrained": content_digest(weights) if weights and Path(weights).is_file() else weights,
    }


def config_hash(cfg: ProxyConfig, files: ProxyData | None = None) -> str:
    """The short hash of :func:`identity`: equal for the same settings and the same data,
    whatever the paths, the machine or the files' modification times."""
    return config_io.config_hash(identity(cfg, files))
