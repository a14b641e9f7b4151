"""The controller behind Ray Tune's ``Searcher`` API, with the ledger and resumable state.

``suggest`` asks the algorithm for a proposal and hands its genotype to Tune as a trial's
config; ``on_trial_complete`` appends the trial's record to the ledger, then feeds the reward
back. A proposal whose architecture was already evaluated is not trained again: its recorded
reward is replayed (or, with ``duplicates: reevaluate``, it is trained until it has
``max_evaluations`` results, whose mean is replayed after that).

After every event the algorithm's state is saved atomically with the number of ledger records
it has learnt from. A search killed at any point resumes from that state: ledger records after
it are fed back, proposals it holds without a record are evaluated first, and nothing finished
is trained twice (docs/search.md).
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from ray.tune.search import Searcher

from nasfpn.controller import Algorithm, Proposal
from nasfpn.search.config import SearchConfig
from nasfpn.search.ledger import Ledger

STATE_FILE = "controller.pt"
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
EXTRA = ("params", "flops", "train_seconds", "eval_seconds", "epochs", "iterations",
         "worker_start", "worker_end")  # fmt: skip
# statuses whose reward says something about the architecture (replayed for duplicates)
EVALUATED = ("ok", "diverged", "early_stopped")


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
    ) -> None:
        super().__init__(metric="AP", mode="max")
        self.algorithm = algorithm
        self.ledger = ledger
        self.state_path = Path(state_path)
        self.cfg = cfg
        self.config_hash = config_hash
        self.on_record = on_record
        self.live: dict[str, tuple[Proposal, float]] = {}  # Tune trial id -> proposal, start
        self.waiting: dict[str, list[Proposal]] = defaultdict(list)  # key -> held duplicates
        self.pending: list[Proposal] = []  # restored proposals to evaluate before new ones
        self.rewards: dict[str, list[float]] = defaultdict(list)  # key -> evaluated rewards
        self.first_trial: dict[str, str] = {}  # key -> trial id of its first evaluation
        self.training: dict[str, int] = defaultdict(int)  # key -> trials running now
        for record in ledger.records:
            self._remember(record)
        self._resume()

    # -- bookkeeping ---------------------------------------------------------------------------

    def _remember(self, record: dict[str, Any]) -> None:
        if record["status"] in EVALUATED and record.get("duplicate_of") is None:
            self.rewards[record["key"]].append(float(record["reward"]))
            self.first_trial.setdefault(record["key"], record["trial_id"])

    def _save(self) -> None:
        save_state(
            self.state_path,
            {"ledger_position": len(self.ledger), "algorithm": self.algorithm.state_dict()},
        )

    def _resume(self) -> None:
        """Continue from the saved state plus the ledger records written after it."""
        if not self.state_path.exists():
            if len(self.ledger):
                raise ValueError(
                    f"{self.ledger.path} has {len(self.ledger)} records but "
                    f"{self.state_path.name} is missing: this folder was not written by a "
                    "search, or its controller state was deleted; start a new --out folder"
                )
            self._save()
            return
        saved = load_state(self.state_path)
        self.algorithm.load_state_dict(saved["algorithm"])
        outstanding = {p.id: p for p in self.algorithm.outstanding}
        for record in self.ledger.records[saved["ledger_position"] :]:
            proposal = outstanding.pop(record["controller_step"], None)
            if proposal is None:
                raise ValueError(
                    f"ledger record of trial {record['trial_id']} (controller step "
                    f"{record['controller_step']}) is not outstanding in {self.state_path}; "
                    "the ledger and the controller state do not belong together"
                )
            self._learn(proposal, record)
        self.pending = list(outstanding.values())  # proposed, never finished: evaluate them
        self._save()

    def _learn(self, proposal: Proposal, record: dict[str, Any]) -> None:
        if record["status"] in EVALUATED:
            self.algorithm.feedback(proposal, float(record["reward"]))
        else:
            self.algorithm.discard(proposal)

    @property
    def issued(self) -> int:
        """Proposals that have, or will get, a ledger record."""
        held = sum(len(v) for v in self.waiting.values())
        return len(self.ledger) + len(self.live) + held + len(self.pending)

    @property
    def finished(self) -> bool:
        return len(self.ledger) >= self.cfg.trials

    # -- Tune's searcher API ---------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        while True:
            if self.pending:
                proposal = self.pending.pop(0)
            elif self.issued >= self.cfg.trials:
                return Searcher.FINISHED
            else:
                proposal = self.algorithm.propose()
                self._save()
            key = proposal.key
            if self._replayable(key):
                self._record_duplicate(proposal)
                continue
            if self.training[key] and self._evaluations_left(key) <= self.training[key]:
                # the same architecture is training right now: replay its reward when it ends
                self.waiting[key].append(proposal)
                continue
            self.training[key] += 1
            self.live[trial_id] = (proposal, time.time())
            return {
                "genotype": proposal.genotype.to_dict(),
                "key": key,
                "controller_step": proposal.id,
            }

    def _evaluations_left(self, key: str) -> int:
        allowed = self.cfg.max_evaluations if self.cfg.duplicates == "reevaluate" else 1
        return allowed - len(self.rewards[key])

    def _replayable(self, key: str) -> bool:
        return bool(self.rewards[key]) and self._evaluations_left(key) <= 0

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id not in self.live:
            return  # a trial of an earlier driver (Tune restored it): already accounted for
        proposal, start = self.live.pop(trial_id)
        self.training[proposal.key] -= 1
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
        record = {
            "trial_id": trial_id,
            "controller_step": proposal.id,
            "origin": proposal.origin,
            "actions": list(proposal.actions),
            "genotype": proposal.genotype.to_dict(),
            "key": proposal.key,
            "reward": reward,
            "status": status,
            "error": reason or None,
            "duplicate_of": None,
            "metrics": {k: result[k] for k in (*METRICS, *EXTRA) if k in result},
            "losses": _losses(result),
            "node": result.get("node") or result.get("node_ip"),
            "start_time": start,
            "end_time": time.time(),
            "config_hash": self.config_hash,
        }
        self._append(proposal, record)
        for held in self.waiting.pop(proposal.key, []):
            if self._replayable(proposal.key):
                self._record_duplicate(held)
            else:  # its evaluation failed: evaluate the held proposal itself
                self.pending.append(held)
        self._save()

    def _record_duplicate(self, proposal: Proposal) -> None:
        rewards = self.rewards[proposal.key]
        now = time.time()
        record = {
            "trial_id": f"dup-{proposal.id}",
            "controller_step": proposal.id,
            "origin": proposal.origin,
            "actions": list(proposal.actions),
            "genotype": proposal.genotype.to_dict(),
            "key": proposal.key,
            "reward": statistics.fmean(rewards),
            "status": "duplicate",
            "error": None,
            "duplicate_of": self.first_trial[proposal.key],
            "metrics": {},
            "losses": {},
            "node": socket.gethostname(),
            "start_time": now,
            "end_time": now,
            "config_hash": self.config_hash,
        }
        self._append(proposal, record)
        self._save()

    def _append(self, proposal: Proposal, record: dict[str, Any]) -> None:
        record = _finite(record)
        self.ledger.append(record)  # the ledger first: it is the source of truth
        self._remember(record)
        if record["status"] == "duplicate":
            self.algorithm.feedback(proposal, record["reward"])
        else:
            self._learn(proposal, record)
        if self.on_record is not None:
            self.on_record(record)

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles the searcher into its experiment folder; the progress callback (which
        # holds a TensorBoard writer) stays behind
        return {**self.__dict__, "on_record": None}

    # Tune saves and restores searchers in its own experiment checkpoints; this searcher's
    # state lives in the ledger and STATE_FILE instead, so those are no-ops.
    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass
