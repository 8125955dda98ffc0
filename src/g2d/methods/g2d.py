"""G2D: the distillation loss (Eq. 4) under Sequential Modality Prioritization (Eq. 6-8)."""

from __future__ import annotations

from typing import Any, Mapping

from g2d.methods.base import Method
from g2d.methods.confidence import batch_confidence
from g2d.methods.losses import LossParts, g2d_loss
from g2d.methods.smp import gate_gradients, kappa, phase_of_epoch, rank_modalities
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.training.data import Batch


class G2D(Method):
    name = "g2d"
    uses_teachers = True

    def setup(self, train_confidence: Mapping[str, float] | None) -> None:
        self.ranking = list(self.modalities)
        if self.ranking_mode == "global":
            if train_confidence is None:
                raise ValueError("global SMP ranking needs the teachers' mean confidence on the train split")
            self.ranking = rank_modalities(train_confidence, self.modalities)

    def loss(self, out: StudentOutput, batch: Batch) -> LossParts:
        if batch.teacher is None:
            raise ValueError("G2D needs teacher outputs for every batch (cached or online)")
        return g2d_loss(out.fused, out.features, batch.target, batch.teacher.features, batch.teacher.logits,
                        self.task, self.alpha, self.beta, self.temperature)

    def batch_rho(self, batch: Batch) -> dict[str, float]:
        """Eq. 5 for this batch, from the teachers' per-sample values."""
        assert batch.teacher is not None
        sq = batch.teacher.sq_error or {}
        return {m: batch_confidence(batch.teacher.confidence[m], sq.get(m), self.task) for m in self.modalities}

    def modulate(self, model: MultimodalStudent, batch: Batch, epoch: int) -> dict[str, float]:
        rho = self.batch_rho(batch)
        if self.ranking_mode == "batch":
            self.ranking = rank_modalities(rho, self.ranking)
        coeffs = kappa(epoch, self.taus, self.ranking, rho, self.suppression)
        gate_gradients({m: model.encoder_parameters(m) for m in self.modalities}, coeffs, self.suppression)
        logs = {"smp_phase": float(phase_of_epoch(epoch, self.taus) + 1)}
        logs.update({f"kappa_{m}": coeffs[m] for m in self.modalities})
        logs.update({f"rho_{m}": rho[m] for m in self.modalities})
        return logs

    def state_dict(self) -> dict[str, Any]:
        return {"ranking": list(self.ranking)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ranking = list(state["ranking"])
