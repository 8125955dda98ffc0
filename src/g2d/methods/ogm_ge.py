"""OGM-GE: on-the-fly gradient modulation with generalization enhancement (Peng, Wei, Deng, Wang and
Hu, "Balanced multimodal learning via on-the-fly gradient modulation", CVPR 2022).

Per batch, modality m's score is s_m = sum over samples of softmax(unimodal logits of m)[y] (for
regression, the per-sample confidence 1 / (1 + squared error), as in G2D's regression confidence,
stands in for the class probability). With two modalities the ratio is r_m = s_m / s_other; for k > 2 we compare each
modality with the mean of the others, r_m = s_m / mean_{j != m} s_j, which is the two-modality rule
when k = 2. A modality with r_m > 1 is dominant and its encoder's gradients are multiplied by
k_m = 1 - tanh(alpha * r_m); every other modality keeps k_m = 1. Modulation applies during epochs
start..end, 1-based and inclusive: the default 1..51 is the official 0-based window 0..50, 51 epochs.
GE then adds, to every gradient tensor of every encoder, Gaussian noise with the standard deviation
of that tensor's unmodulated gradient (the paper's Algorithm 1 applies it to all encoders and all
their parameters; the official code only to 4-D conv weights).
The noise comes from a generator owned by the method, whose state is saved for exact resume.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from g2d.methods.base import Method, mean_of_others
from g2d.methods.confidence import sample_confidence
from g2d.methods.options import OGMGEParams
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.training import distributed
from g2d.types import Batch


def ogm_scores(logits: Mapping[str, torch.Tensor], target: torch.Tensor, task: str) -> dict[str, float]:
    """s_m: the summed probability (or regression confidence) of the true target under each modality."""
    return {m: distributed.global_sum(sample_confidence(lg.detach(), target, task)) for m, lg in logits.items()}


def ogm_coefficients(scores: Mapping[str, float], alpha: float) -> dict[str, float]:
    """k_m = 1 - tanh(alpha * r_m) where r_m = s_m / mean of the others' scores exceeds 1, else 1."""
    out = {}
    for m, ref in mean_of_others(scores).items():
        ratio = scores[m] / ref if ref > 0 else math.inf
        out[m] = 1.0 - math.tanh(alpha * ratio) if ratio > 1 else 1.0
    return out


def modulate_with_noise(
    params: list[torch.nn.Parameter], coefficient: float, noise: bool, generator: torch.Generator | None
) -> None:
    """grad <- k * grad (+ N(0, std(grad)) with GE), in place, per parameter tensor."""
    for p in params:
        if p.grad is None:
            continue
        std = float(p.grad.std()) if p.grad.numel() > 1 else 0.0
        p.grad.mul_(coefficient)
        if noise and std > 0:
            p.grad.add_(torch.randn(p.grad.shape, generator=generator, device=p.grad.device, dtype=p.grad.dtype) * std)


class OGMGE(Method):
    name = "ogm_ge"
    Options = OGMGEParams
    options: OGMGEParams

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        self.generator: torch.Generator | None = None
        self._generator_state: dict[str, Any] | None = None

    def noise_generator(self, device: torch.device) -> torch.Generator:
        """The GE noise source on `device`, seeded from the global RNG (itself seeded per run)."""
        if self.generator is None:
            self.generator = torch.Generator(device=device)
            if self._generator_state is not None:
                self.generator.set_state(self._generator_state["state"])
            else:
                self.generator.manual_seed(int(torch.randint(0, 2**62, (1,))))
        return self.generator

    def modulate(self, model: MultimodalStudent, batch: Batch, epoch: int, out: StudentOutput) -> dict[str, float]:
        scores = ogm_scores(out.logits, batch.target, self.task)
        coeffs = ogm_coefficients(scores, self.options.alpha)
        active = self.options.start <= epoch <= self.options.end
        if active:
            gen = self.noise_generator(batch.target.device) if self.options.ge else None
            for m in self.modalities:
                modulate_with_noise(model.encoder_parameters(m), coeffs[m], self.options.ge, gen)
        logs = {f"ogm_score_{m}": scores[m] for m in self.modalities}
        logs.update({f"ogm_coeff_{m}": coeffs[m] if active else 1.0 for m in self.modalities})
        return logs

    def state_dict(self) -> dict[str, Any]:
        if self.generator is None:
            return {"generator": self._generator_state}
        return {"generator": {"state": self.generator.get_state()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator = None
        self._generator_state = state.get("generator")
