"""The interface every training method implements, and the plain step most of them share.

A method decides the loss of a batch and what happens to gradients between backward() and the
optimizer step. Methods that need several backward passes per step (e.g. MMPareto, MLA) override
`train_step` as a whole. Methods that act between epochs or shape the optimizer use the engine's
hooks: `param_groups` (e.g. one learning rate per modality), `begin_epoch` / `end_epoch` (e.g. class
prototypes before an epoch, stopping a modality on its validation loss after it), `epochs` and
`initialise` (e.g. a method that trains nothing and starts from the teachers). A method with knobs
declares the dataclass of its params.yaml section as `Options` (the same class as its registry
entry in g2d.methods) and receives that typed section as `options`; a method that needs a
particular fusion says so in `student_fusion`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from g2d.methods.losses import LossParts, task_loss
from g2d.methods.options import SMPParams
from g2d.models.fusion import LateFusion
from g2d.models.student import MultimodalStudent, StudentOutput, UnimodalModel
from g2d.training.precision import FP32, Precision
from g2d.types import Batch, EpochBatches


def mean_of_others(values: Mapping[str, float]) -> dict[str, float]:
    """For each modality, the mean of the other modalities' values: the reference that two-modality
    rules (OGM-GE, AGM) compare a modality with, which for k = 2 is simply the other modality."""
    total, k = sum(values.values()), len(values)
    return {m: (total - v) / (k - 1) for m, v in values.items()}


def modality_parameters(model: MultimodalStudent, modality: str) -> list[torch.nn.Parameter]:
    """Modality m's own parameters: its encoder and, under late fusion, its head (other fusions share theirs)."""
    params = model.encoder_parameters(modality)
    if isinstance(model.fusion, LateFusion):
        params += list(model.fusion.heads[model.modalities.index(modality)].parameters())
    return params


def modality_groups(model: MultimodalStudent) -> list[dict[str, Any]]:
    """Optimizer parameter groups: one per modality (key "modality"), then the shared rest (key "modality"
    None), always in this order so that a resumed optimizer's groups line up."""
    groups: list[dict[str, Any]] = [{"params": modality_parameters(model, m), "modality": m} for m in model.modalities]
    owned = {id(p) for g in groups for p in g["params"]}
    rest = [p for p in model.parameters() if id(p) not in owned]
    return groups + ([{"params": rest, "modality": None}] if rest else [])


class Method:
    """Joint training: the task loss on the fused output, every encoder updated every step."""

    name = "joint"
    Options: ClassVar[type | None] = None  # the dataclass of this method's params.yaml section, if it has knobs
    # How forward and backward passes run (`precision`; the student stage sets it): steps run the model
    # through `precision.run`, backward through `precision.backward`, unscale before touching gradients.
    precision: Precision = FP32

    def __init__(
        self,
        *,
        modalities: Sequence[str],
        task: str,
        taus: Sequence[int],
        alpha: float = 1.0,
        beta: float = 1.0,
        temperature: float = 1.0,
        smp: SMPParams | None = None,
        options: Any = None,
    ) -> None:
        self.modalities = list(modalities)
        self.task = task
        self.taus = tuple(taus)
        self.alpha, self.beta, self.temperature = alpha, beta, temperature
        self.smp = smp or SMPParams()
        self.options = options if options is not None or self.Options is None else self.Options()

    def student_fusion(self, configured: str) -> str:
        """The fusion the student is built with: the configured one unless the method needs its own."""
        return configured

    def setup(self, train_confidence: Mapping[str, float] | None) -> None:
        """Called once before training with the teachers' mean confidence on the train split."""

    def initialise(self, model: MultimodalStudent, teachers: Mapping[str, UnimodalModel] | None) -> None:
        """Set the new student's weights before training (`teachers` are given to methods whose registry
        entry asks for the teachers' weights)."""

    def epochs(self, scheduled: int) -> int:
        """How many epochs to train: every method trains the scheduled sum of the taus, on equal terms,
        unless it trains nothing at all."""
        return scheduled

    def param_groups(self, model: MultimodalStudent) -> list[dict[str, Any]]:
        """The optimizer's parameter groups: one group, all parameters at the configured learning rate."""
        return [{"params": list(model.parameters())}]

    def begin_epoch(self, model: MultimodalStudent, epoch: int, batches: EpochBatches) -> dict[str, float]:
        """Called before each epoch's steps (after a resume too) with that epoch's training batches."""
        return {}

    def end_epoch(
        self, model: MultimodalStudent, optimizer: torch.optim.Optimizer, epoch: int, record: Mapping[str, Any]
    ) -> dict[str, float]:
        """Called after each epoch's validation and model selection with its record (validation metrics
        only: nothing is chosen on test). Return what to log."""
        return {}

    def loss(self, out: StudentOutput, batch: Batch) -> LossParts:
        loss = task_loss(out.fused, batch.target, self.task)
        return LossParts(total=loss, task=loss, feat={}, logit={})

    def modulate(self, model: MultimodalStudent, batch: Batch, epoch: int, out: StudentOutput) -> dict[str, float]:
        """Change gradients after backward(); `out` is the step's forward pass. Return what to log."""
        return {}

    def train_step(
        self, model: MultimodalStudent, batch: Batch, optimizer: torch.optim.Optimizer, epoch: int
    ) -> tuple[dict[str, float], StudentOutput]:
        out = self.precision.run(model, batch.inputs)
        parts = self.loss(out, batch)
        optimizer.zero_grad(set_to_none=True)
        self.precision.backward(parts.total)
        self.precision.unscale(optimizer)  # the rule in `modulate` sees the true gradients
        logs = self.modulate(model, batch, epoch, out)
        self.precision.step(optimizer)
        return {**parts.as_floats(), **logs}, out

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
