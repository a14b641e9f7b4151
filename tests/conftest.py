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


@pytest.fixture(scope="session")
def tiny_search(tiny_synth, tmp_path_factory):
    """The folder of a real 4-trial search (REINFORCE, batch 2, TINY_PROXY trials) that ends by
    re-evaluating its top 2 with one more seed each, on a local Ray instance: what the analysis
    tests and the notebooks read."""
    from nasfpn.search import SearchConfig, run_search

    out = tmp_path_factory.mktemp("search") / "search"
    cfg = SearchConfig(
        proxy={**TINY_PROXY, "data": str(tiny_synth)}, algorithm="reinforce",
        algorithm_options={"batch_size": 2}, trials=4, seed=1, num_cpus=2, concurrent=2,
        reevaluate_top=2, reevaluate_seeds=1,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NASFPN_CACHE", str(tmp_path_factory.mktemp("cache")))
        try:
            run_search(cfg, out, log=lambda *args, **kwargs: None)
        finally:
            import ray

            ray.shutdown()
    return out


def kill_after_lines(command: list[str], log, lines: int, env: dict, timeout: float = 240) -> None:
    """Start ``command`` in its own session and SIGKILL all of it once the file ``log`` holds
    ``lines`` lines (or the command ends, or ``timeout`` seconds pass)."""
    import os
    import signal
    import subprocess
    import time

    driver = subprocess.Popen(command, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + timeout
    while time.time() < deadline and driver.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= lines:
            break
        time.sleep(0.02)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
