"""The known-landscape benchmark: how many samples an algorithm needs to reach a reward.

For each seed, one algorithm (seeded with it) searches one landscape (its random parts seeded
with it too, so every algorithm meets the same instances) until the budget of ``samples``
feedbacks is spent or every threshold is reached. ``workers`` proposals are outstanding at
once and a random one of them (seeded) finishes next, as on a cluster; ``workers=1`` is the
sequential loop. A sample is one feedback, duplicates included (a search would replay a
duplicate's reward without training, so ``unique`` is reported too).

With ``noise`` the algorithm sees each reward plus seeded Gaussian noise of that standard
deviation (absolute, or with ``relative_noise`` a fraction of the spread of the landscape's
rewards over random architectures), as a real proxy's rewards carry seed noise; the thresholds
are judged on the noise-free reward. Noise 0 is the noise-free benchmark, draw for draw.

The samples needed to reach a threshold are summarised over seeds. A seed that does not reach
it within the budget is *censored*: it counts as ``samples`` in the mean, which is then a lower
bound (shown as ``>= mean``), and as ``> samples`` when no seed reached it.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nasfpn.controller.base import space_to_dict
from nasfpn.controller.factory import make_algorithm
from nasfpn.controller.landscapes import make_landscape
from nasfpn.space import SearchSpace

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class SeedRun:
    """One seed's run: the samples at which each threshold was first reached (None: never)."""

    seed: int
    hits: dict[float, int | None]
    samples: int
    unique: int
    best: float  # the best noise-free reward sampled
    seconds: float
    noise: float = 0.0  # the standard deviation of the noise added to what the algorithm saw


@dataclass(frozen=True)
class ThresholdStats:
    """Samples needed to reach ``threshold``, over seeds, censored at ``budget``."""

    threshold: float
    reached: int
    seeds: int
    budget: int
    mean: float
    std: float
    median: float

    @property
    def censored(self) -> bool:
        """Whether some seed did not reach the threshold (``mean`` is then a lower bound)."""
        return self.reached < self.seeds

    def mean_text(self) -> str:
        if self.reached == 0:
            return f"> {self.budget:,}"
        if self.censored:
            return f">= {self.mean:,.0f}"
        return f"{self.mean:,.0f} ± {self.std:,.0f}"

    def median_text(self) -> str:
        return f"{self.median:,.0f}" if 2 * self.reached > self.seeds else f"> {self.budget:,}"


@dataclass(frozen=True)
class BenchResult:
    """Every seed's run of one algorithm on one landscape, and the per-threshold summary."""

    algorithm: str
    landscape: str
    landscape_description: str
    space: dict[str, Any]
    options: dict[str, Any]
    samples: int
    workers: int
    runs: tuple[SeedRun, ...]
    stats: tuple[ThresholdStats, ...]
    seconds: float
    noise: float = 0.0  # as given: absolute, or a fraction of the spread (relative_noise)
    relative_noise: bool = False

    def stat(self, threshold: float) -> ThresholdStats:
        return next(s for s in self.stats if s.threshold == threshold)

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        for run in doc["runs"]:
            run["hits"] = {str(t): n for t, n in run["hits"].items()}
        return doc


def run_seed(
    algorithm: str,
    landscape: str,
    space: SearchSpace,
    seed: int,
    samples: int,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    workers: int = 1,
    options: dict[str, Any] | None = None,
    noise: float = 0.0,
) -> SeedRun:
    """Search ``landscape`` with ``algorithm`` until every threshold is reached or the budget;
    the algorithm sees each reward plus Gaussian noise of std ``noise`` (seeded by ``seed``)."""
    start = time.perf_counter()
    algo = make_algorithm(algorithm, space, seed=seed, **(options or {}))
    reward_of = make_landscape(landscape, space, seed=seed)
    finish_order = random.Random(f"bench-finish-order-{seed}")
    noise_rng = random.Random(f"bench-noise-{seed}")
    hits: dict[float, int | None] = dict.fromkeys(thresholds)
    running = []
    issued = done = 0
    best = -math.inf
    while done < samples and any(n is None for n in hits.values()):
        while len(running) < workers and issued < samples:
            running.append(algo.propose())
            issued += 1
        proposal = running.pop(finish_order.randrange(len(running)))
        reward = reward_of(proposal.actions)
        algo.feedback(proposal, reward + noise_rng.gauss(0.0, noise) if noise else reward)
        done += 1
        best = max(best, reward)
        for t, n in hits.items():
            if n is None and reward >= t:
                hits[t] = done
    unique = int(algo.diagnostics()["unique"])
    return SeedRun(seed, hits, done, unique, best, time.perf_counter() - start, noise)


def landscape_spread(landscape: str, space: SearchSpace, seed: int, samples: int = 2000) -> float:
    """The standard deviation of the landscape's rewards over ``samples`` random architectures
    (seeded): the yardstick for relative noise, as a proxy's seed std is against the spread of
    its rewards across genotypes."""
    reward_of = make_landscape(landscape, space, seed=seed)
    rng = random.Random(f"bench-spread-{seed}")
    return statistics.pstdev(reward_of(space.sample(rng)) for _ in range(samples))


