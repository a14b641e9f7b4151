"""PPO: the clipped surrogate objective over several epochs per batch (Schulman et al. 2017).

NAS-FPN trained its RNN controller with PPO (paper section 3; the NASNet controller of Zoph et
al. 2018 likewise). This is :class:`~nasfpn.controller.reinforce.Reinforce` with another
update: for ``epochs`` passes over the batch of ``batch_size`` feedbacks (one full-batch Adam
step each), maximise

    mean_k min(rho_k * A_k, clip(rho_k, 1 - clip, 1 + clip) * A_k) + entropy_weight * mean_k H_k

with ``rho_k = p(a_k) / p_old(a_k)``, ``p_old(a_k)`` the probability recorded when ``a_k`` was
sampled (``Proposal.logp``) and ``p(a_k)`` the current network's probability of those exact
actions. The advantages are REINFORCE's (EMA baseline, optional normalisation); there is no
value network, as a proposal is one action sequence with one reward. The ratio also corrects
for proposals that were sampled before an earlier update and fed back after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from nasfpn.controller.options import check_number
from nasfpn.controller.reinforce import Reinforce, ReinforceConfig


@dataclass(frozen=True)
class PPOConfig(ReinforceConfig):
    """PPO options: REINFORCE's (with PPO's tuned defaults) plus ``epochs`` and ``clip``.

    - ``epochs``: optimisation passes over each batch;
    - ``clip``: the ratio is clipped to ``[1 - clip, 1 + clip]`` (PPO's epsilon).

    ``entropy_weight`` applies at each of the ``epochs`` steps, so PPO's default is
    REINFORCE's divided by ``epochs``. PPO keeps ENAS's tanh clipping: with REINFORCE it let
    logits saturate when batches were stale (many workers), while PPO's clipped ratio bounds
    each update (benchmarks/README.md).
    """

    lr: float = 0.01
    temperature: float = 1.0
    tanh_constant: float | None = 5.0
    entropy_weight: float = 0.05
    epochs: int = 2
    clip: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self, "epochs", int, low=1)
        check_number(self, "clip", float, low=0, high=1, low_open=True, high_open=True)


class PPO(Reinforce):
    """The RNN controller trained with PPO's clipped objective, as the paper trained it."""

    name: ClassVar[str] = "ppo"
    Config: ClassVar[type] = PPOConfig
    config: PPOConfig

    def _optimize(
        self, actions: Tensor, masks: Tensor, adv: Tensor, old_logp: Tensor
    ) -> dict[str, float]:
        cfg = self.config
        for _ in range(cfg.epochs):
            logp, entropy = self.policy.evaluate(actions, masks)
            ratio = (logp - old_logp).exp()
            surrogate = torch.min(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv)
            loss = -surrogate.mean() - cfg.entropy_weight * entropy.mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            # figures of the last epoch's ratio: how far the policy moved from the sampler
            log_ratio = logp.detach() - old_logp
            clipped = ((log_ratio.exp() - 1).abs() > cfg.clip).float().mean()
        return {
            "loss": loss.item(),
            "approx_kl": (-log_ratio).mean().item(),
            "clip_fraction": clipped.item(),
        }

    def _update_nans(self) -> dict[str, float]:
        return {**super()._update_nans(), "approx_kl": float("nan"), "clip_fraction": float("nan")}
