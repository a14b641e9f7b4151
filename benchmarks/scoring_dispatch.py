"""How to hand seconds-long candidates to Ray workers: Tune trials or a pool of actors?

A shared-weight score takes about two seconds on these machines (docs/oneshot.md). This times
the dispatch alone: ``--jobs`` candidates of exactly ``--seconds`` each (a sleep: no CPU, so
the figure is the machinery's, not the work's) on ``--workers`` workers of one CPU each, two
ways, interleaved A B A B (``--rounds`` of each):

- ``tune``: one Tune trial per candidate, as a proxy search runs its trials (a function
  trainable that reports once; ``max_concurrent_trials`` = workers, ``reuse_actors=True``, the
  driver's Tune settings of nasfpn.search.driver);
- ``pool``: :class:`nasfpn.supernet.remote.ScoringPool`'s way: ``workers`` actors, two
  candidates queued on each, results taken with ``ray.wait``.

For each: wall seconds, candidates an hour, and the overhead per candidate, ``wall x workers /
jobs - seconds`` (the time a worker slot spends on anything but the candidate).

    uv run python benchmarks/scoring_dispatch.py [--jobs 60] [--seconds 2.0] [--workers 2]
        [--rounds 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import ray


def sleep_trial(config: dict) -> None:
    from ray import tune

    time.sleep(config["seconds"])
    tune.report({"AP": 0.0})


def run_tune(jobs: int, seconds: float, workers: int, folder: Path) -> float:
    from ray import tune

    from nasfpn.search.driver import _tune_settings

    start = time.perf_counter()
    with _tune_settings():
        tuner = tune.Tuner(
            tune.with_resources(sleep_trial, {"cpu": 1}),
            param_space={"seconds": seconds},
            tune_config=tune.TuneConfig(
                num_samples=jobs, max_concurrent_trials=workers, reuse_actors=True
            ),
            run_config=tune.RunConfig(
                storage_path=str(folder), name=f"t{time.time_ns()}", verbose=0
            ),
        )
        tuner.fit()
    return time.perf_counter() - start


@ray.remote(num_cpus=1)
class Sleeper:
    def ready(self) -> bool:
        return True

    def score(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds


def run_pool(jobs: int, seconds: float, workers: int, depth: int = 2) -> float:
    start = time.perf_counter()
    actors = [Sleeper.remote() for _ in range(workers)]
    ray.get([a.ready.remote() for a in actors])  # as ScoringPool waits for its actors
    queued = dict.fromkeys(range(workers), 0)
    inflight: dict = {}
    left = jobs
    while left or inflight:
        while left and len(inflight) < workers * depth:
            index = min(queued, key=queued.get)
            inflight[actors[index].score.remote(seconds)] = index
            queued[index] += 1
            left -= 1
        (ref,), _ = ray.wait(list(inflight), num_returns=1)
        queued[inflight.pop(ref)] -= 1
        ray.get(ref)
    for actor in actors:
        ray.kill(actor)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from nasfpn.ray_setup import init_ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local, throw-away instance
    init_ray(None, num_cpus=args.workers)
    times: dict[str, list[float]] = {"tune": [], "pool": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):  # interleaved: A B A B
            times["tune"].append(run_tune(args.jobs, args.seconds, args.workers, Path(folder)))
            times["pool"].append(run_pool(args.jobs, args.seconds, args.workers))
    ray.shutdown()
    ideal = args.jobs * args.seconds / args.workers
    result = {"machine": platform.processor() or platform.machine(), "jobs": args.jobs,
              "seconds": args.seconds, "workers": args.workers, "ideal_wall": ideal}  # fmt: skip
    print(f"{args.jobs} candidates of {args.seconds} s on {args.workers} workers "
          f"(ideal {ideal:.1f} s)")  # fmt: skip
    for way, walls in times.items():
        wall = statistics.median(walls)
        overhead = wall * args.workers / args.jobs - args.seconds
        result[way] = {"walls": walls, "wall": wall, "per_hour": args.jobs / wall * 3600,
                       "overhead_per_candidate": overhead}  # fmt: skip
        print(
            f"  {way:<5} wall {', '.join(f'{w:.1f}' for w in walls)} s (median {wall:.1f}): "
            f"{args.jobs / wall * 3600:.0f} an hour, {overhead:.2f} s overhead a candidate"
        )
    ratio = result["tune"]["wall"] / result["pool"]["wall"]
    result["tune_over_pool"] = ratio
    print(f"  tune / pool wall: {ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
