"""Tabular normalisation, fitted on the training split only (MIS-ME's recipe).

Missing values are filled with the training mean of their column, then every column is standardised
with the training mean and standard deviation (population std, over the filled values; a constant
column gets std 1). The statistics go into the dataset file and the report, so that every later use
of the data applies the same transform, and no validation or test value ever shapes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TabularStats:
    """Per-column training mean and std, in the order of `features`."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rows: int

    @classmethod
    def fit(cls, features: Sequence[str], train: np.ndarray) -> TabularStats:
        """Fit on the training rows (N, F), NaN marking a missing value; ValueError names a column that is
        missing on every training row (nothing to fill it with)."""
        if train.ndim != 2 or train.shape[1] != len(features):
            raise ValueError(f"expected training rows of {len(features)} columns, got shape {train.shape}")
        empty = [f for f, column in zip(features, train.T) if np.isnan(column).all()]
        if empty:
            raise ValueError(
                f"column {empty[0]!r} has no value on any training row, so it has no training mean to fill "
                "missing cells with; fill it in the training sheet or leave it out of features"
            )
        mean = np.nanmean(train, axis=0)
        filled = np.where(np.isnan(train), mean, train)
        std = filled.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        return cls(tuple(features), tuple(map(float, mean)), tuple(map(float, std)), int(train.shape[0]))

    def apply(self, values: Sequence[float]) -> np.ndarray:
        """One row: missing values filled with the training mean, then standardised (float32)."""
        row = np.asarray(values, dtype=np.float64)
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        return ((np.where(np.isnan(row), mean, row) - mean) / std).astype(np.float32)

    def record(self) -> dict[str, object]:
        """What the dataset file and the report keep."""
        return {
            "fitted_on": "train",
            "training_rows": self.rows,
            "fill": "training mean",
            "features": list(self.features),
            "mean": list(self.mean),
            "std": list(self.std),
        }


def missing_counts(features: Sequence[str], rows: Sequence[Sequence[float]]) -> dict[str, int]:
    """How many cells of each column were missing (and filled)."""
    return {f: sum(math.isnan(r[i]) for r in rows) for i, f in enumerate(features)}
