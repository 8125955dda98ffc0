"""PNG figures: teacher confidence over epochs (Fig. 3), training curves with SMP phases, test bars, the
modality gap (Fig. 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from g2d.io.atomic import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_teacher_confidence(logs: Mapping[str, Sequence[Mapping]], path: Path, title: str) -> None:
    """Mean teacher confidence on the true class per epoch, train (solid) and val (dashed)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (m, history) in enumerate(logs.items()):
        epochs = [r["epoch"] for r in history]
        color = f"C{i}"
        ax.plot(epochs, [r["train_confidence"] for r in history], color=color, label=f"{m} (train)")
        ax.plot(epochs, [r["val_confidence"] for r in history], color=color, ls="--", label=f"{m} (val)")
    ax.set(xlabel="epoch", ylabel="confidence rho (Eq. 5)", title=title, ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_training_curves(
    history: Sequence[Mapping],
    modalities: Sequence[str],
    taus: Sequence[int],
    path: Path,
    title: str,
    metric: str = "acc",
) -> None:
    """Validation metric of the fused output and each modality per epoch, SMP phases shaded."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    epochs = [r["epoch"] for r in history]
    start = 0
    for j, tau in enumerate(taus):
        if tau == 0:
            continue
        label = "joint phase" if j == len(taus) - 1 else f"phase {j + 1}: rank-{j + 1} modality only"
        ax.axvspan(start + 0.5, start + tau + 0.5, color=f"C{j + 4}", alpha=0.08, label=label)
        start += tau
    ax.plot(epochs, [r[f"val_{metric}"] for r in history], color="k", lw=2, label="fused (val)")
    for i, m in enumerate(modalities):
        ax.plot(epochs, [r[f"val_{metric}_{m}"] for r in history], color=f"C{i}", label=f"{m} (val)")
    ax.set(xlabel="epoch", ylabel=f"validation {metric}", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def plot_test_bars(rows: Mapping[str, Mapping[str, tuple[float, float]]], path: Path, title: str, ylabel: str) -> None:
    """Grouped bars: for each output (fused, each modality), one bar per model, with std error bars."""
    groups = list(next(iter(rows.values())).keys()) if rows else []
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    width = 0.8 / max(len(rows), 1)
    for i, (model, values) in enumerate(rows.items()):
        xs = [g + i * width for g in range(len(groups))]
        means = [values[g][0] if g in values else 0.0 for g in groups]
        stds = [values[g][1] if g in values else 0.0 for g in groups]
        ax.bar(xs, means, width, yerr=stds, label=model, color=f"C{i}", capsize=3)
    ax.set_xticks([g + width * (len(rows) - 1) / 2 for g in range(len(groups))], groups)
    ax.set(ylabel=ylabel, title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_modality_gap(gap: Mapping[str, Any], path: Path, title: str) -> None:
    """Figure 4: each modality's normalised student features in the 2-D PCA of all of them, coloured by
    modality, the gap (distance between centroids, g2d.training.gap) in the title."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    for i, (m, points) in enumerate(gap["points"].items()):
        xy = np.asarray(points, dtype=float).reshape(-1, 2)
        ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.5, color=f"C{i}", label=m)
    explained = gap.get("explained") or [0.0, 0.0]
    value = "undefined" if gap.get("mean") is None else f"{gap['mean']:.3f}"
    ax.set(
        xlabel=f"PC1 ({100 * explained[0]:.0f}%)",
        ylabel=f"PC2 ({100 * explained[-1]:.0f}%)",
        title=f"{title}\nmodality gap {value}",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, markerscale=2)
    _save(fig, path)
