"""UMT, uni-modal teachers (Du et al., "Improving multi-modal learning with uni-modal teachers",
arXiv 2021; the baseline of "On uni-modal feature learning in supervised multi-modal learning",
ICML 2023), alone and with SMP (G2D paper, Table 4).

Loss: L_task(fused) + weight * sum_m MSE(f_s^m, f_t^m), the teachers' features read from the score
cache (or computed online). No logit term and, for `umt`, no gradient gating.
"""

from __future__ import annotations

from g2d.methods.base import Method
from g2d.methods.losses import LossParts, feature_loss, task_loss
from g2d.methods.options import UMTParams
from g2d.methods.smp import SMPGating
from g2d.models.student import StudentOutput
from g2d.types import Batch


class UMT(Method):
    name = "umt"
    Options = UMTParams
    options: UMTParams

    def loss(self, out: StudentOutput, batch: Batch) -> LossParts:
        if batch.teacher is None:
            raise ValueError(f"{self.name} needs the teachers' features for every batch (cached or online)")
        l_task = task_loss(out.fused, batch.target, self.task)
        feat = {m: feature_loss(out.features[m], batch.teacher.features[m]) for m in self.modalities}
        total = l_task + self.options.weight * sum(feat.values())
        return LossParts(total=total, task=l_task, feat=feat, logit={})


class UMTSMP(SMPGating, UMT):
    """UMT's loss, with the encoders gated by SMP exactly as G2D gates them."""

    name = "umt_smp"
