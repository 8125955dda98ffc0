"""Linear probes: what a student's encoder knows about the target, whatever its head does.

Under late fusion the fused logits are the mean of the per-modality heads, so adding a per-class
vector to one head and subtracting it from another changes no fused prediction and no loss: the
training objective does not determine how the heads share their class offsets, and they drift
apart (features after ReLU and pooling have a large common component, so a head's weights carry a
class offset as well as its bias). A branch's own accuracy (the paper's "Audio"/"Video" rows, the
reference code's per-modality outputs) then mixes what the encoder learned with that offset. A
linear classifier fitted on the frozen encoder's training-split features (the linear evaluation of
Du et al., ICML 2023) measures the encoder alone; the report shows both.

The probe is fitted on the train split only; its L2 weight is chosen on the validation split; the
test split is only predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

L2_GRID = (1e-4, 1e-3, 1e-2)
MAX_ROWS = 50_000  # rows of the train split a probe is fitted on (seeded subsample above it)


@dataclass(frozen=True)
class LinearProbe:
    """Standardisation and a linear map, fitted on training features."""

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray  # (D, C): C classes, or 1 for regression
    bias: np.ndarray
    task: str
    l2: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Class logits, or (regression) the logit of the [0, 1]-scaled prediction, like a student's output."""
        out = ((features - self.mean) / self.std) @ self.weight + self.bias
        if self.task == "classification":
            return out
        p = np.clip(out, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))


def _fit(x: torch.Tensor, y: torch.Tensor, classes: int, task: str, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (L-BFGS, full batch) or ridge regression, on standardised x."""
    if task == "regression":
        xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
        reg = l2 * len(x) * torch.eye(xb.shape[1], dtype=x.dtype)
        reg[-1, -1] = 0.0  # the intercept is not penalised
        w = torch.linalg.solve(xb.T @ xb + reg, xb.T @ y.to(x.dtype).view(-1, 1))
        return w[:-1].numpy(), w[-1].numpy()
    weight = torch.zeros(x.shape[1], classes, dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(classes, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS(
        [weight, bias], max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return weight.detach().numpy(), bias.detach().numpy()


def _score(probe: LinearProbe, x: np.ndarray, y: np.ndarray) -> float:
    """Validation score, higher is better: accuracy, or minus the MSE on the [0, 1] scale."""
    out = probe.logits(x)
    if probe.task == "classification":
        return float((out.argmax(axis=1) == y).mean())
    return -float(np.mean((1 / (1 + np.exp(-out.reshape(-1))) - y) ** 2))


def fit_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    task: str,
    classes: int,
    l2_grid: Sequence[float] = L2_GRID,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> LinearProbe:
    """A linear probe on features: fitted on train (at most `max_rows`, seeded), L2 weight chosen on val.

    `train_y`/`val_y` are class indices, or regression targets on the [0, 1] scale.
    """
    if len(train_x) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(train_x), max_rows, replace=False))
        train_x, train_y = train_x[keep], train_y[keep]
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0) + 1e-6
    x = torch.from_numpy(((train_x - mean) / std).astype(np.float64))
    y = torch.from_numpy(train_y.astype(np.int64 if task == "classification" else np.float64))
    best: tuple[float, LinearProbe] | None = None
    for l2 in l2_grid:
        weight, bias = _fit(x, y, classes, task, l2)
        probe = LinearProbe(mean=mean, std=std, weight=weight, bias=bias, task=task, l2=l2)
        score = _score(probe, val_x, val_y)
        if best is None or score > best[0]:
            best = (score, probe)
    assert best is not None
    return best[1]
