"""DLMG: dynamically learning the modality gap (Yang, Wan, Jiang and Xu, "Facilitating multimodal
classification via dynamically learning modality gap", NeurIPS 2024; code njustkmg/NeurIPS24-LFM).

Fused logits z = mean_m z_m (late fusion, forced: the rule needs each modality's own logits). Loss
  L = 2 (a1(e) L_cls + (1 - a1(e)) L_align),  L_cls = CE(z, y),
  L_align = 1/2 [KL(m || p_a) + KL(m || p_v)],  p_j = softmax(z_j),  m = (p_a + p_v) / 2,
the official code's Jensen-Shannon-like alignment of the modalities' predictions (gradient through
both p_a and p_v, and through m); per sample, averaged over the batch. For k > 2 (the paper has two
modalities) L_align is the mean of that term over all pairs of modalities. a1(e) follows the
official code's heuristic schedule, the default: its values at the code's epochs 0, 100, 199 (of
200: .205, .539, .916) are the anchors of a piecewise-linear schedule (`dlmg.epochs`, `dlmg.a1`),
stretched over our run's epochs (`dlmg.stretch`). The closed form behind those values, and the
paper's learned (bi-level) weighting, were not available to us; that is the deviation. Classification only.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from g2d.methods.base import Method
from g2d.methods.losses import LossParts, task_loss
from g2d.methods.options import DLMGParams
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.types import Batch, EpochBatches


def pair_alignment(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """1/2 [KL(m || p_a) + KL(m || p_b)], m = (p_a + p_b) / 2, batch mean: the code's alignment term."""
    p_a, p_b = F.softmax(z_a, dim=1), F.softmax(z_b, dim=1)
    mix = (p_a + p_b) / 2
    kl_a = F.kl_div(F.log_softmax(z_a, dim=1), mix, reduction="batchmean")  # KL(mix || p_a)
    kl_b = F.kl_div(F.log_softmax(z_b, dim=1), mix, reduction="batchmean")
    return (kl_a + kl_b) / 2


def alignment_loss(logits: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """L_align: the pair term, averaged over all pairs of modalities (k = 2: the one pair)."""
    pairs = [pair_alignment(logits[a], logits[b]) for a, b in itertools.combinations(list(logits), 2)]
    return torch.stack(pairs).mean()


def dlmg_loss(
    fused: torch.Tensor, logits: Mapping[str, torch.Tensor], target: torch.Tensor, a1: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L, L_cls, L_align) with L = 2 (a1 L_cls + (1 - a1) L_align)."""
    l_cls = task_loss(fused, target, "classification")
    l_align = alignment_loss(logits)
    return 2 * (a1 * l_cls + (1 - a1) * l_align), l_cls, l_align


def schedule_weight(options: DLMGParams, epoch: int, total: int) -> float:
    """a1 at our 1-based `epoch` of `total`: the anchors' piecewise-linear interpolation, clamped at the
    ends, at the code's epoch e - 1 or (stretch) at (e - 1) / (total - 1) of the anchors' last epoch."""
    if options.stretch:
        position = (epoch - 1) / (total - 1) * options.epochs[-1] if total > 1 else 0.0
    else:
        position = float(epoch - 1)
    return float(np.interp(position, options.epochs, options.a1))


class DLMG(Method):
    name = "dlmg"
    Options = DLMGParams
    options: DLMGParams

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        if self.task != "classification":
            raise ValueError("dlmg aligns the modalities' class distributions: classification only")
        self.a1 = schedule_weight(self.options, 1, sum(self.taus))
        self.last_align = 0.0

    def student_fusion(self, configured: str) -> str:
        return "late"

    def begin_epoch(self, model: MultimodalStudent, epoch: int, batches: EpochBatches) -> dict[str, float]:
        self.a1 = schedule_weight(self.options, epoch, sum(self.taus))
        return {"dlmg_a1": self.a1}

    def loss(self, out: StudentOutput, batch: Batch) -> LossParts:
        total, l_cls, l_align = dlmg_loss(out.fused, out.logits, batch.target, self.a1)
        self.last_align = float(l_align.detach())
        return LossParts(total=total, task=l_cls, feat={}, logit={})

    def modulate(self, model: MultimodalStudent, batch: Batch, epoch: int, out: StudentOutput) -> dict[str, float]:
        return {"loss_align": self.last_align}
