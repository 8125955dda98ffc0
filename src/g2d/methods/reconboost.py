"""ReconBoost: boosting for modality reconcilement (Hua, Xu, Bao, Yang, Qi, Wang, Jiang and Huang,
"ReconBoost: Boosting can achieve modality reconcilement", ICML 2024; code huacong/ReconBoost, `train.py`).

One linear head shared by all modalities (the `shared` fusion, forced): f_j(x_j) = head(enc_j(x_j)).
Training alternates stages, a pure function of the epoch (so resume needs no schedule state): the
stage of modality m (round-robin in the dataset's order) lasts `epochs_per_stage` epochs and trains
encoder m and the head on the boosting loss, per sample
  (1/C) (w1 - w2 q[y]) CE(f_m(x_m), y),  q = softmax(beta * sum_{j != m} f_j(x_j))  (no gradient),
the sum over the modalities already in the ensemble (trained in an earlier stage; empty at first,
so q is uniform: the paper's F_0 = 0, where the code's constant start gives q[y] = 1), plus the
memory-consolidation term alpha * MSE(softmax(f_m(x_m)), softmax(f_p(x_p))), p the previous stage's
modality. The official code detaches both of its inputs, so its term has no gradient; we implement
it as the paper states, the gradient flowing into the current learner (f_p, the previous learner,
is the fixed target). Then `correct_epochs` of global rectification train every encoder in the
ensemble, the head and the learnable beta on CE(beta * sum_j f_j). The other modalities' outputs in
a stage run in eval mode without gradients, so their encoders do not change (no gradient: the
optimizer skips them) and their normalisation statistics do not move. Inference: argmax of
beta * sum_j f_j, which is the shared fusion's mean of the f_j for beta > 0 (beta is logged).
Deviations: one optimizer for the whole run at params' settings (the code restarts SGD every stage
and phase, at weight decay 5e-4); k >= 2 by round-robin, q and the rectification summing over the
ensemble's modalities. Beta is method state, saved for exact resume. Classification only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from g2d.methods.base import Method
from g2d.methods.options import ReconBoostParams
from g2d.models.fusion import SharedHeadFusion
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.training.precision import as_float
from g2d.types import Batch


@dataclass(frozen=True)
class Phase:
    """Where an epoch falls: the stage of `modality` or (rectify) the rectification after it;
    `ensemble`: the modalities trained in some stage so far, this one included; `previous`: the
    modality of the stage before, if any."""

    modality: str
    rectify: bool
    ensemble: tuple[str, ...]
    previous: str | None


def phase(epoch: int, modalities: list[str], options: ReconBoostParams) -> Phase:
    """The phase of 1-based `epoch`: stages of `epochs_per_stage`, each followed by `correct_epochs`."""
    period = options.epochs_per_stage + options.correct_epochs
    stage, position = divmod(epoch - 1, period)
    k = len(modalities)
    ensemble = tuple(m for i, m in enumerate(modalities) if i <= stage)
    previous = modalities[(stage - 1) % k] if stage >= 1 else None
    return Phase(modalities[stage % k], position >= options.epochs_per_stage, ensemble, previous)


def boosting_loss(
    logits: torch.Tensor, others: torch.Tensor, target: torch.Tensor, beta: float, w1: float, w2: float
) -> torch.Tensor:
    """Batch mean of (1/C) (w1 - w2 q[y]) CE(logits, y), q = softmax(beta * others) without gradient."""
    q = F.softmax(beta * others.detach(), dim=1).gather(1, target.long().view(-1, 1)).squeeze(1)
    ce = F.cross_entropy(logits, target.long(), reduction="none")
    return ((w1 - w2 * q) * ce).mean() / logits.shape[1]


def consolidation_loss(current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """MSE(softmax(current), softmax(previous)): the gradient reaches the current learner only."""
    return F.mse_loss(F.softmax(current, dim=1), F.softmax(previous.detach(), dim=1))


class ReconBoost(Method):
    name = "reconboost"
    Options = ReconBoostParams
    options: ReconBoostParams

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        if self.task != "classification":
            raise ValueError("reconboost's boosting loss weighs class probabilities: classification only")
        self.boost = torch.nn.Parameter(torch.tensor(float(self.options.beta)))

    def student_fusion(self, configured: str) -> str:
        return "shared"

    def param_groups(self, model: MultimodalStudent) -> list[dict[str, Any]]:
        """The student's parameters, and the learnable beta (moved to the student's device)."""
        self.boost.data = self.boost.data.to(next(model.parameters()).device)
        return [{"params": list(model.parameters())}, {"params": [self.boost]}]

    def unimodal(self, model: MultimodalStudent, batch: Batch, modalities: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """f_j(x_j) = head(enc_j(x_j)) for the given modalities, with gradients."""
        head = self.head(model)
        with self.precision.autocast():
            logits = {m: head(model.encoders[m](batch.inputs[m])) for m in modalities}
        return as_float(logits)

    @torch.no_grad()
    def frozen(self, model: MultimodalStudent, batch: Batch, modalities: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """f_j(x_j) in eval mode without gradients (the learners not trained in this stage)."""
        was = {m: model.encoders[m].training for m in modalities}
        for m in modalities:
            model.encoders[m].eval()
        try:
            return self.unimodal(model, batch, modalities)
        finally:
            for m, training in was.items():
                model.encoders[m].train(training)

    @staticmethod
    def head(model: MultimodalStudent) -> torch.nn.Linear:
        if not isinstance(model.fusion, SharedHeadFusion):
            raise ValueError(f"reconboost needs the shared-head fusion, got {type(model.fusion).__name__}")
        return model.fusion.head

    def train_step(
        self, model: MultimodalStudent, batch: Batch, optimizer: torch.optim.Optimizer, epoch: int
    ) -> tuple[dict[str, float], StudentOutput]:
        now = phase(epoch, self.modalities, self.options)
        beta = self.boost
        optimizer.zero_grad(set_to_none=True)
        logs: dict[str, float] = {"reconboost_rectify": float(now.rectify), "reconboost_beta": float(beta.detach())}
        logs.update({f"reconboost_stage_{m}": float(m == now.modality) for m in self.modalities})
        if now.rectify:
            logits = self.unimodal(model, batch, now.ensemble)
            rest = tuple(m for m in self.modalities if m not in now.ensemble)
            ensemble = beta * torch.stack([logits[m] for m in now.ensemble]).sum(dim=0)
            loss = F.cross_entropy(ensemble, batch.target.long())
            logs["loss_task"] = float(loss.detach())
            logits.update(self.frozen(model, batch, rest))
        else:
            m = now.modality
            others = tuple(j for j in self.modalities if j != m)
            logits = {**self.frozen(model, batch, others), **self.unimodal(model, batch, (m,))}
            in_ensemble = [logits[j] for j in now.ensemble if j != m]
            total = torch.stack(in_ensemble).sum(dim=0) if in_ensemble else torch.zeros_like(logits[m])
            o = self.options
            loss = boosting_loss(logits[m], total, batch.target, float(beta.detach()), o.w1, o.w2)
            logs["loss_boost"] = float(loss.detach())
            if now.previous is not None and now.previous != m and o.alpha > 0:
                ga = consolidation_loss(logits[m], logits[now.previous])
                logs["loss_consolidation"] = float(ga.detach())
                loss = loss + o.alpha * ga
            logs["loss_task"] = float(F.cross_entropy(logits[m].detach(), batch.target.long()))
        self.precision.backward(loss)
        self.precision.step(optimizer)
        logs["loss"] = float(loss.detach())
        detached = {j: v.detach() for j, v in logits.items()}
        fused = torch.stack([detached[j] for j in self.modalities]).mean(dim=0)
        return logs, StudentOutput(features={}, logits=detached, fused=fused)

    def state_dict(self) -> dict[str, Any]:
        return {"beta": float(self.boost.detach())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.boost.fill_(float(state["beta"]))
