"""A result's identity: the proxy split's folder and ``config_hash`` follow the data's content
and the settings, never paths, modification times or the machine."""

import os
import shutil

import pytest

from nasfpn.data import content_digest, load_annotations, write_json, write_synthetic
from nasfpn.proxy_train import data as proxy_data
from nasfpn.proxy_train import load_proxy_config
from nasfpn.retrain import data as retrain_data
from nasfpn.retrain import load_retrain_config
from nasfpn.train_loop import cpu_model

# small enough to write twice in a second or two
SYNTH = {"train": 24, "val": 6, "size": 96, "seed": 5, "workers": 0}


def proxy(root, *extra: str):
    return load_proxy_config("cpu-tiny", [f"data={root}", "holdout=6", *extra])


def retrain(root, *extra: str):
    return load_retrain_config("cpu-tiny", [f"data.root={root}", *extra])


@pytest.fixture
def two_copies(tmp_path):
    """The same dataset generated twice, into two folders, the second a second later (other
    paths, other modification times), and a third made by copying the first."""
    first, second, copied = tmp_path / "a" / "synth", tmp_path / "b" / "synth", tmp_path / "c"
    write_synthetic(first, **SYNTH)
    write_synthetic(second, **SYNTH)
    later = os.stat(first / "annotations" / "instances_train.json").st_mtime + 3600
    for path in (second / "annotations").iterdir():
        os.utime(path, (later, later))
    shutil.copytree(first, copied)
    return first, second, copied


def test_content_digest_reads_bytes_only(tmp_path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_bytes(b'{"images": []}\n')
    b.write_bytes(b'{"images": []}\n')
    os.utime(b, (1, 1))
    assert content_digest(a) == content_digest(b)
    assert content_digest(a).startswith("sha256:") and len(content_digest(a)) == 7 + 16
    b.write_bytes(b'{"images": [ ]}\n')
    assert content_digest(a) != content_digest(b)


def test_regenerated_and_copied_data_keep_the_split_and_the_hash(
    two_copies, tmp_path, monkeypatch
) -> None:
    first, second, copied = two_copies
    hashes, folders = set(), set()
    for i, root in enumerate((first, second, copied)):
        # each on its own "machine": a cache of its own
        monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / f"cache{i}"))
        files = proxy_data.prepare(proxy(root))
        folders.add(files.reward_annotations.parent.name)
        hashes.add(proxy_data.config_hash(proxy(root)))
        # what the search driver hands to its workers: absolute paths, same identity
        hashes.add(proxy_data.config_hash(proxy_data.with_split_files(proxy(root))))
    assert len(folders) == 1 and len(hashes) == 1


def test_the_hash_follows_the_settings_and_the_content(two_copies, tmp_path, monkeypatch) -> None:
    first, _, copied = two_copies
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))
    base = proxy_data.config_hash(proxy(first))
    assert proxy_data.config_hash(proxy(first, "lr=0.01")) != base
    assert proxy_data.config_hash(proxy(first, "split_seed=1")) != base
    # other data: the copy loses one annotation
    path = copied / "annotations" / "instances_train.json"
    data = load_annotations(path)
    write_json({**data, "annotations": data["annotations"][1:]}, path)
    assert proxy_data.config_hash(proxy(copied)) != base


def test_retrain_identity_ignores_paths(two_copies, tmp_path, monkeypatch) -> None:
    first, second, copied = two_copies
    hashes = {retrain_data.config_hash(retrain(root)) for root in (first, second, copied)}
    assert len(hashes) == 1
    assert retrain_data.config_hash(retrain(first, "optim.lr=0.01")) not in hashes
    ident = retrain_data.identity(retrain(first))
    assert ident["data"]["root"] is None
    assert ident["data"]["train_annotations"].startswith("sha256:")


def test_pretrained_weights_count_by_content(two_copies, tmp_path, monkeypatch) -> None:
    first, _, _ = two_copies
    monkeypatch.setenv("NASFPN_CACHE", str(tmp_path / "cache"))
    a, b = tmp_path / "w1.pth", tmp_path / "w2.pth"
    a.write_bytes(b"weights")
    b.write_bytes(b"weights")
    assert proxy_data.config_hash(proxy(first, f"pretrained={a}")) == proxy_data.config_hash(
        proxy(first, f"pretrained={b}")
    )
    b.write_bytes(b"other weights")
    assert proxy_data.config_hash(proxy(first, f"pretrained={a}")) != proxy_data.config_hash(
        proxy(first, f"pretrained={b}")
    )


def test_cpu_model_names_the_processor() -> None:
    name = cpu_model()
    assert name and name != "unknown"
    if os.path.exists("/proc/cpuinfo"):  # Linux: the generation's numbers beside the name
        assert "family" in name and "model" in name
