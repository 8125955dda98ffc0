"""MSES: modality-specific early stopping (Fujimori, Endo, Kawai and Mochizuki, "Modality-specific
learning rate control for multimodal classification", ACPR 2019; no public code).

Late fusion (forced: a modality needs its own head). Loss L_task(fused) + sum_m L_task(z_m). After
each epoch, each modality's validation metric (`monitor`: its head's task loss, or its accuracy) is
compared with its best so far; after `patience` epochs without a strict improvement the modality's
encoder and head stop training for good: the learning rate of its optimizer group is set to 0 (so
SGD, Adam and AdamW leave its weights bit-identical, momentum and weight decay included), optionally
(`restore`) after reloading its best weights, and its modules run in eval mode from then on so that
normalisation statistics stay frozen too. Modalities are checked independently, so any k >= 2 works
as it is (the paper's rule is per modality); once every modality has stopped nothing trains. Best
values, wait counters, the stopped set and (with restore) the best weights are method state, saved
for exact resume. Validation only: nothing is chosen on test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from g2d.methods.base import Method, modality_groups, modality_parameters
from g2d.methods.losses import LossParts, task_loss
from g2d.methods.options import MSESParams
from g2d.models.fusion import LateFusion
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.types import Batch


def improved(value: float, best: float | None, monitor: str) -> bool:
    """Strictly better than the best so far (lower loss, higher accuracy); the first value always is."""
    return best is None or (value < best if monitor == "loss" else value > best)


def set_group_lr(optimizer: torch.optim.Optimizer, modality: str, lr: float) -> None:
    """Set the learning rate of `modality`'s parameter group (see base.modality_groups)."""
    for group in optimizer.param_groups:
        if group.get("modality") == modality:
            group["lr"] = lr
            return
    raise ValueError(f"the optimizer has no parameter group for modality {modality!r}")


class MSES(Method):
    name = "mses"
    Options = MSESParams
    options: MSESParams

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        if self.options.monitor == "acc" and self.task != "classification":
            raise ValueError("mses.monitor: acc needs classification; use loss")
        self.best: dict[str, float | None] = {m: None for m in self.modalities}
        self.wait = {m: 0 for m in self.modalities}
        self.stopped: list[str] = []
        self.weights: dict[str, list[torch.Tensor]] = {}

    def student_fusion(self, configured: str) -> str:
        return "late"

    def param_groups(self, model: MultimodalStudent) -> list[dict[str, Any]]:
        return modality_groups(model)

    def loss(self, out: StudentOutput, batch: Batch) -> LossParts:
        l_task = task_loss(out.fused, batch.target, self.task)
        uni = {m: task_loss(z, batch.target, self.task) for m, z in out.logits.items()}
        return LossParts(total=l_task + sum(uni.values()), task=l_task, feat={}, logit={}, uni=uni)

    def modules(self, model: MultimodalStudent, modality: str) -> list[torch.nn.Module]:
        """The encoder and late-fusion head of `modality`."""
        if not isinstance(model.fusion, LateFusion):
            raise ValueError(f"mses needs late fusion (one head per modality), got {type(model.fusion).__name__}")
        return [model.encoders[modality], model.fusion.heads[model.modalities.index(modality)]]

    def train_step(
        self, model: MultimodalStudent, batch: Batch, optimizer: torch.optim.Optimizer, epoch: int
    ) -> tuple[dict[str, float], StudentOutput]:
        for m in self.stopped:
            for module in self.modules(model, m):
                module.eval()
        return super().train_step(model, batch, optimizer, epoch)

    def end_epoch(
        self, model: MultimodalStudent, optimizer: torch.optim.Optimizer, epoch: int, record: Mapping[str, Any]
    ) -> dict[str, float]:
        """Update each running modality's best and wait counter on validation; stop those out of patience."""
        for m in self.modalities:
            if m in self.stopped:
                continue
            value = float(record[f"val_{self.options.monitor}_{m}"])
            if improved(value, self.best[m], self.options.monitor):
                self.best[m], self.wait[m] = value, 0
                if self.options.restore:
                    self.weights[m] = [p.detach().clone() for p in modality_parameters(model, m)]
                continue
            self.wait[m] += 1
            if self.wait[m] >= self.options.patience:
                self.stop(model, optimizer, m)
        return {f"mses_stopped_{m}": float(m in self.stopped) for m in self.modalities}

    def stop(self, model: MultimodalStudent, optimizer: torch.optim.Optimizer, modality: str) -> None:
        """Learning rate 0 for good (after reloading the best weights, with restore)."""
        if self.options.restore and modality in self.weights:
            with torch.no_grad():
                for p, best in zip(modality_parameters(model, modality), self.weights[modality], strict=True):
                    p.copy_(best)
        set_group_lr(optimizer, modality, 0.0)
        self.stopped.append(modality)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": dict(self.best),
            "wait": dict(self.wait),
            "stopped": list(self.stopped),
            "weights": {m: [t.cpu() for t in ts] for m, ts in self.weights.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = dict(state["best"]), dict(state["wait"])
        self.stopped, self.weights = list(state["stopped"]), {m: list(ts) for m, ts in state["weights"].items()}
