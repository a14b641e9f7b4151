"""Paper-scale driver: the real search driver for 10,000 trials, each trial instant.

The paper sampled about 8,000 architectures (its config asks for 10,000). This runs
``nasfpn.search.run_search`` (the driver, the searcher, the ledger, Ray Tune, the console's
board) exactly as ``nasfpn search`` does, with one substitution: each trial's training is
:func:`instant_trial`, which scores the genotype on a known landscape in microseconds and
reports to Tune the way a proxy trial does. What is left is the driver's own cost per trial.
The first trial of each worker process waits until no other trial worker is still starting
(:class:`WorkersUp`), as a real trial, minutes long, outlasts the workers' start.

The search is SIGKILLed (driver, Ray and its workers) when its ledger reaches ``--kill-at``
records and resumed with ``--resume``, as a user would after a crash; at the end the finished
folder is resumed once more with the real ``nasfpn search --resume`` command (which finds
nothing to do and exports the results), and that command is timed.

Figures, per thousand trials (from the ledger's end times and the driver's own samples of its
CPU time and resident memory, one a second):

- driver CPU per trial: the driver process's CPU seconds (every thread) per ledger record;
- wall time per trial: seconds per ledger record (all processes share the machine's cores);
- driver memory: resident set size, and its growth per trial (a straight-line fit);
- where the machine's time goes: the CPU per trial of each kind of process the run started
  (the driver, Ray's GCS and raylet, the trial workers, the board actor, Ray's others), read
  from /proc every 2 s, and the driver's seconds in Python's garbage collector;
- the driver's main thread (Tune's loop, the searcher, the ledger): its CPU per record;
- worker processes Ray started, and how many came up as trial actors (Tune's actor churn:
  benchmarks/README.md, "Paper-scale driver"), and how long each one's first trial waited;
- Tune's experiment checkpoints: how many, their mean and largest time, the state file's size;
- resume: from the relaunch after the SIGKILL to its first new record, and the whole
  ``nasfpn search --resume`` of the finished folder.

    uv run python benchmarks/search_scale.py [--trials 10000] [--concurrent 8]
        [--algorithm ppo] [--kill-at 5000] [--reward proxy|supernet] [--out DIR] [--json FILE]

``--reward supernet`` runs a one-shot search instead: its samples go to the scoring actors of
nasfpn.supernet.remote.ScoringPool (each an :class:`InstantScorer`), beside Tune, and only its
one re-evaluation at the end is a Tune trial.

``NASFPN_SCALE_PROFILE=1`` profiles the driver (cProfile, ``driver-*.prof`` in the folder);
``NASFPN_SCALE_OBJECTS=SECONDS`` writes its live Python objects by type that often.

On a 2-core machine 10,000 trials took 7 min with PPO (most of its late samples are
duplicates, replayed without a trial) and 14 min with random search (every sample a trial).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SAMPLES = "driver_samples.jsonl"  # one line a second: time, CPU seconds, RSS, run number
CHECKPOINTS = "tune_checkpoints.jsonl"  # one line per Tune experiment checkpoint: its seconds
PROCESSES = "process_cpu.jsonl"  # every 2 s: CPU seconds so far by kind of process
OBJECTS = "driver_objects.jsonl"  # NASFPN_SCALE_OBJECTS=SECONDS: live objects by type
WORKERS = "workers_up"  # the trial workers' start barrier (WorkersUp): their waits
MARK = "NASFPN_SEARCH_SCALE"  # environment marker of every process a run started


# -- the instant trial (runs on the Ray workers) ----------------------------------------------


def instant_trial(genotype, config, report=None, progress=None):
    """A stand-in for :func:`nasfpn.proxy_train.run`: the genotype's reward on the ``match``
    landscape (the fraction of its decisions equal to the published cell's) plus seeded noise
    of std 0.02, reported per epoch as a proxy trial reports; takes well under a millisecond."""
    from nasfpn.controller.landscapes import MatchLandscape
    from nasfpn.proxy_train.run import ProxyResult
    from nasfpn.space import SearchSpace

    space = SearchSpace()
    reward = MatchLandscape(space)(space.encode(genotype))
    reward += random.Random(f"{genotype.key()}-{config.seed}").gauss(0.0, 0.02)
    history = []
    for epoch in range(1, config.epochs + 1):
        entry = {"epoch": epoch, "iteration": epoch, "AP": reward, "AP50": reward,
                 "train_seconds": 0.0}  # fmt: skip
        history.append(entry)
        if progress is not None:
            progress({"epoch": epoch, "epochs": config.epochs, "iteration": epoch,
                      "iterations": config.epochs, "loss": 1.0 - reward})  # fmt: skip
        if report is not None and epoch < config.epochs:
            report(dict(entry))
    return ProxyResult(status="ok", seed=config.seed, AP=reward, AP50=reward, AP75=reward,
                       epochs=config.epochs, iterations=config.epochs, history=history,
                       losses={"cls": 1.0 - reward, "box": 0.1})  # fmt: skip


class WorkersUp:
    """The instant trial, whose first call in each worker process first waits until no trial
    actor is still starting (Ray's actor table, read from its GCS: no ``ImplicitFunc`` actor
    neither alive nor dead), at most ``timeout_s``, a safety net. Each wait is appended to
    ``folder/waits.jsonl``, with whether it ran out or could not read the table.

    A real proxy trial lasts minutes, longer than a worker takes to start (13 s of CPU alone,
    60-90 s with 8 starting on 2 cores). An instant one ends first, and Tune then gives every
    new trial the one actor that is up while it cancels the others it was starting (Tune's
    actor reuse; one actor for 400 trials, and 400 actor requests, in a plain Tune run):
    the run would measure Tune's actor churn instead of the driver (benchmarks/README.md).
    """

    WAITED = "NASFPN_SCALE_WORKER_WAITED"  # set in a worker's environment once it has waited

    def __init__(self, folder: Path, timeout_s: float = 600.0) -> None:
        self.folder, self.timeout_s = Path(folder), timeout_s

    @staticmethod
    def _starting() -> int:
        """Trial actors Ray has been asked for that are not up yet (nor dead)."""
        from ray._private import state

        return sum(actor["ActorClassName"].endswith("ImplicitFunc")
                   and actor["State"] not in ("ALIVE", "DEAD")
                   for actor in state.actors().values())  # fmt: skip

    def __call__(self, genotype, config, report=None, progress=None):
        if not os.environ.get(self.WAITED):
            os.environ[self.WAITED] = "1"
            start, error = time.monotonic(), None
            while True:
                try:
                    starting = self._starting()
                except Exception as e:  # recorded in the wait; the trial goes on unwaited
                    starting, error = None, f"{type(e).__name__}: {e}"
                waited = time.monotonic() - start
                if not starting or waited > self.timeout_s:
                    break
                time.sleep(0.2)
            wait = {"time": time.time(), "pid": os.getpid(), "seconds": waited,
                    "timed_out": bool(starting), "error": error}  # fmt: skip
            self.folder.mkdir(parents=True, exist_ok=True)
            with (self.folder / "waits.jsonl").open("a") as f:
                f.write(json.dumps(wait) + "\n")
        return instant_trial(genotype, config, report, progress)


class InstantScorer:
    """A stand-in for the one-shot search's scoring actor (``--reward supernet``): the
    genotype's reward on the same ``match`` landscape as :func:`instant_trial` (no seed: a
    score is the same every time), returned as a score is; well under a millisecond."""

    def __init__(self, folder, bn_batches=None, threads=None, device=None) -> None:
        self.node = platform.node()

    def ready(self) -> dict:
        return {}

    def score(self, genotype: dict) -> dict:
        from nasfpn.controller.landscapes import MatchLandscape
        from nasfpn.space import Genotype, SearchSpace

        start = time.time()
        space = SearchSpace()
        reward = MatchLandscape(space)(space.encode(Genotype.from_dict(genotype)))
        return {"final": True, "status": "ok", "reason": "", "reward_source": "supernet",
                "AP": reward, "AP50": reward, "eval_seconds": 0.0, "node": self.node,
                "precision": "fp32", "cpu_model": None, "gpu_model": None,
                "worker_start": start, "worker_end": time.time()}  # fmt: skip


def one_step_supernet(folder: Path) -> None:
    """The weights a ``--reward supernet`` search names (it checks them against its space and
    proxy task before it starts): one step of the cpu-tiny supernet, seconds."""
    from nasfpn.supernet import load_supernet_config, train_supernet

    train_supernet(load_supernet_config("cpu-tiny", ["steps=1"]), folder)


# -- the driver process -------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class GcClock:
    """The seconds the driver spent in Python's cyclic garbage collector (gc.callbacks)."""

    def __init__(self) -> None:
        import gc

        self.seconds, self.started = 0.0, 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self.started


