"""PMR: prototypical modal rebalance (Fan, Xu, Wei, Hu, Su, Gu and Huang, "PMR: Prototypical modal
rebalance for multimodal learning", CVPR 2023; code fanyunfeng-bit/Modal-Imbalance-PMR,
`main_Prototype_grad.py`).

Class prototypes c_m[j] of each modality: the mean encoder feature of class j over the first
`fraction` (a tenth) of an epoch's training batches, in eval mode without gradients, computed
before training and after each epoch (here: at the start of every epoch, which is the same
sequence), as an EMA c <- (1 - mu) c_new + mu c_old; the first estimate is taken as it is, and a
class absent from the sampled batches keeps its previous prototype (0 before it is first seen).
Per step, s_m = -||h_m - c_m|| (Euclidean distance of each sample's feature to each prototype),
p_m = softmax(s_m), S_m = sum_i p_m[i, y_i]; for two modalities rho = S_a / S_v and, during
epochs start..end, L = L_task(fused) + alpha [rho > 1] CE(s_v) + alpha [rho < 1] CE(s_a): the
lagging modality's encoder gets the prototype loss. For k > 2 (the paper has two), every modality
whose S_m is below the largest gets alpha CE(s_m), which is the two-modality rule when k = 2. We
follow the official code: the paper's entropy regulariser on the prototype probabilities is absent
there and absent here. Prototypes are method state, saved for exact resume. Classification only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from g2d.methods.base import Method
from g2d.methods.losses import LossParts, task_loss
from g2d.methods.options import PMRParams
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.types import Batch, EpochBatches


def prototype_scores(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """s[i, j] = -||h_i - c_j||: the negative Euclidean distance of each sample to each class prototype."""
    return -torch.cdist(features, prototypes.to(features))


def class_mass(scores: torch.Tensor, target: torch.Tensor) -> float:
    """S = sum over the batch of softmax(s)[i, y_i]: how well a modality's prototypes place its samples."""
    return float(F.softmax(scores.detach(), dim=1).gather(1, target.long().view(-1, 1)).sum())


def lagging(masses: Mapping[str, float]) -> list[str]:
    """The modalities whose S_m is below the largest (k = 2: the other one when rho != 1)."""
    top = max(masses.values())
    return [m for m, s in masses.items() if s < top]


def ema_prototypes(old: torch.Tensor | None, new: torch.Tensor, present: torch.Tensor, mu: float) -> torch.Tensor:
    """(1 - mu) new + mu old for the classes present in the sample; absent classes keep `old` (zero at first)."""
    if old is None:
        return torch.where(present.view(-1, 1), new, torch.zeros_like(new))
    return torch.where(present.view(-1, 1), (1 - mu) * new + mu * old.to(new), old.to(new))


@torch.no_grad()
def class_means(model: MultimodalStudent, batches: Iterable[Batch]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per modality, the mean encoder feature of each class over `batches` (eval mode, no gradients), and
    which classes occurred."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    seen: torch.Tensor | None = None
    try:
        for batch in batches:
            out = model(batch.inputs)
            onehot = F.one_hot(batch.target.long(), out.fused.shape[1]).float()  # (B, C)
            seen = onehot.sum(0) if seen is None else seen + onehot.sum(0)
            for m, h in out.features.items():
                sums[m] = onehot.T @ h + (sums[m] if m in sums else 0)
    finally:
        model.train(was_training)
    if seen is None:
        raise ValueError("pmr: no training batch to estimate the prototypes from")
    return {m: s / seen.clamp(min=1).view(-1, 1) for m, s in sums.items()}, seen > 0


def prototype_loss(
    features: Mapping[str, torch.Tensor], prototypes: Mapping[str, torch.Tensor], target: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """alpha * sum over the lagging modalities of CE(s_m, y), and every modality's S_m."""
    scores = {m: prototype_scores(h, prototypes[m]) for m, h in features.items()}
    masses = {m: class_mass(s, target) for m, s in scores.items()}
    terms = [F.cross_entropy(scores[m], target.long()) for m in lagging(masses)]
    extra = alpha * torch.stack(terms).sum() if terms else torch.zeros((), device=target.device)
    return extra, masses


class PMR(Method):
    name = "pmr"
    Options = PMRParams
    options: PMRParams

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        if self.task != "classification":
            raise ValueError("pmr compares class prototypes: classification only")
        self.prototypes: dict[str, torch.Tensor] = {}
        self.epoch = 1
        self.logs: dict[str, float] = {}

    def begin_epoch(self, model: MultimodalStudent, epoch: int, batches: EpochBatches) -> dict[str, float]:
        """New prototypes from the first `fraction` of this epoch's batches, EMA'd with the previous ones."""
        self.epoch = epoch
        count = max(1, math.ceil(self.options.fraction * batches.count))
        means, present = class_means(model, itertools.islice(batches(), count))
        self.prototypes = {
            m: ema_prototypes(self.prototypes.get(m), new, present, self.options.mu) for m, new in means.items()
        }
        return {"pmr_classes_seen": float(present.sum())}

    def loss(self, out: StudentOutput, batch: Batch) -> LossParts:
        l_task = task_loss(out.fused, batch.target, self.task)
        if not self.prototypes:
            raise ValueError("pmr: no prototypes yet (the engine computes them at the start of each epoch)")
        extra, masses = prototype_loss(out.features, self.prototypes, batch.target, self.options.alpha)
        active = self.options.start <= self.epoch <= self.options.end
        self.logs = {f"pmr_mass_{m}": s for m, s in masses.items()}
        self.logs["loss_proto"] = float(extra.detach()) if active else 0.0
        total = l_task + extra if active else l_task
        return LossParts(total=total, task=l_task, feat={}, logit={})

    def modulate(self, model: MultimodalStudent, batch: Batch, epoch: int, out: StudentOutput) -> dict[str, float]:
        return self.logs

    def state_dict(self) -> dict[str, Any]:
        return {"prototypes": {m: c.cpu() for m, c in self.prototypes.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prototypes = dict(state["prototypes"])
