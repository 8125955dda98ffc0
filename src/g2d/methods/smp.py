"""Sequential Modality Prioritization (Eq. 6-8) and gradient gating of the student's encoders.

Schedule: with taus (tau_1, ..., tau_k) and modalities ranked by confidence ascending (pi[1] the
least confident), epoch e (1-based) falls in phase j; phases 1..k-1 prioritise pi[j] alone, the
last phase trains all modalities. kappa^m = 1 for prioritised modalities and is applied to the
gradient of every parameter of encoder m; heads and fusion always train.

Suppression of the others (METHOD.md's options):
  zero_grad -- gradients multiplied by 0 (reference code; momentum and weight decay still act);
  freeze    -- gradients removed, so the optimizer skips those parameters entirely (Eq. 8 literally);
  partial   -- OGM-style kappa = 1 - tanh(r), r = rho_m / rho of the prioritised modality.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import torch

from g2d.methods.base import Method
from g2d.methods.confidence import batch_confidence
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.training.data import Batch


def total_epochs(taus: Sequence[int]) -> int:
    return int(sum(taus))


def phase_of_epoch(epoch: int, taus: Sequence[int]) -> int:
    """0-based SMP phase of 1-based `epoch`; phase len(taus) - 1 is the joint phase."""
    if epoch < 1 or epoch > total_epochs(taus):
        raise ValueError(f"epoch {epoch} is outside the schedule 1..{total_epochs(taus)} of taus {list(taus)}")
    bound = 0
    for j, tau in enumerate(taus):
        bound += tau
        if epoch <= bound:
            return j
    raise AssertionError("unreachable")


def prioritized(epoch: int, taus: Sequence[int], ranking: Sequence[str]) -> list[str]:
    """The set M_q of Eq. 6: one modality in phases 1..k-1, all of them in the last."""
    if len(taus) != len(ranking):
        raise ValueError(f"{len(ranking)} modalities need {len(ranking)} taus, got {list(taus)}")
    phase = phase_of_epoch(epoch, taus)
    if phase == len(taus) - 1:
        return list(ranking)
    return [ranking[phase]]


def rank_modalities(rho: Mapping[str, float], previous: Sequence[str]) -> list[str]:
    """Modalities by confidence ascending; equal confidences keep the previous batch's order."""
    order = {m: i for i, m in enumerate(previous)}
    return sorted(rho, key=lambda m: (rho[m], order.get(m, len(order))))


def kappa(epoch: int, taus: Sequence[int], ranking: Sequence[str], rho: Mapping[str, float],
          suppression: str) -> dict[str, float]:
    """Modulation coefficient per modality (Eq. 7, or its partial OGM-style variant)."""
    chosen = prioritized(epoch, taus, ranking)
    if suppression in ("zero_grad", "freeze"):
        return {m: 1.0 if m in chosen else 0.0 for m in ranking}
    if suppression != "partial":
        raise ValueError(f"unknown suppression {suppression!r}; choose zero_grad, freeze or partial")
    if len(chosen) == len(ranking):
        return {m: 1.0 for m in ranking}
    weak = rho[chosen[0]]
    out = {}
    for m in ranking:
        if m in chosen:
            out[m] = 1.0
        else:
            out[m] = 0.0 if weak <= 0 else 1.0 - math.tanh(rho[m] / weak)
    return out


def gate_gradients(groups: Mapping[str, Iterable[torch.nn.Parameter]], coefficients: Mapping[str, float],
                   mode: str = "zero_grad") -> None:
    """Multiply each modality's encoder gradients by its coefficient (SMP's kappa, AGM's), in place,
    before the optimizer step; under `freeze` a coefficient of 0 removes the gradients instead."""
    for modality, params in groups.items():
        k = coefficients[modality]
        if k == 1.0:
            continue
        for p in params:
            if p.grad is None:
                continue
            if mode == "freeze" and k == 0.0:
                p.grad = None
            else:
                p.grad.mul_(k)


class SMPGating(Method):
    """Joint training with SMP gating of the encoders (Table 4's "Joint-Train + SMP").

    The one home of SMP inside training: methods that add SMP to their loss (G2D, UMT + SMP)
    inherit this class and only define their loss. Ranking needs the teachers' confidence, so
    every SMP method uses the teachers (cache or online).
    """

    name = "joint_smp"
    uses_teachers = True

    def setup(self, train_confidence: Mapping[str, float] | None) -> None:
        self.ranking = list(self.modalities)
        if self.ranking_mode == "global":
            if train_confidence is None:
                raise ValueError("global SMP ranking needs the teachers' mean confidence on the train split")
            self.ranking = rank_modalities(train_confidence, self.modalities)

    def batch_rho(self, batch: Batch) -> dict[str, float]:
        """Eq. 5 for this batch, from the teachers' per-sample values."""
        if batch.teacher is None:
            raise ValueError(f"{self.name} needs teacher outputs for every batch (cached or online)")
        sq = batch.teacher.sq_error or {}
        return {m: batch_confidence(batch.teacher.confidence[m], sq.get(m), self.task) for m in self.modalities}

    def modulate(self, model: MultimodalStudent, batch: Batch, epoch: int, out: StudentOutput) -> dict[str, float]:
        rho = self.batch_rho(batch)
        if self.ranking_mode == "batch":
            self.ranking = rank_modalities(rho, self.ranking)
        coeffs = kappa(epoch, self.taus, self.ranking, rho, self.suppression)
        gate_gradients({m: model.encoder_parameters(m) for m in self.modalities}, coeffs, self.suppression)
        chosen = prioritized(epoch, self.taus, self.ranking)
        logs = {"smp_phase": float(phase_of_epoch(epoch, self.taus) + 1)}
        logs.update({f"kappa_{m}": coeffs[m] for m in self.modalities})
        # 1 when this batch prioritised m: the epoch's mean is the share of its samples that did (the report
        # averages it per SMP phase)
        logs.update({f"prioritised_{m}": float(m in chosen) for m in self.modalities})
        logs.update({f"rho_{m}": rho[m] for m in self.modalities})
        return logs

    def state_dict(self) -> dict[str, Any]:
        return {"ranking": list(self.ranking)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ranking = list(state["ranking"])