def reference_work() -> None:
    """A fixed piece of pure-Python work (dicts, strings, JSON: what the driver's own work is
    made of), about 2 ms on these machines."""
    record = {"trial_id": "t", "reward": 0.5, "metrics": {"AP": 0.5, "AP50": 0.7}}
    for i in range(400):
        json.loads(json.dumps({**record, "step": i, "key": f"{i:016x}"}))


def _sample_forever(path: Path, run: int) -> None:
    """Once a second: the driver's CPU seconds (all threads, and its main thread's alone), RSS
    and GC seconds, and the thread CPU time of :func:`reference_work` run here, in the driver
    (the least of 3), as the machine's speed for the driver's kind of work at that moment
    (these machines drift by a third and more over a run: benchmarks/README.md, "Paper-scale
    driver"); the CPU the reference takes is left out of the driver's."""
    gc_clock = GcClock()
    # the CPU clock of the driver's main thread: Tune's event loop, the searcher, the ledger (the
    # other threads are Ray's, the console's and these samplers)
    main_clock = time.pthread_getcpuclockid(threading.main_thread().ident)
    spent = 0.0  # CPU seconds of the reference runs, to take off the driver's
    with path.open("a") as out:
        while True:
            # every second: a thousand records can take as little as 16 s
            times = []
            for _ in range(3):
                start = time.thread_time()
                reference_work()
                times.append(time.thread_time() - start)
            spent += sum(times)
            reference = min(times)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            out.write(json.dumps({"time": time.time(),
                                  "cpu": usage.ru_utime + usage.ru_stime - spent,
                                  "main_cpu": time.clock_gettime(main_clock),
                                  "rss": _rss_bytes(), "gc": gc_clock.seconds,
                                  "reference": reference, "run": run}) + "\n")  # fmt: skip
            out.flush()
            time.sleep(1.0)


