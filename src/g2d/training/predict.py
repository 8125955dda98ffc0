"""Forward passes over a whole split in eval mode, collected as numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from g2d.models.student import MultimodalStudent, UnimodalModel
from g2d.training.data import SplitTensors


@dataclass
class StudentPredictions:
    fused: np.ndarray
    logits: dict[str, np.ndarray]
    features: dict[str, np.ndarray]


@torch.no_grad()
def predict_student(model: MultimodalStudent, data: SplitTensors, batch_size: int) -> StudentPredictions:
    model.eval()
    fused: list[torch.Tensor] = []
    logits: dict[str, list[torch.Tensor]] = {m: [] for m in model.modalities}
    feats: dict[str, list[torch.Tensor]] = {m: [] for m in model.modalities}
    for batch in data.batches(batch_size):
        out = model(batch.inputs)
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
    model: UnimodalModel, data: SplitTensors, modality: str, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(features, logits) of a teacher over the split."""
    model.eval()
    feats, logits = [], []
    for batch in data.batches(batch_size):
        f, lg = model(batch.inputs[modality])
        feats.append(f.cpu())
        logits.append(lg.cpu())
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()
