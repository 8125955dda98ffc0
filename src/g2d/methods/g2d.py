"""G2D: the distillation loss (Eq. 4) under Sequential Modality Prioritization (Eq. 6-8)."""

from __future__ import annotations

from g2d.methods.losses import LossParts, g2d_loss
from g2d.methods.smp import SMPGating
from g2d.models.student import StudentOutput
from g2d.types import Batch


class G2D(SMPGating):
    name = "g2d"

    def loss(self, out: StudentOutput, batch: Batch) -> LossParts:
        if batch.teacher is None:
            raise ValueError("G2D needs teacher outputs for every batch (cached or online)")
        return g2d_loss(
            out.fused,
            out.features,
            batch.target,
            batch.teacher.features,
            batch.teacher.logits,
            self.task,
            self.alpha,
            self.beta,
            self.temperature,
        )