def _count_objects_forever(path: Path, every: float) -> None:
    """Every ``every`` seconds, the driver's live Python objects by type (``NASFPN_SCALE_OBJECTS``:
    what the driver's memory growth is made of, if it is Python objects at all)."""
    import collections
    import gc

    while True:
        time.sleep(every)
        counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
        with path.open("a") as out:
            out.write(json.dumps({"time": time.time(), "rss": _rss_bytes(),
                                  "types": dict(counts.most_common(60))}) + "\n")  # fmt: skip


def _time_tune_checkpoints(path: Path) -> None:
    """Log the seconds of every Tune experiment checkpoint (instrumentation of the benchmark
    alone: the driver's behaviour is unchanged)."""
    from ray.tune.execution.tune_controller import TuneController

    original = TuneController.save_to_dir

    def timed(self):
        start = time.perf_counter()
        original(self)
        with path.open("a") as out:
            out.write(json.dumps({"time": time.time(),
                                  "seconds": time.perf_counter() - start}) + "\n")  # fmt: skip

    TuneController.save_to_dir = timed


def drive(args: argparse.Namespace) -> None:
    from nasfpn import config as config_io
    from nasfpn.search import SearchConfig, run_search

    out = args.out
    resume = (out / "search_config.yaml").is_file()
    out.mkdir(parents=True, exist_ok=True)
    run = int(time.time())  # this driver's samples
    threading.Thread(target=_sample_forever, args=(out / SAMPLES, run), daemon=True).start()
    _time_tune_checkpoints(out / CHECKPOINTS)
    if os.environ.get("NASFPN_SCALE_OBJECTS"):
        every = float(os.environ["NASFPN_SCALE_OBJECTS"])
        threading.Thread(target=_count_objects_forever, args=(out / OBJECTS, every),
                         daemon=True).start()  # fmt: skip
    cfg = None
    if not resume:
        base = {"trials": args.trials, "concurrent": args.concurrent,
                "num_cpus": args.concurrent, "algorithm": args.algorithm, "seed": 0,
                "console_every": 3600.0}  # fmt: skip
        cfg = config_io.load(SearchConfig, None, args.set, base=base)
    train = WorkersUp(out / WORKERS)

    def search() -> None:
        run_search(cfg, out, resume=resume, trials=args.trials if resume else None,
                   log=lambda *a, **k: None, train=train, score_worker=InstantScorer)  # fmt: skip

    if os.environ.get("NASFPN_SCALE_PROFILE"):
        import cProfile

        cProfile.runctx("search()", globals(), {"search": search},
                        str(out / f"driver-{run}.prof"))  # fmt: skip
    else:
        search()


