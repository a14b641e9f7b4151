"""The controller behind Ray Tune's ``Searcher`` API, with the ledger and resumable state.

``suggest`` asks the algorithm for a proposal and hands it to Tune as a trial's config (its
actions, key, controller step, seed and phase: what Tune keeps of a trial stays small);
``on_trial_complete`` appends the trial's record to the ledger, then feeds the reward back.
A proposal whose architecture was already evaluated is not trained again: its recorded reward
is replayed (or, with ``duplicates: reevaluate``, it is trained until it has
``max_evaluations`` results, whose mean is replayed after that).

Once ``trials`` samples are recorded, the search re-evaluates: the best ``reevaluate_top``
architectures (by their search-phase rewards, :func:`nasfpn.rewards.top_search_keys`) are
trained with ``reevaluate_seeds`` more seeds each, as Tune trials like any other. Their records
(``phase: reevaluation``) are not controller samples: the controller does not learn from them.
A re-evaluation counts as done when its status measures the architecture, as for a search trial
(:meth:`NASSearcher._evaluated`: ``ok``, ``diverged``, ``timeout`` under ``on_timeout:
penalty``); one that ended ``error``, ``failed`` or a discarded ``timeout`` measured the machine
and is planned again, with the same seed, by the next resume (Ray has already retried an
``error`` ``max_failures`` times in this run).

The algorithm's state is saved atomically with the number of ledger records it has learnt from,
after a record when the last save is ``STATE_SECONDS`` old (so after every record of a real
search, whose trials take minutes) and at the end of each Tune run. Each search record carries
``controller_proposals``, how many proposals the algorithm had made when it learnt from the
record, so the exact order of proposals and feedback is in the ledger. A search killed at any
point resumes from the saved state: the ledger records after it are fed back in that order
(the proposals made in between are made again first: proposing depends on the state alone),
proposals it holds without a record are evaluated first, the re-evaluation plan is derived
again from the ledger, and nothing finished is trained twice (docs/search.md).
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray.tune.search import Searcher

from nasfpn.controller import Algorithm, Proposal
from nasfpn.rewards import (
    COSTS,
    PROXY,
    REEVALUATION,
    SEARCH,
    SUPERNET,
    is_trained,
    phase,
    top_search_keys,
)
from nasfpn.search.config import SearchConfig
from nasfpn.search.ledger import Ledger
from nasfpn.search.trainable import actions_text
from nasfpn.space import Genotype

STATE_FILE = "controller.pt"
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
EXTRA = ("params", "flops", "train_seconds", "eval_seconds", "epochs", "iterations",
         "worker_start", "worker_end")  # fmt: skip
# an architecture's cost, measured after its first training (nasfpn.cost.measure), or why not
COST = (*COSTS, "latency", "cost_error")
# statuses whose reward says something about the architecture (replayed for duplicates);
# `timeout` joins them when the search penalises timeouts (on_timeout: penalty)
EVALUATED = ("ok", "diverged", "early_stopped")
STATE_SECONDS = 5.0
"""Save the controller state after a record when the last save is this old. Saving it cost
3.5 ms at 10,000 random-search proposals (5.4 ms with PPO's policy), a fifth of the driver's
time per record with instant trials; a resume feeds back the records after the save."""


@dataclass(frozen=True)
class Reevaluation:
    """One extra-seed training of a top architecture, planned from the ledger."""

    key: str
    seed: int
    genotype: dict[str, Any]
    of: str  # trial id of the architecture's first search run
    controller_step: int  # that run's controller step


def _finite(value: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _losses(result: dict[str, Any]) -> dict[str, Any]:
    """The last training losses of a result (Tune may flatten them to ``losses/<name>``)."""
    nested = result.get("losses")
    if isinstance(nested, dict):
        return nested
    return {k.split("/", 1)[1]: v for k, v in result.items() if k.startswith("losses/")}


def save_state(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_state(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


class NASSearcher(Searcher):
    """Ray Tune searcher that drives a :class:`~nasfpn.controller.Algorithm`."""

    def __init__(
        self,
        algorithm: Algorithm,
        ledger: Ledger,
        state_path: Path,
        cfg: SearchConfig,
        config_hash: str = "",
        on_record: Callable[[dict[str, Any]], None] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(metric="AP", mode="max")
        self.algorithm = algorithm
        self.ledger = ledger
        self.state_path = Path(state_path)
        self.cfg = cfg
        self.config_hash = config_hash
        self.on_record = on_record
        self.log: Callable[[str], None] | None = None  # one-line notices (the driver's)
        self.on_start: Callable[[str, dict[str, Any]], None] | None = None  # a trial handed out
        # trial id -> the whole result a trial left on the driver's board (nasfpn.search.progress)
        self.fetch_result: Callable[[str], dict[str, Any] | None] | None = None
        # the proxy seed of an architecture's first training; later ones count up from it
        self.base_seed = cfg.proxy_config().seed if seed is None else seed
        # trial id -> proposal, start, seed (None for a shared-weight score)
        self.live: dict[str, tuple[Proposal, float, int | None]] = {}
        self.waiting: dict[str, list[Proposal]] = defaultdict(list)  # key -> held duplicates
        self.pending: list[Proposal] = []  # restored proposals to evaluate before new ones
        self.rewards: dict[str, list[float]] = defaultdict(list)  # key -> search-run rewards
        self.extra: dict[str, list[float]] = defaultdict(list)  # key -> re-evaluation rewards
        self.seeds: dict[str, set[int]] = defaultdict(set)  # key -> seeds trained or training
        self.first_trial: dict[str, str] = {}  # key -> trial id of its first evaluation
        self.training: dict[str, int] = defaultdict(int)  # key -> search trials running now
        self.costs: dict[str, dict[str, float]] = {}  # key -> its measured latency_ms, cost_flops
        self.searched = 0  # search-phase records (controller samples) in the ledger
        self.reevaluations_lost = 0  # re-evaluation records with no reward: run again on resume
        self.reevaluating: dict[str, tuple[Reevaluation, float]] = {}  # trial id -> job, start
        self.plan: list[Reevaluation] | None = None  # re-evaluations not yet handed out
        self.run_left: int | None = None  # trials this Tune run may still start (None: any)
        self.saved_at = -math.inf  # time.monotonic() of the last save of the state
        self.unsaved = False  # records learnt from since then
        records = ledger.records
        for record in records:
            self._remember(record)
        self._resume(records)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _evaluated(self, status: str) -> bool:
        """Whether a run's reward measures the architecture (and is learnt and replayed)."""
        return status in EVALUATED or (status == "timeout" and self.cfg.on_timeout == "penalty")

    def _remember(self, record: dict[str, Any]) -> None:
        measured = {k: (record.get("metrics") or {}).get(k) for k in COSTS}
        if all(v is not None for v in measured.values()):
            self.costs.setdefault(record["key"], measured)
        search = phase(record) == SEARCH
        self.searched += search
        if not is_trained(record) or not self._evaluated(record["status"]):
            self.reevaluations_lost += not search
            return
        if record.get("seed") is not None:
            self.seeds[record["key"]].add(int(record["seed"]))
        if search:
            self.rewards[record["key"]].append(float(record["reward"]))
            self.first_trial.setdefault(record["key"], record["trial_id"])
        else:
            self.extra[record["key"]].append(float(record["reward"]))

    def _save(self) -> None:
        """Save the state now if the last save is ``STATE_SECONDS`` old; else at a later
        record or at :meth:`save` (the ledger has what the state lacks meanwhile)."""
        if time.monotonic() - self.saved_at >= STATE_SECONDS:
            self.save_now()
        else:
            self.unsaved = True

    def save_now(self) -> None:
        """Save the algorithm's state with the number of ledger records it reflects."""
        save_state(
            self.state_path,
            {"ledger_position": len(self.ledger), "algorithm": self.algorithm.state_dict()},
        )
        self.saved_at = time.monotonic()
        self.unsaved = False

    def flush(self) -> None:
        """Save the state if records were learnt from since the last save."""
        if self.unsaved:
            self.save_now()

    def _resume(self, records: list[dict[str, Any]]) -> None:
        """Continue from the saved state plus the ledger records written after it."""
        if not self.state_path.exists():
            if len(self.ledger):
                raise ValueError(
                    f"{self.ledger.path} has {len(self.ledger)} records but "
                    f"{self.state_path.name} is missing: this folder was not written by a "
                    "search, or its controller state was deleted; start a new --out folder"
                )
            self.save_now()
            return
        saved = load_state(self.state_path)
        self.algorithm.load_state_dict(saved["algorithm"])
        outstanding = {p.id: p for p in self.algorithm.outstanding}
        for record in records[saved["ledger_position"] :]:
            if phase(record) == REEVALUATION:
                continue  # not a controller sample: nothing to feed back
            step = int(record["controller_step"])
            # proposed after the state was saved: the restored algorithm proposes the same
            # again, in the same order, up to as many as it had made when it learnt from this
            # record (older ledgers lack the count; their state was saved at every record)
            made = max(int(record.get("controller_proposals", 0)), step + 1)
            while self.algorithm.num_proposals < made:
                again = self.algorithm.propose()
                outstanding[again.id] = again
            proposal = outstanding.pop(step, None)
            if proposal is not None and proposal.key != record["key"]:
                proposal = None
            if proposal is None:
                raise ValueError(
                    f"ledger record of trial {record['trial_id']} (controller step "
                    f"{record['controller_step']}) is not outstanding in {self.state_path}; "
                    "the ledger and the controller state do not belong together"
                )
            self._learn(proposal, record)
        self.pending = list(outstanding.values())  # proposed, never finished: evaluate them
        self.save_now()

    def _learn(self, proposal: Proposal, record: dict[str, Any]) -> None:
        """Feed a search record's reward back (a duplicate's is the replayed one), or discard
        the proposal when the record has no reward that measures the architecture."""
        if record["status"] == "duplicate" or self._evaluated(record["status"]):
            self.algorithm.feedback(proposal, float(record["reward"]))
        else:
            self.algorithm.discard(proposal)

    @property
    def issued(self) -> int:
        """Controller samples that have, or will get, a ledger record."""
        held = sum(len(v) for v in self.waiting.values())
        return self.searched + len(self.live) + held + len(self.pending)

    @property
    def finished(self) -> bool:
        """Every sample recorded and every planned re-evaluation too."""
        if self.searched < self.cfg.trials or self.pending or self.live or self.reevaluating:
            return False
        return not (self.plan if self.plan is not None else self._plan())

    def _free_seed(self, key: str, start: int, taken: set[int] = frozenset()) -> int:
        """The smallest seed from ``start`` that ``key`` was not trained (or is not training)
        with: every training of one architecture uses a seed of its own."""
        seed = start
        while seed in self.seeds[key] or seed in taken:
            seed += 1
        return seed

    def _plan(self) -> list[Reevaluation]:
        """The re-evaluations still to run, derived from the ledger alone (so a resumed search
        derives the same plan): for each of the top ``reevaluate_top`` architectures of the
        search phase, ``reevaluate_seeds`` runs less its re-evaluation records with a reward
        (one without, an error say, is planned again: its seed is free, so it gets the same)."""
        if not self.cfg.reevaluations:
            return []
        records = self.ledger.records  # read from the file (the ledger keeps no records)
        done: dict[str, int] = defaultdict(int)
        for record in records:
            if phase(record) == REEVALUATION and self._evaluated(record["status"]):
                done[record["key"]] += 1
        for job, _ in self.reevaluating.values():
            done[job.key] += 1
        first = {}
        for record in records:
            if phase(record) == SEARCH and record["status"] == "ok" and is_trained(record):
                first.setdefault(record["key"], record)
        jobs = []
        # after a proxy search, seeds after the search run's; after a shared-weight search
        # (whose scores have no seed), from the proxy's own
        start = self.base_seed + (self.cfg.reward == PROXY)
        for key in top_search_keys(records, self.cfg.reevaluate_top):
            taken: set[int] = set()
            for _ in range(self.cfg.reevaluate_seeds - done[key]):
                seed = self._free_seed(key, start, taken)
                taken.add(seed)
                origin = first[key]
                jobs.append(Reevaluation(key, seed, origin["genotype"], origin["trial_id"],
                                         int(origin["controller_step"])))  # fmt: skip
        return jobs

    # -- Tune's searcher API ---------------------------------------------------------------------

    def start_run(self, trials: int | None) -> None:
        """A new Tune run begins: it may start at most ``trials`` trials (None: no limit);
        after them ``suggest`` says FINISHED to that run, and the driver starts the next."""
        self.run_left = trials

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.run_left is not None and self.run_left <= 0:
            return Searcher.FINISHED  # this Tune run is full (see start_run)
        config = self.suggest_search(trial_id)
        return config if config is not None else self._suggest_reevaluation(trial_id)

    def suggest_search(self, trial_id: str) -> dict[str, Any] | None:
        """The next controller sample to evaluate as ``trial_id`` (duplicates are recorded on
        the way), or None once every sample is issued. The one-shot driver calls it directly
        (nasfpn.search.scoring); Tune through :meth:`suggest`."""
        while True:
            if self.pending:
                proposal = self.pending.pop(0)
            elif self.issued >= self.cfg.trials:
                return None
            else:
                # not saved here: a resumed search proposes it again (see _resume)
                proposal = self.algorithm.propose()
            key = proposal.key
            if self._replayable(key):
                self._record_duplicate(proposal)
                continue
            if self.training[key] and self._evaluations_left(key) <= self.training[key]:
                # the same architecture is training right now: replay its reward when it ends
                self.waiting[key].append(proposal)
                continue
            seed = None  # a shared-weight score has no seed
            if self.cfg.reward == PROXY:
                seed = self._free_seed(key, self.base_seed)
                self.seeds[key].add(seed)
            self.training[key] += 1
            self.live[trial_id] = (proposal, time.time(), seed)
            return self._started(trial_id, {
                "actions": actions_text(proposal.actions),
                "key": key,
                "controller_step": proposal.id,
                "seed": seed,
                "phase": SEARCH,
            })  # fmt: skip

    def _suggest_reevaluation(self, trial_id: str) -> dict[str, Any] | str | None:
        if not self.cfg.reevaluations:
            return Searcher.FINISHED
        if self.live or self.waiting:
            return None  # the ranking is not final until every search trial has ended
        if self.plan is None:
            self.plan = self._plan()
            if self.plan and self.log is not None:
                keys = len({job.key for job in self.plan})
                how = ("stand-alone proxy training" if self.cfg.reward == SUPERNET
                       else "more seeds")  # fmt: skip
                self.log(f"re-evaluating the top {keys} architectures with {how}: "
                         f"{len(self.plan)} trials", flush=True)  # fmt: skip
        if not self.plan:
            return Searcher.FINISHED
        job = self.plan.pop(0)
        self.seeds[job.key].add(job.seed)
        self.reevaluating[trial_id] = (job, time.time())
        actions = self.algorithm.space.encode(Genotype.from_dict(job.genotype))
        return self._started(trial_id, {
            "actions": actions_text(actions),
            "key": job.key,
            "controller_step": job.controller_step,
            "seed": job.seed,
            "phase": REEVALUATION,
        })  # fmt: skip

    def _started(self, trial_id: str, config: dict[str, Any]) -> dict[str, Any]:
        # the architecture's first training measures its cost (a trial that fails to leaves it
        # for the next one of the same architecture)
        if self.cfg.costs_measured and config["key"] not in self.costs:
            config["measure_cost"] = True  # absent otherwise: trial configs stay small
        if self.run_left is not None:
            self.run_left -= 1
        if self.on_start is not None:
            self.on_start(trial_id, config)
        return config

    def _evaluations_left(self, key: str) -> int:
        allowed = self.cfg.max_evaluations if self.cfg.duplicates == "reevaluate" else 1
        return allowed - len(self.rewards[key])

    def _replayable(self, key: str) -> bool:
        return bool(self.rewards[key]) and self._evaluations_left(key) <= 0

    def _replayed_reward(self, key: str) -> float:
        extra = self.extra[key] if self.cfg.reevaluate_feedback else []
        return statistics.fmean([*self.rewards[key], *extra])

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        result = self._whole_result(trial_id, result)
        if trial_id in self.reevaluating:
            job, start = self.reevaluating.pop(trial_id)
            record = self._trial_record(trial_id, result, error, start, job.seed, job.key)
            record.update(controller_step=job.controller_step, origin=REEVALUATION,
                          actions=None, genotype=job.genotype, key=job.key,
                          reevaluation_of=job.of, phase=REEVALUATION)  # fmt: skip
            if not self._evaluated(record["status"]):
                self.seeds[job.key].discard(job.seed)  # no reward: a resume runs it again
            self._append(None, record)
            self._save()
            return
        if trial_id not in self.live:
            return  # a trial of an earlier driver (Tune restored it): already accounted for
        proposal, start, seed = self.live.pop(trial_id)
        self.training[proposal.key] -= 1
        record = self._trial_record(trial_id, result, error, start, seed, proposal.key)
        if not self._evaluated(record["status"]) and seed is not None:
            self.seeds[proposal.key].discard(seed)  # no reward: a retraining may use it again
        record.update(controller_step=proposal.id, origin=proposal.origin,
                      actions=list(proposal.actions), genotype=proposal.genotype.to_dict(),
                      key=proposal.key)  # fmt: skip
        self._append(proposal, record)
        for held in self.waiting.pop(proposal.key, []):
            if self._replayable(proposal.key):
                self._record_duplicate(held)
            else:  # its evaluation failed: evaluate the held proposal itself
                self.pending.append(held)
        self._save()

    def _whole_result(self, trial_id: str, result: dict[str, Any] | None) -> dict[str, Any] | None:
        """Tune's last result of a trial, completed with what it left on the board (taken off
        the board whatever happened, so that nothing stays behind there)."""
        left = self.fetch_result(trial_id) if self.fetch_result is not None else None
        if left is not None:
            return {**(result or {}), **left}
        if result is not None and result.get("on_board"):
            # the board was lost (its node failed): the ledger gets what Tune had
            return {**result, "reason": "its full result was lost with the driver's board actor"}
        return result

    def _trial_record(
        self,
        trial_id: str,
        result: dict[str, Any] | None,
        error: bool,
        start: float,
        seed: int | None,
        key: str,
    ) -> dict[str, Any]:
        """The ledger record of a finished Tune trial, less what identifies the architecture.

        Its reward is the search's objective (docs/cost.md): the AP alone, or the AP weighed by
        the architecture's cost (measured by this trial or an earlier one of ``key``); a run
        that ended ``ok`` but whose cost is unknown is recorded ``failed``, with the reason."""
        result = result or {}
        if error:
            status = "error"
            reason = "the trial's worker failed"
            if self.cfg.max_failures:
                reason += f" {self.cfg.max_failures + 1} times (Ray retried it)"
        elif result.get("final"):
            status, reason = result.get("status", "failed"), result.get("reason", "")
        else:
            status, reason = "early_stopped", "stopped early by the scheduler (ASHA)"
        if status in ("ok", "early_stopped"):
            reward = float(result.get("AP", 0.0))
        else:
            reward = self.cfg.penalty
        objective = self.cfg.objective
        if objective.active and status in ("ok", "early_stopped"):
            cost = result.get(objective.cost_column)
            if cost is None:
                cost = self.costs.get(key, {}).get(objective.cost_column)
            if cost is None:
                status, reward = "failed", self.cfg.penalty
                reason = ("its cost could not be measured: "
                          f"{result.get('cost_error', 'no measurement')}")  # fmt: skip
            else:
                reward = objective.value(reward, float(cost))
        return {
            "trial_id": trial_id,
            "reward": reward,
            "status": status,
            "error": reason or None,
            "duplicate_of": None,
            "phase": SEARCH,
            "seed": seed,
            # a stand-alone proxy training (`proxy`) or a score on shared weights (`supernet`)
            "reward_source": result.get("reward_source", PROXY),
            "precision": result.get("precision"),
            # rewards are reproducible per CPU model and precision (docs/proxy.md)
            "cpu_model": result.get("cpu_model"),
            "gpu_model": result.get("gpu_model"),
            "metrics": {k: result[k] for k in (*METRICS, *EXTRA, *COST) if k in result},
            "losses": _losses(result),
            "node": result.get("node") or result.get("node_ip"),
            "start_time": start,
            "end_time": time.time(),
            "config_hash": self.config_hash,
        }

    def _record_duplicate(self, proposal: Proposal) -> None:
        now = time.time()
        record = {
            "trial_id": f"dup-{proposal.id}",
            "controller_step": proposal.id,
            "origin": proposal.origin,
            "actions": list(proposal.actions),
            "genotype": proposal.genotype.to_dict(),
            "key": proposal.key,
            "reward": self._replayed_reward(proposal.key),
            "status": "duplicate",
            "error": None,
            "duplicate_of": self.first_trial[proposal.key],
            "phase": SEARCH,
            "seed": None,
            "reward_source": self.cfg.reward,  # that of the search-phase rewards replayed
            "precision": None,
            "cpu_model": None,
            "gpu_model": None,
            "metrics": {},
            "losses": {},
            "node": socket.gethostname(),
            "start_time": now,
            "end_time": now,
            "config_hash": self.config_hash,
        }
        self._append(proposal, record)
        self._save()

    def _append(self, proposal: Proposal | None, record: dict[str, Any]) -> None:
        """Write ``record`` to the ledger, then let the controller learn from it (a
        re-evaluation, ``proposal`` None, teaches it nothing)."""
        record = _finite(record)
        if proposal is not None:  # the order of proposals and feedback, for a resume
            record["controller_proposals"] = self.algorithm.num_proposals
        self.ledger.append(record)  # the ledger first: it is the source of truth
        self._remember(record)
        if proposal is not None:
            self._learn(proposal, record)
        if self.on_record is not None:
            self.on_record(record)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles the searcher into its experiment folder (tuner.pkl) at each Tune run; that
        # copy is never used (a search resumes from the ledger and STATE_FILE), so what grows
        # with the search (the ledger's records, the bookkeeping per architecture) and the
        # callbacks (a TensorBoard writer, the console) stay behind: 8.5 MB at 10,000 trials
        # otherwise
        light = ("ledger", "algorithm", "rewards", "extra", "seeds", "first_trial", "training",
                 "on_record", "log", "on_start", "fetch_result")  # fmt: skip
        return {**self.__dict__, **dict.fromkeys(light)}

    # Tune saves and restores searchers in its own experiment checkpoints; this searcher's
    # state lives in the ledger and STATE_FILE instead, so those are no-ops.
    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass
