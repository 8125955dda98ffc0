"""The G2D loss (Eq. 1-4) and its terms, for classification and regression."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


def task_loss(fused: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    """Eq. 1: cross-entropy, or MSE of sigmoid(output) against targets scaled to [0, 1]."""
    if task == "classification":
        return F.cross_entropy(fused, target.long())
    return F.mse_loss(torch.sigmoid(fused.view(-1)), target.view(-1).float())


def feature_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Eq. 2: mean squared error between student and teacher encoder features."""
    return F.mse_loss(student, teacher)


def logit_loss(student: torch.Tensor, teacher: torch.Tensor, task: str, temperature: float = 1.0) -> torch.Tensor:
    """Eq. 3: KL(softmax(l_t / T) || softmax(l_s / T)) * T^2, batch mean; MSE of sigmoids for regression."""
    if task == "classification":
        log_p_student = F.log_softmax(student / temperature, dim=1)
        p_teacher = F.softmax(teacher / temperature, dim=1)
        return F.kl_div(log_p_student, p_teacher, reduction="batchmean") * temperature**2
    return F.mse_loss(torch.sigmoid(student.view(-1)), torch.sigmoid(teacher.view(-1)))


@dataclass
class LossParts:
    """The total loss and each term, so that logs show what drives training (`uni`: unimodal task losses)."""

    total: torch.Tensor
    task: torch.Tensor
    feat: dict[str, torch.Tensor]
    logit: dict[str, torch.Tensor]
    uni: dict[str, torch.Tensor] = field(default_factory=dict)

    def as_floats(self) -> dict[str, float]:
        out = {"loss": self.total.item(), "loss_task": self.task.item()}
        out.update({f"loss_feat_{m}": v.item() for m, v in self.feat.items()})
        out.update({f"loss_logit_{m}": v.item() for m, v in self.logit.items()})
        out.update({f"loss_uni_{m}": v.item() for m, v in self.uni.items()})
        return out


def g2d_loss(
    fused: torch.Tensor,
    student_features: Mapping[str, torch.Tensor],
    target: torch.Tensor,
    teacher_features: Mapping[str, torch.Tensor],
    teacher_logits: Mapping[str, torch.Tensor],
    task: str,
    alpha: float,
    beta: float,
    temperature: float,
) -> LossParts:
    """Eq. 4: L_task + alpha * sum_m L_feat^m + beta * sum_m L_logit^m (l_s = the fused logits)."""
    l_task = task_loss(fused, target, task)
    feat = {m: feature_loss(student_features[m], teacher_features[m]) for m in teacher_features}
    logit = {m: logit_loss(fused, teacher_logits[m], task, temperature) for m in teacher_logits}
    total = l_task + alpha * sum(feat.values()) + beta * sum(logit.values())
    return LossParts(total=total, task=l_task, feat=feat, logit=logit)
