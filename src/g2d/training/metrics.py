"""Metrics on numpy arrays: accuracy and macro-F1; MAPE, R^2, RMSE and MAE (defined in docs/evaluation.md)."""

from __future__ import annotations

import numpy as np


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean())


def macro_f1(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1; a class absent from both predictions and labels is skipped."""
    pred = logits.argmax(axis=1)
    scores = []
    for c in range(num_classes):
        tp = int(((pred == c) & (labels == c)).sum())
        fp = int(((pred == c) & (labels != c)).sum())
        fn = int(((pred != c) & (labels == c)).sum())
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def mape(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute percentage error: mean |(y - y_hat) / y| * 100."""
    return float(np.mean(np.abs((target - pred) / target)) * 100.0)


def r2(pred: np.ndarray, target: np.ndarray) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot (0 when the targets are constant)."""
    ss_res = float(np.sum((target - pred) ** 2))
    ss_tot = float(np.sum((target - target.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0


def rmse(pred: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error, in the target's units."""
    return float(np.sqrt(np.mean((target - pred) ** 2)))


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error, in the target's units."""
    return float(np.mean(np.abs(target - pred)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def task_summary(task: str, logits: np.ndarray, labels: np.ndarray, norm: object) -> dict[str, float]:
    """The metrics reported for one output head: accuracy and macro-F1, or MAPE, R^2, RMSE and MAE in
    target units (MAPE first: the report's main regression metric, as in the paper's Table 3)."""
    if task == "classification":
        return {"accuracy": accuracy(logits, labels), "macro_f1": macro_f1(logits, labels, logits.shape[1])}
    pred = norm.unscale(sigmoid(logits.reshape(-1)))  # type: ignore[attr-defined]
    return {"mape": mape(pred, labels), "r2": r2(pred, labels), "rmse": rmse(pred, labels), "mae": mae(pred, labels)}
