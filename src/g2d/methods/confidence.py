"""Teacher confidence (Eq. 5).

Classification: a sample's confidence is the teacher's probability of the true class, and a batch's
rho is the mean over the batch. Regression has no class probability: we set (docs/method.md)
rho = 1 / (1 + MSE) on the [0, 1] target scale, so the cache keeps each sample's squared error and a
batch's rho is computed from the batch's mean squared error.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def sample_confidence(logits: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    """Per-sample confidence: p(true class) for classification, 1 / (1 + squared error) for regression."""
    if task == "classification":
        return torch.softmax(logits, dim=1).gather(1, target.long().view(-1, 1)).squeeze(1)
    return 1.0 / (1.0 + sample_sq_error(logits, target))


def sample_sq_error(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Regression: squared error of sigmoid(output) against the [0, 1]-scaled target."""
    return (torch.sigmoid(logits.view(-1)) - target.view(-1).float()) ** 2


def batch_confidence(
    confidence: torch.Tensor,
    sq_error: torch.Tensor | None,
    task: str,
    mean: Callable[[torch.Tensor], float] = lambda t: float(t.mean()),
) -> float:
    """rho for one batch (Eq. 5) from cached per-sample values; `mean` averages over the batch (over the
    global batch when it is shared by several processes: g2d.training.distributed.global_mean)."""
    if task == "classification":
        return mean(confidence)
    if sq_error is None:
        raise ValueError("regression confidence needs the per-sample squared errors")
    return 1.0 / (1.0 + mean(sq_error))


def cached_confidence(confidence: np.ndarray, sq_error: np.ndarray | None, task: str) -> float:
    """rho over a whole split from the score cache's per-sample values (the split as one batch)."""
    return batch_confidence(
        torch.from_numpy(confidence), None if sq_error is None else torch.from_numpy(sq_error), task
    )
