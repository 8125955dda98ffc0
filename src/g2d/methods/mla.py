"""MLA: multimodal learning with alternating unimodal adaptation (Zhang, Yoon, Bansal and Yao,
"Multimodal representation learning by alternating unimodal adaptation", CVPR 2024).

The student needs one linear head shared by all modalities, so MLA overrides the configured fusion
with `shared` (equal weights at inference) or `shared_entropy` (the paper's test-time
uncertainty-based fusion: per sample, weights softmax(-entropy) over the unimodal outputs), chosen
by `mla.inference`. Each batch trains the modalities in turn, one optimizer step per modality:
encoder m and the shared head on L_task(head(f_m)), nothing else. Before each step the head's
gradient (weight and bias, flattened) is orthogonalised against the span of the other modalities'
most recent head gradients (Gram-Schmidt), so that, to first order, learning modality m does not
change the head's fit to the modalities trained before it: the gradient modification that keeps the
shared head from forgetting. The raw gradient of m then becomes m's stored direction; the stored
directions are method state, saved for exact resume. (The official code means to do this too,
but a parameter-name check never matches, so its projection is never applied.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from g2d.methods.base import Method
from g2d.methods.losses import task_loss
from g2d.methods.options import MLAParams
from g2d.models.fusion import SharedHeadFusion
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.types import Batch

EPS = 1e-12


def project_out(grad: torch.Tensor, directions: Sequence[torch.Tensor]) -> torch.Tensor:
    """`grad` minus its component in the span of `directions` (Gram-Schmidt; dependent ones skipped)."""
    basis: list[torch.Tensor] = []
    for d in directions:
        v = d.to(grad)
        for b in basis:
            v = v - v.dot(b) * b
        norm = v.norm()
        if norm > EPS:
            basis.append(v / norm)
    for b in basis:
        grad = grad - grad.dot(b) * b
    return grad


class MLA(Method):
    name = "mla"
    Options = MLAParams
    options: MLAParams

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        self.directions: dict[str, torch.Tensor] = {}

    def student_fusion(self, configured: str) -> str:
        return "shared_entropy" if self.options.inference == "entropy" else "shared"

    def project_head_gradient(self, head: torch.nn.Linear, modality: str) -> float:
        """Orthogonalise the head's gradient for `modality` in place; return the fraction of its norm kept."""
        grads = [(p, p.grad) for p in head.parameters() if p.grad is not None]
        grad = torch.cat([g.reshape(-1) for _, g in grads])
        norm = float(grad.norm())
        projected = project_out(grad, [d for m, d in self.directions.items() if m != modality])
        if norm > EPS:
            self.directions[modality] = (grad / norm).detach().clone()
        offset = 0
        for p, g in grads:
            n = p.numel()
            g.copy_(projected[offset : offset + n].view_as(p))
            offset += n
        return float(projected.norm()) / norm if norm > EPS else 1.0

    def train_step(
        self, model: MultimodalStudent, batch: Batch, optimizer: torch.optim.Optimizer, epoch: int
    ) -> tuple[dict[str, float], StudentOutput]:
        fusion = model.fusion
        if not isinstance(fusion, SharedHeadFusion):
            raise ValueError(
                f"mla needs the student built with a shared head (fusion shared or shared_entropy), "
                f"got {type(fusion).__name__}"
            )
        feats, logits, logs = {}, {}, {}
        for m in self.modalities:
            optimizer.zero_grad(set_to_none=True)
            feats[m] = self.precision.run(model.encoders[m], batch.inputs[m])
            logits[m] = self.precision.run(fusion.head, feats[m])
            loss = task_loss(logits[m], batch.target, self.task)
            self.precision.backward(loss)
            self.precision.unscale(optimizer)  # the projection reads the true head gradient
            logs[f"loss_uni_{m}"] = loss.item()
            logs[f"mla_kept_{m}"] = self.project_head_gradient(fusion.head, m)
            self.precision.step(optimizer)
        with torch.no_grad():
            logits = {m: v.detach() for m, v in logits.items()}
            fused = fusion.mix([logits[m] for m in self.modalities])
            logs["loss"] = sum(logs[f"loss_uni_{m}"] for m in self.modalities)
            logs["loss_task"] = task_loss(fused, batch.target, self.task).item()
        out = StudentOutput(features={m: v.detach() for m, v in feats.items()}, logits=logits, fused=fused)
        return logs, out

    def state_dict(self) -> dict[str, Any]:
        return {"directions": {m: d.cpu() for m, d in self.directions.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.directions = dict(state["directions"])
