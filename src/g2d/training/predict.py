"""Forward passes over a whole split in eval mode, collected as numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from g2d.models.student import MultimodalStudent, UnimodalModel
from g2d.training.data import SplitTensors
from g2d.training.precision import FP32, Precision


@dataclass
class StudentPredictions:
    fused: np.ndarray
    logits: dict[str, np.ndarray]
    features: dict[str, np.ndarray]


@torch.no_grad()
def predict_student(
    model: MultimodalStudent, data: SplitTensors, batch_size: int, precision: Precision = FP32
) -> StudentPredictions:
    """The student's outputs over the split, its forward passes at `precision` (outputs in float32)."""
    model.eval()
    fused: list[torch.Tensor] = []
    logits: dict[str, list[torch.Tensor]] = {m: [] for m in model.modalities}
    feats: dict[str, list[torch.Tensor]] = {m: [] for m in model.modalities}
    for batch in data.batches(batch_size):
        out = precision.run(model, batch.inputs)
        fused.append(out.fused.cpu())
        for m in model.modalities:
            logits[m].append(out.logits[m].cpu())
            feats[m].append(out.features[m].cpu())
    return StudentPredictions(
        fused=torch.cat(fused).numpy(),
        logits={m: torch.cat(v).numpy() for m, v in logits.items()},
        features={m: torch.cat(v).numpy() for m, v in feats.items()},
    )


@torch.no_grad()
def predict_unimodal(
    model: UnimodalModel, data: SplitTensors, modality: str, batch_size: int, precision: Precision = FP32
) -> tuple[np.ndarray, np.ndarray]:
    """(features, logits) of a teacher over the split, its forward passes at `precision` (outputs in float32)."""
    model.eval()
    feats, logits = [], []
    for batch in data.batches(batch_size):
        f, lg = precision.run(model, batch.inputs[modality])
        feats.append(f.cpu())
        logits.append(lg.cpu())
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()
