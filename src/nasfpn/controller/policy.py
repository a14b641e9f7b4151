"""The RNN controller: an LSTM that walks the space's decisions (Zoph & Le 2017; ENAS).

At step ``t`` the LSTM reads the embedding of the previous decision's action (a learned start
vector at ``t = 0``) plus a learned position vector of step ``t``, and one linear softmax per
decision group (``input``, ``level``, ``op``; ``space.decisions[t].group``) plus a learned bias
of decision ``t`` gives the logits of decision ``t``. As in ENAS (Pham et al. 2018,
``enas/micro/micro_controller.py``) the logits are divided by a sampling temperature and then
squashed by ``tanh_constant * tanh(.)``; illegal choices (``space.legal(prefix)``) get
probability zero, so every sample decodes. A group's softmax is as wide as its widest
decision; a narrower decision (an early cell's inputs) masks the extra choices.

The position vectors and decision biases are not in Zoph & Le's controller. With one softmax
shared by all cells, a plain LSTM must carry "which cell is this" in its state before it can
prefer different actions in different cells; on the known-landscape benchmark it needed about
3x the samples (``position=False, decision_bias=False`` restores it; benchmarks/README.md).

Sampling runs ``n`` sequences through the LSTM together, one step at a time; scoring stored
actions (:meth:`LSTMPolicy.evaluate`) runs the whole sequence in one LSTM call. Both compute
each step's distribution with the same code, so the log-probability recorded at sampling time
equals the one recomputed in an update (up to float32 rounding, ~1e-6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nasfpn.space import SearchSpace


@dataclass(frozen=True)
class Samples:
    """``n`` sequences sampled by :meth:`LSTMPolicy.sample`.

    ``actions`` is ``(n, T)``; ``logp`` and ``entropy`` are ``(n,)``: the sum over the ``T``
    decisions of the log-probability of the chosen action and of the entropy of the masked
    distribution it was drawn from; ``masks`` is ``(n, T, W)``, the legal choices of each step.
    """

    actions: Tensor
    logp: Tensor
    entropy: Tensor
    masks: Tensor


class LSTMPolicy(nn.Module):
    """An autoregressive policy over the decisions of ``space``.

    ``hidden_size`` is the LSTM width and the embedding width; parameters start uniform in
    ``[-init_range, init_range]`` (ENAS), drawn from ``generator`` (never the global RNG).
    ``tanh_constant=None`` turns logit clipping off.
    """

    def __init__(
        self,
        space: SearchSpace,
        hidden_size: int = 64,
        num_layers: int = 1,
        temperature: float = 1.0,
        tanh_constant: float | None = None,
        position: bool = True,
        decision_bias: bool = True,
        init_range: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.space = space
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.groups = tuple(d.group for d in space.decisions)
        widths = {g: space.max_choices(g) for g in sorted(set(self.groups))}
        self.width = max(widths.values())
        self.start = nn.Parameter(torch.empty(1, hidden_size))
        self.embed = nn.ModuleDict({g: nn.Embedding(w, hidden_size) for g, w in widths.items()})
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers)
        self.heads = nn.ModuleDict({g: nn.Linear(hidden_size, w) for g, w in widths.items()})
        # (T, H) added to step t's input; (T, W) added to decision t's logits. Zero when off.
        self.position = nn.Parameter(torch.zeros(len(self.groups), hidden_size), position)
        self.decision_bias = nn.Parameter(torch.zeros(len(self.groups), self.width), decision_bias)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name not in ("position", "decision_bias"):  # those start at zero
                    p.uniform_(-init_range, init_range, generator=generator)

    @property
    def num_steps(self) -> int:
        return len(self.groups)

    def log_probs(self, h: Tensor, t: int, mask: Tensor) -> Tensor:
        """Masked log-probabilities of decision ``t`` from LSTM output ``h``: (n, H) -> (n, W)."""
        group = self.groups[t]
        logits = self.heads[group](h)
        # (n, w_group) -> (n, W): a narrower group's softmax is padded with illegal choices
        logits = nn.functional.pad(logits, (0, self.width - logits.shape[1]), value=0)
        logits = logits + self.decision_bias[t]
        logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return torch.log_softmax(logits.masked_fill(~mask, -torch.inf), dim=-1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Samples:
        """Draw ``n`` legal action sequences in one batched pass, with their exact log-probs."""
        x = self.start.expand(n, -1) + self.position[0]
        state = None
        prefixes: list[list[int]] = [[] for _ in range(n)]
        logp = torch.zeros(n)
        entropy = torch.zeros(n)
        masks = []
        for t in range(self.num_steps):
            out, state = self.lstm(x.unsqueeze(0), state)  # (1, n, H)
            mask = self._masks_at(prefixes)  # (n, W)
            lp = self.log_probs(out[0], t, mask)  # (n, W)
            action = torch.multinomial(lp.exp(), 1, generator=generator)  # (n, 1)
            logp += lp.gather(1, action)[:, 0]
            entropy += _entropy(lp, mask)
            masks.append(mask)
            for prefix, a in zip(prefixes, action[:, 0].tolist()):
                prefix.append(a)
            if t + 1 < self.num_steps:
                x = self.embed[self.groups[t]](action[:, 0]) + self.position[t + 1]
        return Samples(torch.tensor(prefixes), logp, entropy, torch.stack(masks, dim=1))

    def evaluate(self, actions: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """Log-probability and entropy (both ``(n,)``) of stored ``(n, T)`` actions.

        ``masks`` is ``(n, T, W)`` from :meth:`sample` or :meth:`masks`. The actions are
        scored as they are (teacher forcing), never resampled.
        """
        n = actions.shape[0]
        inputs = [self.start.expand(n, -1) + self.position[0]]
        for t in range(self.num_steps - 1):
            inputs.append(self.embed[self.groups[t]](actions[:, t]) + self.position[t + 1])
        out, _ = self.lstm(torch.stack(inputs))  # (T, n, H)
        logp = actions.new_zeros(n, dtype=out.dtype)
        entropy = torch.zeros_like(logp)
        for t in range(self.num_steps):
            lp = self.log_probs(out[t], t, masks[:, t])  # (n, W)
            logp = logp + lp.gather(1, actions[:, t : t + 1])[:, 0]
            entropy = entropy + _entropy(lp, masks[:, t])
        return logp, entropy

    def masks(self, actions: Sequence[Sequence[int]]) -> Tensor:
        """The legal-choice masks ``(n, T, W)`` of complete action sequences."""
        steps = [self._masks_at([list(a[:t]) for a in actions]) for t in range(self.num_steps)]
        return torch.stack(steps, dim=1)

    def _masks_at(self, prefixes: Sequence[Sequence[int]]) -> Tensor:
        rows = []
        for prefix in prefixes:
            legal = self.space.legal(prefix)
            rows.append(legal + (False,) * (self.width - len(legal)))
        return torch.tensor(rows, dtype=torch.bool)


def _entropy(logp: Tensor, mask: Tensor) -> Tensor:
    """Entropy of each row of masked log-probabilities (illegal choices contribute 0)."""
    return -(logp.exp() * logp.masked_fill(~mask, 0.0)).sum(dim=-1)
