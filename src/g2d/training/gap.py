"""The modality gap (paper, Figure 4; Liang et al., "Mind the Gap", NeurIPS 2022).

Each modality's student features on the test split are L2-normalised (so only their directions
count, as on the hypersphere Liang et al. study) and the gap between two modalities is the distance
between their centroids: ||mean(x / |x|) - mean(y / |y|)||, in [0, 2]. With k > 2 modalities every
pair is reported and the headline number is their mean. The 2-D picture is a PCA of all modalities'
normalised features together (fitted on them, so the axes are the directions that separate them
most), drawn with a seeded subsample per modality. Features of different widths share no space: the
gap is then undefined (reported as such, never padded).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np


def normalised(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), in float64."""
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def shared_width(features: Mapping[str, np.ndarray]) -> bool:
    """True when every modality's features have the same width (a shared space to measure in)."""
    return len({int(np.prod(f.shape[1:])) for f in features.values()}) == 1


def modality_gap(features: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """{"pairs": {"a-b": gap}, "mean": mean gap over pairs}, or the reason it is undefined."""
    if len(features) < 2:
        return {"pairs": {}, "mean": None, "undefined": "fewer than two modalities"}
    if not shared_width(features):
        widths = {m: int(np.prod(f.shape[1:])) for m, f in features.items()}
        return {"pairs": {}, "mean": None, "undefined": f"feature widths differ {widths}: no shared space"}
    centroids = {m: normalised(f).mean(axis=0) for m, f in features.items()}
    pairs = {
        f"{a}-{b}": float(np.linalg.norm(centroids[a] - centroids[b])) for a, b in itertools.combinations(centroids, 2)
    }
    return {"pairs": pairs, "mean": float(np.mean(list(pairs.values())))}


def projection(features: Mapping[str, np.ndarray], per_modality: int = 300, seed: int = 0) -> dict[str, Any]:
    """2-D PCA coordinates of a seeded subsample of each modality's normalised features, and the share of
    variance the two axes explain; empty when the widths differ."""
    if len(features) < 2 or not shared_width(features):
        return {"points": {}, "explained": []}
    rng = np.random.default_rng(seed)
    picked = {}
    for m, f in features.items():
        rows = np.sort(rng.permutation(len(f))[: min(per_modality, len(f))])
        picked[m] = normalised(f[rows])  # rows scale independently: only the drawn rows need it
    pooled = np.concatenate(list(picked.values()))
    mean = pooled.mean(axis=0)
    _, singular, vt = np.linalg.svd(pooled - mean, full_matrices=False)
    axes = vt[:2]
    # a fixed sign per axis (largest loading positive), so reruns and seeds are drawn alike
    axes = axes * np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    variance = singular**2
    explained = (variance[:2] / variance.sum()).tolist() if variance.sum() > 0 else [0.0] * len(axes)
    points = {m: np.round((x - mean) @ axes.T, 5).tolist() for m, x in picked.items()}
    return {"points": points, "explained": explained}
