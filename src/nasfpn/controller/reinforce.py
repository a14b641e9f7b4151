"""REINFORCE with an exponential-moving-average baseline (Williams 1992; Zoph & Le 2017).

The LSTM policy (:mod:`nasfpn.controller.policy`) samples proposals; every ``batch_size``
feedbacks it takes one Adam step on

    loss = -mean_k(A_k * log p(a_k)) - entropy_weight * mean_k(H_k)

where ``a_k`` are the exact actions that were evaluated (scored again by the current network,
never resampled), ``A_k = R_k - b`` with ``b`` an exponential moving average of past rewards
(Zoph & Le 2017 section 3.2; ENAS ``bl_dec``), and ``H_k`` the entropy of the distributions
``a_k`` was drawn from (the ENAS entropy bonus). With ``normalize_advantages`` the advantages
are divided by a moving root-mean-square of past advantages, so the learning rate does not
depend on the scale of the reward (an AP of 0.25 +- 0.01 and a match fraction of 0.6 +- 0.1
train alike).

Proposals are sampled ``batch_size`` at a time in one batched LSTM pass and handed out one by
one; the sampled proposals not yet handed out are dropped at each update, so every proposal
comes from the current policy. Proposals that are outstanding across an update come from the
previous policy; REINFORCE uses them as they are, PPO (:mod:`nasfpn.controller.ppo`) corrects
for it with its probability ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from nasfpn.controller.base import Algorithm, Proposal
from nasfpn.controller.options import check_bool, check_number
from nasfpn.controller.policy import LSTMPolicy
from nasfpn.space import SearchSpace

_MASK_CACHE_SIZE = 4096


@dataclass(frozen=True)
class ReinforceConfig:
    """REINFORCE options; the defaults were tuned on ``nasfpn bench-search`` (benchmarks/).

    - ``batch_size``: feedbacks per update (K);
    - ``lr``: Adam learning rate;
    - ``hidden_size``, ``num_layers``: the LSTM (the embeddings are ``hidden_size`` wide);
    - ``temperature``: logits are divided by it before the tanh;
    - ``tanh_constant``: logits become ``c * tanh(logits)`` (ENAS); None turns it off;
    - ``entropy_weight``: weight of the entropy bonus;
    - ``baseline_decay``: the EMA baseline's decay, ``b <- d * b + (1 - d) * R``;
    - ``normalize_advantages``: divide advantages by their moving root-mean-square.
    """

    batch_size: int = 10
    lr: float = 0.02
    hidden_size: int = 64
    num_layers: int = 1
    temperature: float = 2.0
    tanh_constant: float | None = None
    entropy_weight: float = 0.1
    baseline_decay: float = 0.95
    normalize_advantages: bool = True
    position_embedding: bool = True
    decision_bias: bool = True

    def __post_init__(self) -> None:
        check_number(self, "batch_size", int, low=1)
        check_number(self, "lr", float, low=0, low_open=True)
        check_number(self, "hidden_size", int, low=1)
        check_number(self, "num_layers", int, low=1)
        check_number(self, "temperature", float, low=0, low_open=True)
        check_number(self, "tanh_constant", float, low=0, low_open=True, optional=True)
        check_number(self, "entropy_weight", float, low=0)
        check_number(self, "baseline_decay", float, low=0, high=1, high_open=True)
        check_bool(self, "normalize_advantages")
        check_bool(self, "position_embedding")
        check_bool(self, "decision_bias")


class Reinforce(Algorithm):
    """The RNN controller trained with REINFORCE (the default policy-gradient update)."""

    name: ClassVar[str] = "reinforce"
    Config: ClassVar[type] = ReinforceConfig
    config: ReinforceConfig

    def __init__(
        self, space: SearchSpace, seed: int = 0, config: ReinforceConfig | None = None
    ) -> None:
        super().__init__(space, seed, config if config is not None else type(self).Config())
        cfg = self.config
        self._generator = torch.Generator().manual_seed(seed)
        self.policy = LSTMPolicy(
            space,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            temperature=cfg.temperature,
            tanh_constant=cfg.tanh_constant,
            position=cfg.position_embedding,
            decision_bias=cfg.decision_bias,
            generator=self._generator,
        )
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr)
        self._sampled: list[tuple[list[int], float]] = []  # (actions, logp), not handed out
        # legal-choice masks of sampled sequences, so that an update need not recompute them;
        # only a cache (bounded, not saved): a missing entry is recomputed from the actions
        self._mask_cache: dict[tuple[int, ...], Tensor] = {}
        self._batch: list[tuple[Proposal, float]] = []  # fed back, waiting for the update
        self._baseline: float | None = None
        self._adv_sq: float | None = None  # moving mean of squared advantages
        self._num_updates = 0
        self._last: dict[str, float] = {"policy_entropy": math.nan, **self._update_nans()}

    # -- proposing -----------------------------------------------------------------------------

    def _propose(self) -> tuple[Sequence[int], dict[str, Any]]:
        if not self._sampled:
            samples = self.policy.sample(self.config.batch_size, self._generator)
            self._sampled = list(zip(samples.actions.tolist(), samples.logp.tolist()))
            if len(self._mask_cache) > _MASK_CACHE_SIZE:
                self._mask_cache.clear()
            for actions, masks in zip(samples.actions.tolist(), samples.masks):
                self._mask_cache[tuple(actions)] = masks
            self._last["policy_entropy"] = samples.entropy.mean().item()
        actions, logp = self._sampled.pop(0)
        return actions, {"origin": "policy", "logp": logp}

    # -- learning ------------------------------------------------------------------------------

    def _learn(self, proposal: Proposal, reward: float) -> None:
        self._batch.append((proposal, reward))
        if len(self._batch) < self.config.batch_size:
            return
        batch, self._batch = self._batch, []
        self._update(batch)
        self._sampled = []  # sampled by the old policy: sample afresh from the new one
        self._num_updates += 1

    def _update(self, batch: list[tuple[Proposal, float]]) -> None:
        cfg = self.config
        rewards = torch.tensor([r for _, r in batch], dtype=torch.float64)
        if self._baseline is None:
            self._baseline = rewards.mean().item()
        raw = rewards - self._baseline
        if self._adv_sq is None:
            self._adv_sq = raw.square().mean().item()
        for r in rewards.tolist():
            self._baseline = cfg.baseline_decay * self._baseline + (1 - cfg.baseline_decay) * r
        for a in raw.tolist():
            self._adv_sq = cfg.baseline_decay * self._adv_sq + (1 - cfg.baseline_decay) * a * a
        adv = raw
        if cfg.normalize_advantages:
            adv = raw / max(math.sqrt(self._adv_sq), 1e-8)
        actions = torch.tensor([p.actions for p, _ in batch])
        masks = torch.stack([self._masks(p.actions) for p, _ in batch])
        old_logp = torch.tensor([p.logp for p, _ in batch])
        stats = self._optimize(actions, masks, adv.float(), old_logp)
        self._last.update(
            baseline=self._baseline,
            reward_mean=rewards.mean().item(),
            advantage_mean=raw.mean().item(),
            advantage_std=raw.std(unbiased=False).item(),
            **stats,
        )

    def _optimize(
        self, actions: Tensor, masks: Tensor, adv: Tensor, old_logp: Tensor
    ) -> dict[str, float]:
        """One gradient step on the batch; returns figures for :meth:`diagnostics`."""
        logp, entropy = self.policy.evaluate(actions, masks)
        loss = -(adv * logp).mean() - self.config.entropy_weight * entropy.mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}

    def _masks(self, actions: tuple[int, ...]) -> Tensor:
        masks = self._mask_cache.pop(actions, None)
        return masks if masks is not None else self.policy.masks([actions])[0]

    # -- diagnostics and state -----------------------------------------------------------------

    def _update_nans(self) -> dict[str, float]:
        names = ("baseline", "reward_mean", "advantage_mean", "advantage_std", "loss")
        return dict.fromkeys(names, math.nan)

    def _diagnostics(self) -> dict[str, float]:
        per_decision = self._last["policy_entropy"] / self.policy.num_steps
        return {
            "updates": float(self._num_updates),
            "policy_entropy_per_decision": per_decision,
            **self._last,
        }

    def _state(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self._generator.get_state(),
            "sampled": [[list(a), lp] for a, lp in self._sampled],
            "batch": [[p.to_dict(), r] for p, r in self._batch],
            "baseline": self._baseline,
            "adv_sq": self._adv_sq,
            "num_updates": self._num_updates,
            "last": dict(self._last),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._generator.set_state(state["generator"])
        self._sampled = [([int(x) for x in a], float(lp)) for a, lp in state["sampled"]]
        self._batch = [(Proposal.from_dict(d, self.space), float(r)) for d, r in state["batch"]]
        self._baseline = _opt_float(state["baseline"])
        self._adv_sq = _opt_float(state["adv_sq"])
        self._num_updates = int(state["num_updates"])
        self._last = {k: float(v) for k, v in state["last"].items()}


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
