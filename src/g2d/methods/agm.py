"""AGM: adaptive gradient modulation (Li, Li, Hu, Lei, Li and Zhou, "Boosting multi-modal model
performance with adaptive gradient modulation", ICCV 2023).

Each step, modality m's mono-modal response is its Shapley value in the student's fused output f,
the paper's form: with f(S) the fused output when only the modalities in S keep their inputs (the
others' inputs zeroed; inputs are standardised, so zero is the training mean),
  phi_m = sum over S not containing m of |S|! (k - |S| - 1)! / k! * (f(S + m) - f(S)),
taking f(empty set) as 0 as the official code does (it computes the all-zero output but never
subtracts it), so that for two modalities phi_a = 0.5 * (f(a, v) - f(0, v) + f(a, 0)), exactly the
official Modality_Audio, and sum_m phi_m = f(all). This costs 2^k - 1 forward passes. The score s_m
is the task loss of phi_m (lower = better). The current ratio of m is
r_m = exp(mean_{j != m} s_j - s_m) and the target ratio is the same expression on the running means
of the scores over all previous steps of training; the coefficient is
c_m = exp(alpha * (target_m - r_m)) and multiplies every gradient of encoder m. Since an encoder's
gradient all flows through its features, this is AGM's scaling of the gradient at the modality's
output (the official code scales the gradient reaching phi_m through a backward hook, so part of it
also flows through the masked passes; ours keeps those passes out of the gradient). Choices: all the
2^k - 1 passes, f(all) included, run in eval mode without gradients, so BatchNorm statistics never
see zeroed inputs and every f(S) is the same function (the official code takes f(all) from the
train-mode pass); the exponent is clipped at 10 to avoid overflow (as in the official code); the
running means start at 0 (target ratio 1 at the first step) and are updated after each step's
coefficients, and they are part of the method state so a resumed run continues exactly. For k = 2 this is the
paper's rule; for k > 2 "the other modality" becomes the mean of the others, as in OGM-GE here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from g2d.methods.base import Method, mean_of_others
from g2d.methods.losses import task_loss
from g2d.methods.options import AGMParams
from g2d.methods.smp import gate_gradients
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.types import Batch

MAX_EXPONENT = 10.0


def discrepancy_ratios(scores: Mapping[str, float]) -> dict[str, float]:
    """r_m = exp(mean of the other modalities' scores - s_m): above 1 when m fits better than the rest."""
    return {m: math.exp(min(ref - scores[m], MAX_EXPONENT)) for m, ref in mean_of_others(scores).items()}


def agm_coefficients(scores: Mapping[str, float], running: Mapping[str, float], alpha: float) -> dict[str, float]:
    """c_m = exp(alpha * (target ratio from the running means - current ratio)), exponent clipped."""
    current, target = discrepancy_ratios(scores), discrepancy_ratios(running)
    return {m: math.exp(min(alpha * (target[m] - current[m]), MAX_EXPONENT)) for m in scores}


def shapley_values(value: Callable[[frozenset[str]], torch.Tensor], players: Sequence[str]) -> dict[str, torch.Tensor]:
    """The exact Shapley value of each player for the set function `value`, called once per non-empty
    coalition; the empty coalition's value is taken as 0 (AGM's convention)."""
    k = len(players)
    values: dict[frozenset[str], torch.Tensor | float] = {frozenset(): 0.0}
    for size in range(1, k + 1):
        for coalition in itertools.combinations(players, size):
            values[frozenset(coalition)] = value(frozenset(coalition))
    out: dict[str, torch.Tensor] = {}
    for m in players:
        others = [j for j in players if j != m]
        terms = [
            math.factorial(size)
            * math.factorial(k - size - 1)
            / math.factorial(k)
            * (values[frozenset(s) | {m}] - values[frozenset(s)])
            for size in range(k)
            for s in itertools.combinations(others, size)
        ]
        out[m] = torch.as_tensor(sum(terms[1:], terms[0]))
    return out


@torch.no_grad()
def mono_modal_responses(model: MultimodalStudent, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each modality's Shapley value in the fused output, every masked pass in eval mode without gradients."""
    was_training = model.training
    model.eval()
    try:

        def fused(kept: frozenset[str]) -> torch.Tensor:
            return model({j: x if j in kept else torch.zeros_like(x) for j, x in inputs.items()}).fused

        return shapley_values(fused, model.modalities)
    finally:
        model.train(was_training)


def mono_modal_scores(model: MultimodalStudent, batch: Batch, task: str) -> dict[str, float]:
    """s_m: the task loss of modality m's mono-modal response (lower = better)."""
    return {m: float(task_loss(r, batch.target, task)) for m, r in mono_modal_responses(model, batch.inputs).items()}


class AGM(Method):
    name = "agm"
    Options = AGMParams
    options: AGMParams

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
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
