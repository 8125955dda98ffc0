"""AGM: adaptive gradient modulation (Li, Li, Hu, Lei, Li and Zhou, "Boosting multi-modal model
performance with adaptive gradient modulation", ICCV 2023).

Each step, modality m's mono-modal response is the student's fused output with every other
modality's input zeroed (inputs are standardised, so zero is the training mean); its score s_m is
the task loss of that response (lower = better). The current ratio of m is
r_m = exp(mean_{j != m} s_j - s_m) and the target ratio is the same expression on the running means
of the scores over all previous steps of training; the coefficient is
c_m = exp(alpha * (target_m - r_m)) and multiplies every gradient of encoder m. Since an encoder's
gradient all flows through its features, this equals AGM's scaling of the gradient at the
modality's output. Choices: the masked passes run in eval mode without gradients, so BatchNorm
statistics never see zeroed inputs; the exponent is clipped at 10 to avoid overflow (as in the
official code); the running means start at 0 (target ratio 1 at the first step) and are updated
after each step's coefficients, and they are part of the method state so a resumed run continues
exactly. For k = 2 this is the paper's rule; for k > 2 "the other modality" becomes the mean of the
others, as in OGM-GE here.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from g2d.config.params import AGMParams
from g2d.methods.base import Method, mean_of_others
from g2d.methods.losses import task_loss
from g2d.methods.smp import gate_gradients
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.training.data import Batch

MAX_EXPONENT = 10.0


def discrepancy_ratios(scores: Mapping[str, float]) -> dict[str, float]:
    """r_m = exp(mean of the other modalities' scores - s_m): above 1 when m fits better than the rest."""
    return {m: math.exp(min(ref - scores[m], MAX_EXPONENT)) for m, ref in mean_of_others(scores).items()}


def agm_coefficients(scores: Mapping[str, float], running: Mapping[str, float], alpha: float) -> dict[str, float]:
    """c_m = exp(alpha * (target ratio from the running means - current ratio)), exponent clipped."""
    current, target = discrepancy_ratios(scores), discrepancy_ratios(running)
    return {m: math.exp(min(alpha * (target[m] - current[m]), MAX_EXPONENT)) for m in scores}


@torch.no_grad()
def mono_modal_scores(model: MultimodalStudent, batch: Batch, task: str) -> dict[str, float]:
    """The task loss of the fused output with all modalities but m zeroed, for each m."""
    was_training = model.training
    model.eval()
    try:
        scores = {}
        for m in model.modalities:
            inputs = {j: x if j == m else torch.zeros_like(x) for j, x in batch.inputs.items()}
            scores[m] = float(task_loss(model(inputs).fused, batch.target, task))
    finally:
        model.train(was_training)
    return scores


class AGM(Method):
    name = "agm"
    section = "agm"

    def __init__(self, *, options: AGMParams | None = None, **common: Any) -> None:
        super().__init__(**common)
        self.options = options or AGMParams()
        self.running = {m: 0.0 for m in self.modalities}
        self.steps = 0

    def modulate(self, model: MultimodalStudent, batch: Batch, epoch: int, out: StudentOutput) -> dict[str, float]:
        scores = mono_modal_scores(model, batch, self.task)
        coeffs = agm_coefficients(scores, self.running, self.options.alpha)
        gate_gradients({m: model.encoder_parameters(m) for m in self.modalities}, coeffs)
        self.steps += 1
        self.running = {m: self.running[m] + (scores[m] - self.running[m]) / self.steps for m in self.modalities}
        logs = {f"agm_score_{m}": scores[m] for m in self.modalities}
        logs.update({f"agm_coeff_{m}": coeffs[m] for m in self.modalities})
        return logs

    def state_dict(self) -> dict[str, Any]:
        return {"running": dict(self.running), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running, self.steps = dict(state["running"]), int(state["steps"])
