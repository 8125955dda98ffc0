"""MIS-ME (Rakib et al., "MIS-ME: a multi-modal framework for soil moisture estimation", 2024): the
baseline of the paper's Table 3.

Features of every modality are concatenated for the fused output, and each modality also has a head
of its own (fusion `concat_heads`); the loss is the task loss of the fused output plus that of every
modality's head: for regression MSE(fused) + MSE(image head) + MSE(tabular head), each on the
sigmoid of the output against the [0, 1]-scaled target, as every regression loss here. No teachers,
no gradient modulation: the unimodal heads are what keep each encoder learning.
"""

from __future__ import annotations

from g2d.methods.base import Method
from g2d.methods.losses import LossParts, task_loss
from g2d.models.student import StudentOutput
from g2d.types import Batch


class MISME(Method):
    name = "misme"

    def student_fusion(self, configured: str) -> str:
        """MIS-ME's own fusion, whatever params.yaml's `fusion` says: concatenation plus unimodal heads."""
        return "concat_heads"

    def loss(self, out: StudentOutput, batch: Batch) -> LossParts:
        fused = task_loss(out.fused, batch.target, self.task)
        uni = {m: task_loss(out.logits[m], batch.target, self.task) for m in self.modalities}
        return LossParts(total=fused + sum(uni.values()), task=fused, feat={}, logit={}, uni=uni)
