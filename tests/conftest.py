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
