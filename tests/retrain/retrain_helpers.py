"""Shared settings of the retraining tests (no conftest.py in subfolders)."""

from nasfpn.retrain import RetrainConfig, load_retrain_config

# a retraining run of a few seconds on one CPU thread on the tiny_synth set (40 train, 8 val)
TINY = [
    "model.repeats=1", "model.width=16", "model.head_convs=1", "epochs=1", "iters_per_epoch=2",
    "data.workers=0", "optim.warmup_iters=2", "log_every=1", "threads=1",
]  # fmt: skip


def tiny(synth, *extra: str) -> RetrainConfig:
    return load_retrain_config("cpu-tiny", [f"data.root={synth}", *TINY, *extra])


def tiny_args(synth, *extra: str) -> list[str]:
    """The same settings as command-line arguments."""
    args = ["--data", str(synth)]
    for item in [*TINY, *extra]:
        args += ["--set", item]
    return args
