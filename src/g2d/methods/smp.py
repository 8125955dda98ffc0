"""Sequential Modality Prioritization (Eq. 6-8) and gradient gating of the student's encoders.

Schedule: with taus (tau_1, ..., tau_k) and modalities ranked by confidence ascending (pi[1] the
least confident), epoch e (1-based) falls in phase j; phases 1..k-1 prioritise pi[j] alone, the
last phase trains all modalities. kappa^m = 1 for prioritised modalities; heads and fusion always
train.

Which parameters of encoder m kappa^m reaches (`smp.gate`):
  all  -- every parameter (the paper's Eq. 8);
  conv -- the 4-D conv weights only (the reference code): normalisation layers and biases keep
          training while their encoder is suppressed.

Suppression of the others (the paper leaves it open; docs/method.md):
  zero_grad -- gradients multiplied by 0 (reference code). With SGD momentum mu the parameter still
               moves: the step after a gradient g moves it by lr * mu * g, the n-th by lr * mu^n * g,
               lr * g * mu / (1 - mu) = 9 lr g in all for mu = 0.9 (plus weight decay every step);
  freeze    -- gradients removed, so the optimizer skips those parameters entirely (Eq. 8 literally);
               with gate `all` the encoder's buffers (BatchNorm running statistics, which a train-mode
               forward pass updates whatever the gradient) are restored after the step, so a frozen
               encoder is bit-identical afterwards;
  partial   -- OGM-style kappa = 1 - tanh(r), r = rho_m / rho of the prioritised modality.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from g2d.methods.base import Method
from g2d.methods.confidence import batch_confidence
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.training import distributed
from g2d.types import Batch


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


def kappa(
    epoch: int, taus: Sequence[int], ranking: Sequence[str], rho: Mapping[str, float], suppression: str
) -> dict[str, float]:
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


def gated_parameters(params: Iterable[torch.nn.Parameter], gate: str) -> list[torch.nn.Parameter]:
    """The parameters of an encoder that SMP's kappa multiplies: all of them (Eq. 8) or, for `conv`,
    the 4-D conv weights only (the reference code)."""
    if gate == "all":
        return list(params)
    if gate == "conv":
        return [p for p in params if p.dim() == 4]
    raise ValueError(f"unknown smp.gate {gate!r}; choose all or conv")


def snapshot_buffers(module: torch.nn.Module) -> list[torch.Tensor]:
    """Copies of a module's buffers (BatchNorm running statistics and counters)."""
    return [b.detach().clone() for b in module.buffers()]


@torch.no_grad()
def restore_buffers(module: torch.nn.Module, saved: Sequence[torch.Tensor]) -> None:
    """Put back buffers taken by `snapshot_buffers`, in place."""
    for buffer, value in zip(module.buffers(), saved):
        buffer.copy_(value)


def gate_gradients(
    groups: Mapping[str, Iterable[torch.nn.Parameter]], coefficients: Mapping[str, float], mode: str = "zero_grad"
) -> None:
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

    def setup(self, train_confidence: Mapping[str, float] | None) -> None:
        self.ranking = list(self.modalities)
        self.coefficients: dict[str, float] = {}
        if self.smp.ranking == "global":
            if train_confidence is None:
                raise ValueError("global SMP ranking needs the teachers' mean confidence on the train split")
            self.ranking = rank_modalities(train_confidence, self.modalities)

    def batch_rho(self, batch: Batch) -> dict[str, float]:
        """Eq. 5 for this batch, from the teachers' per-sample values."""
        if batch.teacher is None:
            raise ValueError(f"{self.name} needs teacher outputs for every batch (cached or online)")
        sq = batch.teacher.sq_error or {}
        return {
            m: batch_confidence(batch.teacher.confidence[m], sq.get(m), self.task, distributed.global_mean)
            for m in self.modalities
        }

    def modulate(self, model: MultimodalStudent, batch: Batch, epoch: int, out: StudentOutput) -> dict[str, float]:
        rho = self.batch_rho(batch)
        if self.smp.ranking == "batch":
            self.ranking = rank_modalities(rho, self.ranking)
        self.coefficients = kappa(epoch, self.taus, self.ranking, rho, self.smp.suppression)
        gate_gradients(
            {m: gated_parameters(model.encoder_parameters(m), self.smp.gate) for m in self.modalities},
            self.coefficients,
            self.smp.suppression,
        )
        logs = {"smp_phase": float(phase_of_epoch(epoch, self.taus) + 1)}
        logs.update({f"kappa_{m}": self.coefficients[m] for m in self.modalities})
        chosen = prioritized(epoch, self.taus, self.ranking)
        # 1 when this batch prioritised m: the epoch's mean is the share of its samples that did (the report
        # averages it per SMP phase)
        logs.update({f"prioritised_{m}": float(m in chosen) for m in self.modalities})
        logs.update({f"rho_{m}": rho[m] for m in self.modalities})
        return logs

    def freezes_encoders(self, epoch: int) -> bool:
        """Whether this step may freeze whole encoders: `freeze` with every parameter gated, before the
        joint phase."""
        return (
            self.smp.suppression == "freeze"
            and self.smp.gate == "all"
            and phase_of_epoch(epoch, self.taus) < len(self.taus) - 1
        )

    def train_step(
        self, model: MultimodalStudent, batch: Batch, optimizer: torch.optim.Optimizer, epoch: int
    ) -> tuple[dict[str, float], StudentOutput]:
        """The method's step; under `freeze`, a frozen encoder's buffers are restored afterwards, since the
        train-mode forward pass updates BatchNorm statistics whatever the gradient (the pass itself is
        unchanged, so the prioritised encoders see the same batch statistics)."""
        if not self.freezes_encoders(epoch):
            return super().train_step(model, batch, optimizer, epoch)
        saved = {m: snapshot_buffers(model.encoders[m]) for m in self.modalities}
        logs, out = super().train_step(model, batch, optimizer, epoch)
        for m, k in self.coefficients.items():
            if k == 0.0:
                restore_buffers(model.encoders[m], saved[m])
        return logs, out

    def state_dict(self) -> dict[str, Any]:
        return {"ranking": list(self.ranking)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ranking = list(state["ranking"])