# -- the orchestrator ---------------------------------------------------------------------------


class LedgerWatch:
    """Counts a growing ledger's records, reading only what was appended since the last look."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.count = path, 0, 0

    def records(self) -> int:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self.count += data[:end].count(b"\n")
            self.offset += end
        return self.count


def _start_driver(args: argparse.Namespace, tag: str) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--drive", "--out", str(args.out), "--trials",
           str(args.trials), "--concurrent", str(args.concurrent), "--algorithm",
           args.algorithm]  # fmt: skip
    for item in args.set:
        cmd += ["--set", item]
    log = (args.out / f"driver-{tag}.log").open("a")
    env = {**os.environ, MARK: str(args.out), "NASFPN_PROGRESS": "plain"}
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)  # fmt: skip


def _marked_pids(value: str) -> list[int]:
    """Processes whose environment holds this run's marker (the driver, Ray, its workers)."""
    found = []
    needle = f"{MARK}={value}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _kind(cmdline: bytes) -> str:
    """Which part of the search a process is: the driver, Ray's GCS and raylet, a trial's
    worker, the board actor, or Ray's other processes (dashboard, agents, monitors)."""
    args = cmdline.split(b"\0")
    if b"--drive" in args:
        return "driver"
    text = cmdline.replace(b"\0", b" ")
    for name, kind in ((b"gcs_server", "gcs"), (b"raylet", "raylet"),
                       (b"ray::TrialBoard", "board")):  # fmt: skip
        if name in text:
            return kind
    return "workers" if text.startswith(b"ray::") else "ray_other"


def _sample_processes(value: str, path: Path, stop: threading.Event) -> None:
    """Every 2 s, the CPU seconds each kind of process of this run has used so far (a process
    that ended keeps its last reading): where the machine's time per trial goes; and how many
    worker processes have started so far, and how many of them got as far as hosting a trial
    actor (Tune stops a starting actor when its trial takes a freed one, see analyse)."""
    tick = os.sysconf("SC_CLK_TCK")
    # (pid, start time) -> (kind, CPU seconds at the last look); the start time tells a reused
    # pid from the process that had it before
    seen: dict[tuple[int, bytes], tuple[str, float]] = {}
    actors: set[tuple[int, bytes]] = set()  # worker processes seen hosting a trial actor
    with path.open("a") as out:
        while not stop.wait(2.0):
            for pid in _marked_pids(value):
                try:
                    stat = (Path("/proc") / str(pid) / "stat").read_bytes()
                    # read each time: a worker's title changes with the actor it hosts
                    cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
                except OSError:
                    continue
                fields = stat.rsplit(b")", 1)[1].split()  # fields 3.. of proc(5)'s stat
                key = (pid, fields[19])
                # a process that is exiting has no command line left: it keeps its kind
                kind = _kind(cmdline) if cmdline or key not in seen else seen[key][0]
                seen[key] = (kind, (int(fields[11]) + int(fields[12])) / tick)
                if cmdline.startswith(b"ray::ImplicitFunc"):
                    actors.add(key)
            totals: dict[str, float] = {}
            for kind, cpu in seen.values():
                totals[kind] = totals.get(kind, 0.0) + cpu
            workers = sum(kind == "workers" for kind, _ in seen.values())
            out.write(json.dumps({"time": time.time(), "cpu": totals, "workers": workers,
                                  "actors": len(actors)}) + "\n")  # fmt: skip
            out.flush()


def _kill_all(value: str) -> None:
    for _ in range(50):
        pids = _marked_pids(value)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    raise RuntimeError(f"processes {_marked_pids(value)} outlived SIGKILL")


def _per_record(samples: list[dict], times: list[float], key: str) -> list[float | None]:
    """``key`` of the driver samples, interpolated at each time (None outside the samples)."""
    values, j = [], 0
    for t in times:
        while j + 1 < len(samples) and samples[j + 1]["time"] < t:
            j += 1
        if j + 1 >= len(samples) or not samples[j]["time"] <= t:
            values.append(None)
            continue
        a, b = samples[j], samples[j + 1]
        w = (t - a["time"]) / (b["time"] - a["time"])
        values.append(a[key] + w * (b[key] - a[key]))
    return values


