"""MMPareto (Wei and Hu, "MMPareto: Boosting multimodal learning with innocent unimodal assistance",
ICML 2024).

Objective: the multimodal loss L_mm = L_task(fused) plus, per modality, a unimodal loss
L_m = L_task(logits of m), the per-modality logits of the fusion (late fusion: that modality's own
head). For every encoder m, the two gradients g_mm = dL_mm/dtheta_m and g_u = dL_m/dtheta_m are
computed by separate autograd passes over the whole encoder. The cosine and the weights are taken
over the whole encoder (flattened), as in the official code: if cos(g_mm, g_u) > 0 the weights are
(0.5, 0.5); otherwise the two-task minimum-norm (MGDA) weights w = argmin_{w in [0, 1]}
|w g_mm + (1 - w) g_u|. The combined gradient g = 2 (w g_mm + (1 - w) g_u) (the plain sum when the
weights are equal) is then rescaled, per `mmpareto.rescale`:
  tensor  -- (default, the official code) per parameter tensor t and upward only: if
             |g_t| < |g_mm,t + g_u,t|, g_t is scaled up to that norm, otherwise kept (a zero g_t stays
             zero, where the official code would divide by zero);
  encoder -- the whole encoder's g scaled, up or down, to |g_mm + g_u| (g2d's earlier form);
and multiplied by gamma. Heads and fusion take the plain gradient of L_mm + sum_m L_m.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from g2d.methods.base import Method
from g2d.methods.losses import task_loss
from g2d.methods.options import MMParetoParams
from g2d.models.student import MultimodalStudent, StudentOutput
from g2d.types import Batch


def min_norm_weight(g1: torch.Tensor, g2: torch.Tensor) -> float:
    """w in [0, 1] minimising |w g1 + (1 - w) g2| (the two-task MGDA solution)."""
    diff = g1 - g2
    denom = float(diff.dot(diff))
    if denom == 0.0:
        return 0.5
    return min(max(float((g2 - g1).dot(g2)) / denom, 0.0), 1.0)


def rescale(grad: torch.Tensor, reference: torch.Tensor, upward_only: bool) -> torch.Tensor:
    """`grad` scaled to the norm of `reference`; with `upward_only`, only when that is larger. A zero
    `grad` has no direction to scale and stays zero."""
    norm = float(grad.norm())
    if norm == 0.0:
        return grad
    ratio = float(reference.norm()) / norm
    return grad * ratio if ratio > 1 or not upward_only else grad


def pareto_combine(
    g_mm: torch.Tensor, g_uni: torch.Tensor, gamma: float, rescaling: str = "tensor", sizes: Sequence[int] | None = None
) -> tuple[torch.Tensor, float, float]:
    """The MMPareto gradient of one encoder from its two flat gradients; also the cosine and weight on
    g_mm. `sizes` are the numels of the encoder's parameter tensors in order (None: one tensor)."""
    norms = float(g_mm.norm() * g_uni.norm())
    cos = float(g_mm.dot(g_uni)) / norms if norms > 0 else 0.0
    w = 0.5 if cos > 0 else min_norm_weight(g_mm, g_uni)
    combined, total = 2.0 * (w * g_mm + (1.0 - w) * g_uni), g_mm + g_uni
    if rescaling == "encoder":
        out = rescale(combined, total, upward_only=False)
    elif rescaling == "tensor":
        sizes = list(sizes) if sizes is not None else [combined.numel()]
        out = torch.cat([rescale(c, t, upward_only=True) for c, t in zip(combined.split(sizes), total.split(sizes))])
    else:
        raise ValueError(f"unknown mmpareto.rescale {rescaling!r}; choose tensor or encoder")
    return gamma * out, cos, w


def flat_grad(loss: torch.Tensor, params: Sequence[torch.nn.Parameter], retain: bool = True) -> torch.Tensor:
    """d loss / d params as one flat vector (zeros for parameters the loss does not reach)."""
    grads = torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def assign_flat(params: Sequence[torch.nn.Parameter], flat: torch.Tensor) -> None:
    """Write a flat gradient vector back into the parameters' .grad."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


class MMPareto(Method):
    name = "mmpareto"
    Options = MMParetoParams
    options: MMParetoParams

    def unimodal_losses(self, out: StudentOutput, batch: Batch) -> dict[str, torch.Tensor]:
        return {m: task_loss(out.logits[m], batch.target, self.task) for m in self.modalities}

    def train_step(
        self, model: MultimodalStudent, batch: Batch, optimizer: torch.optim.Optimizer, epoch: int
    ) -> tuple[dict[str, float], StudentOutput]:
        out = self.precision.run(model, batch.inputs)  # bf16 or fp32: fp16's loss scaling is refused (registry)
        l_mm = task_loss(out.fused, batch.target, self.task)
        uni = self.unimodal_losses(out, batch)
        total = l_mm + sum(uni.values())
        optimizer.zero_grad(set_to_none=True)
        logs: dict[str, float] = {"loss": total.item(), "loss_task": l_mm.item()}
        logs.update({f"loss_uni_{m}": v.item() for m, v in uni.items()})
        combined: dict[str, torch.Tensor] = {}
        encoder_ids: set[int] = set()
        for m in self.modalities:
            params = model.encoder_parameters(m)
            encoder_ids.update(id(p) for p in params)
            combined[m], logs[f"mmpareto_cos_{m}"], logs[f"mmpareto_weight_{m}"] = pareto_combine(
                flat_grad(l_mm, params),
                flat_grad(uni[m], params),
                self.options.gamma,
                self.options.rescale,
                [p.numel() for p in params],
            )
        rest = [p for p in model.parameters() if id(p) not in encoder_ids and p.requires_grad]
        for p, g in zip(rest, torch.autograd.grad(total, rest, allow_unused=True)):
            p.grad = g
        for m in self.modalities:
            assign_flat(model.encoder_parameters(m), combined[m])
        optimizer.step()
        return logs, out