def run_bench(
    algorithm: str,
    landscape: str,
    *,
    samples: int,
    seeds: int | Sequence[int],
    space: SearchSpace | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    workers: int = 1,
    options: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    noise: float = 0.0,
    relative_noise: bool = False,
) -> BenchResult:
    """Run seeds ``0 .. seeds-1`` (or the given ones) and summarise them per threshold.

    ``noise``: the std of the Gaussian noise on the rewards the algorithm sees; with
    ``relative_noise`` a fraction of each seed's landscape spread (:func:`landscape_spread`).
    """
    _check_positive_int("samples", samples)
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not noise >= 0:
        raise ValueError(f"noise={noise!r}: expected a standard deviation >= 0, e.g. 0.05")
    _check_positive_int("workers", workers)
    if isinstance(seeds, int):
        _check_positive_int("seeds", seeds)
        seeds = range(seeds)
    thresholds = tuple(sorted(float(t) for t in thresholds))
    if not thresholds or any(not 0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError(
            f"thresholds={list(thresholds)}: expected at least one reward in [0, 1] (every "
            "landscape's optimum is 1.0), e.g. 0.5,0.7,0.8,0.9"
        )
    space = space if space is not None else SearchSpace()
    # build once up front, so that a bad name or option fails before any run
    config = make_algorithm(algorithm, space, seed=0, **(options or {})).config
    description = make_landscape(landscape, space, seed=0).describe()
    start = time.perf_counter()
    runs = []
    for seed in seeds:
        std = noise * landscape_spread(landscape, space, seed) if relative_noise else noise
        run = run_seed(algorithm, landscape, space, seed, samples, thresholds, workers, options,
                       std)  # fmt: skip
        runs.append(run)
        if progress is not None:
            reached = ", ".join(f"{t:g}@{n}" for t, n in run.hits.items() if n is not None)
            progress(
                f"{algorithm} on {landscape}, seed {seed}: {run.samples} samples, best "
                f"{run.best:.3f}, reached {reached or 'nothing'} ({run.seconds:.1f} s)"
            )
    return BenchResult(
        algorithm=algorithm,
        landscape=landscape,
        landscape_description=description,
        space=space_to_dict(space),
        options=dataclasses.asdict(config),
        samples=samples,
        workers=workers,
        runs=tuple(runs),
        stats=tuple(summarize(runs, t, samples) for t in thresholds),
        seconds=time.perf_counter() - start,
        noise=float(noise),
        relative_noise=relative_noise,
    )


def summarize(runs: Sequence[SeedRun], threshold: float, budget: int) -> ThresholdStats:
    """Mean, std and median over seeds of the samples needed, censored ones counted at budget."""
    values = [run.hits[threshold] for run in runs]
    censored = [budget if n is None else n for n in values]
    return ThresholdStats(
        threshold=threshold,
        reached=sum(n is not None for n in values),
        seeds=len(values),
        budget=budget,
        mean=statistics.fmean(censored),
        std=statistics.pstdev(censored),
        median=statistics.median(censored),
    )


def speedup(result: BenchResult, reference: BenchResult, threshold: float) -> str:
    """How many times fewer samples ``result`` needs than ``reference`` to reach ``threshold``.

    A censored reference makes the ratio a lower bound (``>= x``); a censored ``result`` makes
    it undefined (``n/a``).
    """
    mine, theirs = result.stat(threshold), reference.stat(threshold)
    if mine.censored:
        return "n/a"
    ratio = theirs.mean / mine.mean
    return f">= {ratio:.1f}x" if theirs.censored else f"{ratio:.1f}x"


def format_table(results: Sequence[BenchResult], reference: str = "random") -> str:
    """A Markdown table of every result: one row per algorithm, landscape and threshold (and
    noise level, with a column of its own when some result has noise)."""
    noisy = any(r.noise for r in results)
    lines = [
        f"| landscape |{' noise |' if noisy else ''} algorithm | threshold | reached "
        f"| samples (mean ± std) | median | vs {reference} | unique at stop |",
        f"|---|{'---:|' if noisy else ''}---|---:|---:|---:|---:|---:|---:|",
    ]
    refs = {(r.landscape, r.noise): r for r in results if r.algorithm == reference}
    for r in results:
        unique = statistics.fmean(run.unique for run in r.runs)
        level = f" {_noise_text(r)} |" if noisy else ""
        for s in r.stats:
            ref = refs.get((r.landscape, r.noise))
            ratio = "" if ref is None or ref is r else speedup(r, ref, s.threshold)
            lines.append(
                f"| {r.landscape} |{level} {r.algorithm} | {s.threshold:g} | {s.reached}/{s.seeds} "
                f"| {s.mean_text()} | {s.median_text()} | {ratio} | {unique:,.0f} |"
            )
    return "\n".join(lines)


def _noise_text(result: BenchResult) -> str:
    if not result.noise:
        return "0"
    return f"{result.noise:g} x spread" if result.relative_noise else f"{result.noise:g}"


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: expected an int >= 1")