def analyse(out: Path, bucket: int) -> dict[str, Any]:
    from nasfpn.search import read_ledger

    records = read_ledger(out)
    samples = [json.loads(line) for line in (out / SAMPLES).open()]
    runs: dict[int, list[dict]] = {}
    for s in samples:
        runs.setdefault(s["run"], []).append(s)
    ends = [r["end_time"] for r in records]
    # each record belongs to the driver run that was alive when it was written
    cpu: list[float | None] = [None] * len(records)
    main_cpu: list[float | None] = [None] * len(records)
    gc_seconds: list[float | None] = [None] * len(records)
    rss: list[float | None] = [None] * len(records)
    owner: list[int | None] = [None] * len(records)
    for run, ss in runs.items():
        c = _per_record(ss, ends, "cpu")
        m = _per_record(ss, ends, "rss")
        g = _per_record([{"gc": 0.0, **s} for s in ss], ends, "gc")
        t = (_per_record(ss, ends, "main_cpu") if all("main_cpu" in s for s in ss)
             else [None] * len(ends))  # fmt: skip
        for i in range(len(records)):
            if c[i] is not None:
                cpu[i], rss[i], gc_seconds[i], owner[i] = c[i], m[i], g[i], run
                main_cpu[i] = t[i]
    # CPU seconds of each kind of process (the driver, GCS, raylet, workers, ...) at each record
    by_kind: dict[str, list[float | None]] = {}
    # worker processes started and trial actors up, so far, at each record
    started: list[float | None] = [None] * len(records)
    actors: list[float | None] = [None] * len(records)
    if (out / PROCESSES).exists():
        procs = [json.loads(line) for line in (out / PROCESSES).open()]
        for kind in sorted({k for p in procs for k in p["cpu"]}):
            series = [{"time": p["time"], "cpu": p["cpu"].get(kind, 0.0)} for p in procs]
            by_kind[kind] = _per_record(series, ends, "cpu")
        if procs and "workers" in procs[-1]:
            started = _per_record(procs, ends, "workers")
            actors = _per_record(procs, ends, "actors")
    rows = []
    for lo in range(0, len(records), bucket):
        hi = min(lo + bucket, len(records)) - 1
        # records of this bucket written by one driver run, the run with most of them
        by_run: dict[int, list[int]] = {}
        for i in range(lo, hi + 1):
            if owner[i] is not None:
                by_run.setdefault(owner[i], []).append(i)
        if not by_run:
            continue
        idx = max(by_run.values(), key=len)
        if len(idx) < max(2, bucket // 4):
            continue  # too few records for a figure (the re-evaluations' tail, say)
        a, b = idx[0], idx[-1]
        n = b - a
        # trained: records of a Tune trial (not a replayed duplicate), between a and b
        trained = sum(records[i]["status"] != "duplicate" for i in range(a + 1, b + 1))
        # the machine's speed meanwhile: the median reference time of the driver's samples
        # between the bucket's first and last record
        refs = [s["reference"] for s in runs[owner[a]]
                if s.get("reference") and ends[a] <= s["time"] <= ends[b]]  # fmt: skip
        reference_ms = 1000 * statistics.median(refs) if refs else None
        rows.append({
            "records": f"{lo + 1}-{hi + 1}",
            "reference_ms": reference_ms,
            "driver_cpu_ms": 1000 * (cpu[b] - cpu[a]) / n,
            "driver_cpu_ms_per_trained": 1000 * (cpu[b] - cpu[a]) / max(trained, 1),
            # of it on the driver's main thread (Tune's loop, the searcher, the ledger)
            "driver_main_ms": (1000 * (main_cpu[b] - main_cpu[a]) / n
                               if None not in (main_cpu[a], main_cpu[b]) else None),
            "driver_gc_ms": 1000 * (gc_seconds[b] - gc_seconds[a]) / n,
            "trained_fraction": trained / n,
            "wall_ms": 1000 * (ends[b] - ends[a]) / n,
            "rss_mb": rss[b] / 2**20,
            "records_measured": n,
            # worker processes started between the bucket's first and last record (rounded
            # from the 2-s samples), and how many of them came up as trial actors
            "worker_processes": (round(started[b] - started[a])
                                 if None not in (started[a], started[b]) else None),
            "trial_actors": (round(actors[b] - actors[a])
                             if None not in (actors[a], actors[b]) else None),
            "cpu_ms_by_process": {
                kind: 1000 * (v[b] - v[a]) / n
                for kind, v in by_kind.items() if v[a] is not None and v[b] is not None
            },
        })  # fmt: skip
    # The driver's CPU per record is its work per record plus what its loops cost per second
    # (Tune's event loop polls every 0.1 s, Ray's threads, the display): when the workers slow
    # down (a slower phase of the machine), each record takes more wall time and so more of the
    # second part. A least-squares line of driver CPU on wall time over the buckets separates
    # the two; "driver_work_ms" is a bucket's CPU per record less its per-second part.
    per_second = None
    if len(rows) >= 3:
        xs = [r["wall_ms"] for r in rows]
        if len(set(xs)) > 1:
            ys = [r["driver_cpu_ms"] for r in rows]
            per_second = statistics.linear_regression(xs, ys).slope
            work = [r["driver_cpu_ms"] - per_second * r["wall_ms"] for r in rows]
            # a line that leaves a row no work does not describe the run (the machine changed
            # speed, or Tune's actor churn changed the work per record, in mid-run), and one
            # that leaves a row almost none cannot tell the parts apart (the driver sets the
            # pace, so its CPU and the wall time per record move together): under a tenth of
            # the mean CPU a record, no split
            if min(work) > 0.1 * statistics.fmean(ys):
                for r, w in zip(rows, work):
                    r["driver_work_ms"] = w
            else:
                per_second = None
    # memory growth per trial: a least-squares line through (record, RSS) of the longest run,
    # after its first thousand records (start-up allocations)
    longest = max(runs, key=lambda r: sum(o == r for o in owner))
    pts = [(i, rss[i]) for i in range(len(records)) if owner[i] == longest]
    pts = pts[min(bucket, len(pts) // 2) :]
    slope = statistics.linear_regression([x for x, _ in pts], [y for _, y in pts]).slope
    checkpoints = []
    if (out / CHECKPOINTS).exists():
        checkpoints = [json.loads(line)["seconds"] for line in (out / CHECKPOINTS).open()]
    states = sorted((out / "tune").glob("experiment_state-*.json"))
    steps = sorted(r["controller_step"] for r in records if r.get("phase") != "reevaluation")
    statuses = sorted({r["status"] for r in records})
    tune_bytes = sum(p.stat().st_size for p in (out / "tune").rglob("*") if p.is_file())
    waits = []
    if (out / WORKERS / "waits.jsonl").exists():
        waits = [json.loads(line) for line in (out / WORKERS / "waits.jsonl").open()]
    return {
        "records": len(records),
        "search_records": len(steps),
        "controller_steps_complete": steps == list(range(len(steps))),
        "statuses": {s: sum(r["status"] == s for r in records) for s in statuses},
        "buckets": rows,
        "rss_growth_kb_per_trial": slope / 1024,
        "driver_cpu_per_wall_second": per_second,  # seconds of CPU a second (fraction of a core)
        "tune_checkpoints": {
            "count": len(checkpoints),
            "mean_s": statistics.fmean(checkpoints) if checkpoints else None,
            "max_s": max(checkpoints, default=None),
            "total_s": sum(checkpoints),
            "state_file_mb": max((p.stat().st_size for p in states), default=0) / 2**20,
        },
        "tune_folder_mb": tune_bytes / 2**20,
        "tune_trial_dirs": sum(1 for p in (out / "tune").iterdir() if p.is_dir()),
        "ledger_mb": (out / "ledger.jsonl").stat().st_size / 2**20,
        # the trial workers' start barrier (WorkersUp): first trials that waited, for how long
        "worker_waits": {
            "count": len(waits),
            "timed_out": sum(w["timed_out"] for w in waits),
            "errors": sorted({w["error"] for w in waits if w.get("error")}),
            "median_s": statistics.median(w["seconds"] for w in waits) if waits else None,
            "max_s": max((w["seconds"] for w in waits), default=None),
        },
    }


def _cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--algorithm", default="ppo")
    parser.add_argument("--kill-at", type=int, default=None,
                        help="SIGKILL the search at this many records (default: trials / 2; "
                             "0: never)")  # fmt: skip
    parser.add_argument("--bucket", type=int, default=1000, help="records per row")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="search config override")  # fmt: skip
    parser.add_argument("--out", type=Path, help="search folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--reward", choices=["proxy", "supernet"], default="proxy",
                        help="supernet: a one-shot search, its samples scored by instant "
                             "scoring actors (InstantScorer) instead of Tune trials")  # fmt: skip
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args)
        return

    temp = None
    if args.out is None:
        temp = tempfile.mkdtemp(prefix="nasfpn-scale-")
        args.out = Path(temp) / "search"
    args.out = args.out.resolve()
    if (args.out / "ledger.jsonl").exists():
        raise SystemExit(f"{args.out} already holds a search: give a new --out folder")
    args.out.mkdir(parents=True)
    if args.reward == "supernet":
        weights = args.out.parent / f"{args.out.name}-supernet"
        one_step_supernet(weights)
        args.set += ["reward=supernet", f"supernet={weights}", "reevaluate_top=1"]
    kill_at = args.trials // 2 if args.kill_at is None else args.kill_at
    marker = str(args.out)
    watch = LedgerWatch(args.out / "ledger.jsonl")
    stop_sampling = threading.Event()
    sampler = threading.Thread(target=_sample_processes, daemon=True,
                               args=(marker, args.out / PROCESSES, stop_sampling))  # fmt: skip
    sampler.start()
    start = time.time()
    killed_at = resume_first_record_s = relaunch = None
    try:
        driver = _start_driver(args, "first")
        while driver.poll() is None:
            time.sleep(0.2)
            if kill_at and watch.records() >= kill_at:
                killed_at = watch.records()
                _kill_all(marker)
                break
        if killed_at is not None:
            print(f"SIGKILLed the search at {killed_at} records; resuming", flush=True)
            relaunch = time.time()
            driver = _start_driver(args, "resumed")
            seen = watch.records()
            while driver.poll() is None:
                time.sleep(0.05)
                if resume_first_record_s is None and watch.records() > seen:
                    resume_first_record_s = time.time() - relaunch
            driver.wait()
        if driver.returncode != 0:
            raise SystemExit(f"the driver failed (exit {driver.returncode}); see {args.out}")
    finally:
        _kill_all(marker)
        stop_sampling.set()
        sampler.join()
    search_seconds = time.time() - start

    t0 = time.time()
    done = subprocess.run([sys.executable, "-m", "nasfpn", "search", "--resume", str(args.out)],
                          capture_output=True, text=True)  # fmt: skip
    resume_finished_s = time.time() - t0
    if done.returncode != 0:
        raise SystemExit(f"nasfpn search --resume failed:\n{done.stdout}{done.stderr}")

    from nasfpn.search import read_ledger
    from nasfpn.search.driver import TUNE_SETTINGS

    figures = analyse(args.out, args.bucket)
    resume_first_trained_s = None
    if relaunch is not None:
        # the first record of a trial the resumed driver ran (not a replayed duplicate): Ray
        # started again and a worker took a trial
        trained = [r["end_time"] for r in read_ledger(args.out)
                   if r["end_time"] > relaunch and r["status"] != "duplicate"]  # fmt: skip
        resume_first_trained_s = min(trained) - relaunch if trained else None
    buckets = figures["buckets"]
    first, last = buckets[0], buckets[-1]
    figures.update({
        "trials": args.trials, "concurrent": args.concurrent, "algorithm": args.algorithm,
        "reward": args.reward,
        "killed_at": killed_at, "resume_first_record_s": resume_first_record_s,
        "resume_first_trained_s": resume_first_trained_s,
        "resume_finished_folder_s": resume_finished_s, "search_seconds": search_seconds,
        "driver_cpu_last_over_first": last["driver_cpu_ms"] / first["driver_cpu_ms"],
        # the same in units of the reference work timed meanwhile in the driver (the machine's
        # drift in speed taken out)
        "driver_cpu_last_over_first_at_reference_speed": (
            (last["driver_cpu_ms"] / last["reference_ms"])
            / (first["driver_cpu_ms"] / first["reference_ms"])
            if first["reference_ms"] and last["reference_ms"] else None),
        "driver_main_last_over_first": (last["driver_main_ms"] / first["driver_main_ms"]
                                        if first["driver_main_ms"] and last["driver_main_ms"]
                                        else None),
        # the driver's work per record alone (its per-second part taken out, see analyse)
        "driver_work_last_over_first": (last["driver_work_ms"] / first["driver_work_ms"]
                                        if "driver_work_ms" in first else None),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores",
        "settings": {k: os.environ.get(k, v) for k, v in TUNE_SETTINGS.items()},
    })  # fmt: skip
    print(f"{figures['records']} records ({figures['search_records']} search), statuses "
          f"{figures['statuses']}, controller steps complete: "
          f"{figures['controller_steps_complete']}")  # fmt: skip
    kinds = sorted({k for row in buckets for k in row["cpu_ms_by_process"]})
    print("| records | driver CPU ms/record | of it on its main thread | of it in Python's GC | "
          "reference work ms | driver "
          "CPU / reference | trained (not duplicates) | "
          "driver CPU ms/trained trial | wall ms/record | driver RSS MB | worker processes "
          "started (came up as trial actors) | "
          + "".join(f"{k} CPU ms/record | " for k in kinds))  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(kinds))
    for row in buckets:
        by = row["cpu_ms_by_process"]
        ref = row["reference_ms"]
        on_main = row["driver_main_ms"]
        print(f"| {row['records']} | {row['driver_cpu_ms']:.1f} | "
              + (f"{on_main:.1f} | " if on_main is not None else "- | ")
              + f"{row['driver_gc_ms']:.1f} | "
              + (f"{ref:.2f} | {row['driver_cpu_ms'] / ref:.2f} | " if ref else "- | - | ")
              + f"{100 * row['trained_fraction']:.0f}% | {row['driver_cpu_ms_per_trained']:.1f} | "
              f"{row['wall_ms']:.1f} | {row['rss_mb']:.0f} | "
              + (f"{row['worker_processes']} ({row['trial_actors']}) | "
                 if row.get("worker_processes") is not None else "- | ")
              + "".join(f"{by[k]:.1f} | " if k in by else "- | " for k in kinds))  # fmt: skip
    ck = figures["tune_checkpoints"]
    at_reference = figures["driver_cpu_last_over_first_at_reference_speed"]
    work = figures["driver_work_last_over_first"]
    if work is None and len(buckets) >= 3:
        print("driver CPU = work per record + a cost per second of wall time does not fit this "
              "run (a row would be left under a tenth of the mean): no split")  # fmt: skip
    if work is not None:
        print(f"driver CPU = work per record + {figures['driver_cpu_per_wall_second']:.3f} s a "
              "second of wall time (least squares over the rows); work per record: "
              + ", ".join(f"{r['records']} {r['driver_work_ms']:.1f} ms"
                          for r in buckets))  # fmt: skip
    print(f"driver CPU per trial, last thousand / first: "
          f"{figures['driver_cpu_last_over_first']:.2f}"
          + (f" ({at_reference:.2f} at the reference's speed)" if at_reference else "")
          + (f", its work per record alone {work:.2f}" if work is not None else "")
          + (f", its main thread's {figures['driver_main_last_over_first']:.2f}"
             if figures["driver_main_last_over_first"] else "")
          + "; memory growth "
          f"{figures['rss_growth_kb_per_trial']:.1f} KB/trial")  # fmt: skip
    mean = f"{ck['mean_s']:.3f}" if ck["mean_s"] is not None else "-"
    print(f"Tune experiment checkpoints: {ck['count']}, mean {mean} s, max {ck['max_s']} s, "
          f"state file {ck['state_file_mb']:.2f} MB; tune/ {figures['tune_folder_mb']:.1f} MB "
          f"in {figures['tune_trial_dirs']} trial folders; ledger "
          f"{figures['ledger_mb']:.1f} MB")  # fmt: skip
    ww = figures["worker_waits"]
    if ww["count"]:
        print(f"trial workers started: {ww['count']}, their first trial waited for the others "
              f"a median {ww['median_s']:.1f} s (max {ww['max_s']:.1f} s), {ww['timed_out']} "
              "ran out of time" + (f"; could not read Ray's actors: {ww['errors']}"
                                   if ww["errors"] else ""))  # fmt: skip
    print(f"resume after SIGKILL at {killed_at}: first new record after "
          f"{_seconds(resume_first_record_s)}, first trained one after "
          f"{_seconds(resume_first_trained_s)}; `nasfpn search --resume` of the finished folder "
          f"{resume_finished_s:.1f} s; whole run {search_seconds / 60:.1f} min")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if temp is not None:
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
