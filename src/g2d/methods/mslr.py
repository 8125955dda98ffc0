"""MSLR: modality-specific learning rates (Yao and Mihalcea, "Modality-specific learning rates for
effective multimodal additive late-fusion", Findings of ACL 2022).

Additive late fusion: z = sum_m z_m, the loss L_task(z) (the student uses late fusion, forced; its
fused output is the mean of the heads, z / k, which predicts the same class, so evaluation and
model selection are unchanged). One optimizer parameter group per modality (its encoder and head)
with its own learning rate, `mslr.lr[m]` (from a unimodal search; a modality not named gets
params' `lr`). Strategy `keep`: those rates throughout (the configured scheduler still applies).
`dynamic`: after every `window`-th epoch, lr_m <- lr_m * acc_m(t) / mean(acc_m(t - window + 1..t)),
acc_m the modality's validation accuracy (its own head), the current epoch included in the mean;
the accuracy history is method state (exact resume). Per modality, so any k >= 2 as it is.
Classification for `dynamic` (accuracy); `keep` also takes regression.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from g2d.methods.base import Method, modality_groups
from g2d.methods.losses import LossParts, task_loss
from g2d.methods.options import MSLRParams
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.types import Batch


def dynamic_factor(history: Sequence[float], window: int) -> float:
    """acc(t) / mean of the last `window` accuracies (acc(t) included); 1 if that mean is 0."""
    recent = list(history)[-window:]
    mean = sum(recent) / len(recent)
    return recent[-1] / mean if mean > 0 else 1.0


class MSLR(Method):
    name = "mslr"
    Options = MSLRParams
    options: MSLRParams

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        if self.options.strategy == "dynamic" and self.task != "classification":
            raise ValueError("mslr.strategy: dynamic follows validation accuracy: classification only")
        unknown = sorted(set(self.options.lr) - set(self.modalities))
        if unknown:
            raise ValueError(f"mslr.lr names {', '.join(unknown)}, not modalities of this dataset {self.modalities}")
        self.history: dict[str, list[float]] = {m: [] for m in self.modalities}

    def student_fusion(self, configured: str) -> str:
        return "late"

    def param_groups(self, model: MultimodalStudent) -> list[dict[str, Any]]:
        groups = modality_groups(model)
        for g in groups:
            if g["modality"] in self.options.lr:
                g["lr"] = self.options.lr[g["modality"]]
        return groups

    def loss(self, out: StudentOutput, batch: Batch) -> LossParts:
        additive = torch.stack([out.logits[m] for m in self.modalities]).sum(dim=0)
        loss = task_loss(additive, batch.target, self.task)
        return LossParts(total=loss, task=loss, feat={}, logit={})

    def end_epoch(
        self, model: MultimodalStudent, optimizer: torch.optim.Optimizer, epoch: int, record: Mapping[str, Any]
    ) -> dict[str, float]:
        """Dynamic: record each modality's validation accuracy; every `window` epochs rescale its rate."""
        if self.options.strategy == "dynamic":
            for m in self.modalities:
                self.history[m].append(float(record[f"val_acc_{m}"]))
            if epoch % self.options.window == 0:
                for group in optimizer.param_groups:
                    if group.get("modality") is not None:
                        group["lr"] *= dynamic_factor(self.history[group["modality"]], self.options.window)
        return {f"lr_{g['modality']}": float(g["lr"]) for g in optimizer.param_groups if g.get("modality")}

    def state_dict(self) -> dict[str, Any]:
        return {"history": {m: list(h) for m, h in self.history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = {m: list(h) for m, h in state["history"].items()}
