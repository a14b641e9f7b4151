import pytest
import torch

# One intra-op thread: on a 2-core machine two OpenMP threads that compete with another process
# (a Ray worker, a second pytest) slow small convolutions down by an order of magnitude.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """A small synthetic COCO-format dataset (40 train, 8 val images of 128 px)."""
    from nasfpn.data import write_synthetic

    root = tmp_path_factory.mktemp("data") / "synth"
    write_synthetic(root, train=40, val=8, size=128, seed=3, workers=0)
    return root


# proxy-task settings that make a trial take a few seconds on one CPU thread
TINY_PROXY = {
    "holdout": 8, "subset": 1.0, "image_size": 128, "repeats": 1, "width": 16, "head_convs": 1,
    "epochs": 1, "batch_size": 8, "workers": 0, "threads": 1, "warmup_iters": 2,
    "max_train_seconds": None, "eval_every": 1,
}  # fmt: skip
