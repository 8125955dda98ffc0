"""Batches for training and evaluation, built from HDF5 splits and the teacher cache.

Inputs are standardised per modality with the training split's mean and std (so spectrograms and
uint8 frames need no per-source code); regression targets are min-max scaled to [0, 1] on the
training split (METHOD.md), and the scaling is stored with every checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator, Mapping

import numpy as np
import torch

from g2d.io.hdf5 import SplitData, TeacherScores


@dataclass(frozen=True)
class Normalizer:
    """Input standardisation and target scaling, fitted on the training split only."""

    task: str
    mean: dict[str, float]
    std: dict[str, float]
    y_min: float = 0.0
    y_max: float = 1.0

    @classmethod
    def fit(cls, train: SplitData, task: str) -> "Normalizer":
        mean, std = {}, {}
        for m, array in train.inputs.items():
            values = array.astype(np.float64, copy=False)
            mean[m] = float(values.mean())
            std[m] = float(values.std()) or 1.0
        if task == "regression":
            y_min, y_max = float(train.labels.min()), float(train.labels.max())
            if y_max <= y_min:
                y_max = y_min + 1.0
            return cls(task, mean, std, y_min, y_max)
        return cls(task, mean, std)

    def inputs(self, modality: str, array: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(array)).float()
        return (x - self.mean[modality]) / self.std[modality]

    def target(self, labels: np.ndarray) -> torch.Tensor:
        if self.task == "classification":
            return torch.from_numpy(labels.astype(np.int64))
        return torch.from_numpy(((labels - self.y_min) / (self.y_max - self.y_min)).astype(np.float32))

    def unscale(self, y01: np.ndarray) -> np.ndarray:
        """Map [0, 1]-scale regression outputs back to the target's units."""
        return y01 * (self.y_max - self.y_min) + self.y_min

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Normalizer":
        return cls(**d)


@dataclass
class TeacherBatch:
    """Teacher outputs for the samples of one batch (cached or computed online)."""

    features: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]
    confidence: dict[str, torch.Tensor]
    sq_error: dict[str, torch.Tensor] | None = None


@dataclass
class Batch:
    index: torch.Tensor
    inputs: dict[str, torch.Tensor]
    target: torch.Tensor
    teacher: TeacherBatch | None = None


class SplitTensors:
    """One split ready for batching: raw arrays stay as stored, each batch is converted on the fly."""

    def __init__(self, split: SplitData, norm: Normalizer, device: torch.device,
                 teacher: Mapping[str, TeacherScores] | None = None) -> None:
        self.split = split
        self.norm = norm
        self.device = device
        self.modalities = list(split.inputs)
        self.target = norm.target(split.labels)
        self.teacher = None
        if teacher is not None:
            missing = [m for m in self.modalities if m not in teacher]
            if missing:
                raise ValueError(f"the teacher cache has no scores for modalities {missing}")
            for m in self.modalities:
                if len(teacher[m].confidence) != len(split):
                    raise ValueError(f"teacher cache for {m} has {len(teacher[m].confidence)} rows, "
                                     f"the split has {len(split)}; rerun the score stage")
            self.teacher = {m: {name: torch.from_numpy(v) for name, v in vars(teacher[m]).items() if v is not None}
                            for m in self.modalities}

    def __len__(self) -> int:
        return len(self.split)

    def batch(self, index: np.ndarray) -> Batch:
        idx = np.asarray(index)
        t_idx = torch.from_numpy(idx)
        inputs = {m: self.norm.inputs(m, self.split.inputs[m][idx]).to(self.device) for m in self.modalities}
        teacher = None
        if self.teacher is not None:
            pick = {m: {k: v[t_idx].to(self.device) for k, v in d.items()} for m, d in self.teacher.items()}
            teacher = TeacherBatch(
                features={m: d["features"] for m, d in pick.items()},
                logits={m: d["logits"] for m, d in pick.items()},
                confidence={m: d["confidence"] for m, d in pick.items()},
                sq_error={m: d["sq_error"] for m, d in pick.items()} if self.norm.task == "regression" else None,
            )
        return Batch(index=t_idx, inputs=inputs, target=self.target[t_idx].to(self.device), teacher=teacher)

    def batches(self, batch_size: int, shuffle_seed: int | None = None) -> Iterator[Batch]:
        """All samples in batches; shuffled by a generator seeded per epoch so resumes are exact."""
        n = len(self)
        order = np.arange(n) if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(n)
        for start in range(0, n, batch_size):
            yield self.batch(order[start:start + batch_size])
