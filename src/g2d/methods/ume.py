"""UME, the uni-modal ensemble (Du, Teng, Wang, Liu, Yuan, Wang, Wang and Zhao, "On uni-modal feature
learning in supervised multi-modal learning", ICML 2023): the unimodal teachers as they are, the
prediction the mean of their logits.

Nothing trains: the student is built with late fusion (fused = mean of the per-modality heads),
each encoder and head is loaded from its modality's teacher, and the engine runs zero epochs, so the
checkpoint is the teachers' ensemble and evaluates like any student (its per-modality rows are the
teachers' own). The teachers come from the teacher stage the student stage already depends on.
Any k >= 2: the mean over all k teachers.
"""

from __future__ import annotations

from collections.abc import Mapping

from g2d.methods.base import Method
from g2d.models.fusion import LateFusion
from g2d.models.student import MultimodalStudent, UnimodalModel


class UME(Method):
    name = "ume"

    def student_fusion(self, configured: str) -> str:
        return "late"

    def epochs(self, scheduled: int) -> int:
        return 0

    def initialise(self, model: MultimodalStudent, teachers: Mapping[str, UnimodalModel] | None) -> None:
        """Copy each teacher's encoder and head into the student's encoder and late-fusion head."""
        if teachers is None:
            raise ValueError("ume starts from the teachers' weights; none were given (registry: teacher_weights)")
        if not isinstance(model.fusion, LateFusion):
            raise ValueError(f"ume needs late fusion (one head per modality), got {type(model.fusion).__name__}")
        for i, m in enumerate(model.modalities):
            model.encoders[m].load_state_dict(teachers[m].encoder.state_dict())
            model.fusion.heads[i].load_state_dict(teachers[m].head.state_dict())
