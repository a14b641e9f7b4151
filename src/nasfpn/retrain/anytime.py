"""Deeply supervised anytime detection (NAS-FPN paper, section 3.2).

The pyramid is repeated N times; with anytime detection a head is also attached after some
intermediate repeats. Training minimises the sum of the losses of every exit (deep
supervision); at inference the network can stop after any exit, trading accuracy for speed.
Each exit has its own head, of the final head's design (``SepBNHead``); the per-repeat pyramids
come from ``NASFPNNeck(return_repeats=True)``.
"""

from __future__ import annotations

import copy

from torch import Tensor, nn

from nasfpn.model import NASFPNNeck, RetinaNet

Outputs = tuple[list[Tensor], list[Tensor]]


class AnytimeRetinaNet(RetinaNet):
    """A :class:`RetinaNet` with extra heads after the repeats in ``exits`` (1-based).

    ``forward(images)`` is the plain detector (the last repeat's head), so ``detect`` and
    checkpoints of the backbone, neck and head are unchanged; ``forward(images, all_exits=True)``
    returns the head outputs of every exit, the last repeat's last.
    """

    def __init__(self, base: RetinaNet, exits: tuple[int, ...]) -> None:
        super().__init__(base.backbone, base.neck, base.head, base.anchors, base.loss_settings,
                         base.test_settings)  # fmt: skip
        if not isinstance(base.neck, NASFPNNeck):
            raise ValueError(
                "anytime detection needs a repeated NAS-FPN neck, not the FPN baseline; "
                "set anytime.enabled=false or give a genotype"
            )
        repeats = base.neck.repeats
        if not exits or any(not 1 <= e < repeats for e in exits):
            raise ValueError(
                f"anytime exits {list(exits)} must be repeats in 1..{repeats - 1}; the last "
                f"repeat ({repeats}) is always an exit"
            )
        self.exits = tuple(sorted(exits))
        # copies of the freshly initialised head: same initial values, separate parameters
        self.exit_heads = nn.ModuleList(copy.deepcopy(base.head) for _ in self.exits)

    @property
    def exit_names(self) -> list[str]:
        """``r1``, ``r2``, ... the exits in order; the last is the full network."""
        return [f"r{e}" for e in self.exits] + [f"r{self.neck.repeats}"]

    def forward(self, images: Tensor, all_exits: bool = False) -> Outputs | list[Outputs]:
        feats = self.backbone(images)
        if not all_exits:
            return self.head(self.neck(feats))
        final, per_repeat = self.neck(feats, return_repeats=True)
        outs = [head(per_repeat[e - 1]) for e, head in zip(self.exits, self.exit_heads)]
        return [*outs, self.head(final)]

    def anytime_loss(
        self, outputs: list[Outputs], targets: list[dict[str, Tensor]]
    ) -> dict[str, Tensor]:
        """The final exit's ``loss_cls``/``loss_box`` plus ``loss_cls_rK``/``loss_box_rK`` of
        each intermediate exit K; the training loop minimises their sum."""
        losses: dict[str, Tensor] = {}
        for name, out in zip(self.exit_names[:-1], outputs[:-1]):
            losses.update({f"{k}_{name}": v for k, v in self.loss(out, targets).items()})
        losses.update(self.loss(outputs[-1], targets))
        return losses
