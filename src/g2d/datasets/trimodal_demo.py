"""A synthetic three-modality set in the layout of UR-Funny and IEMOCAP as `g2d convert-pickle` writes
them (`{train,val,test}.npz`, each `text`, `audio`, `vision` of shape (N, T, D), `labels`, `ids`), read
by the `arrays` source: three modalities end to end without the real data, which cannot be fetched here.

The imbalance is the one UR-Funny shows, text far ahead of audio and vision:
  - each sample has a class y (`classes`, 2 as UR-Funny's humour label); for each modality it shows
    its own class with probability `informative[m]` and another class otherwise (a modality that
    "says" something else, which no amount of training fixes);
  - a modality's steps are `signal[m]` x a per-step amplitude in [0.5, 1.5] x the unit prototype of
    the class it shows (one fixed random direction per modality and class), plus unit Gaussian noise;
  - each sequence has a length drawn in [min_length x steps, steps]; the steps after it are zero, as
    aligned MulT-style features are padded (what `sequence_transformer` masks).
So a text teacher is near-perfect, audio and vision teachers are much weaker, and a jointly trained
student can fit the labels from text alone: the modality depression G2D targets. Every draw comes
from numpy Generators seeded by (seed, split, modality), so the files are the same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from g2d.config.schema import require
from g2d.io.atomic_dir import generated_dir

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Params:
    """Size of the synthetic set and how much each modality says about the class."""

    seed: int = 0
    train: int = 400
    val: int = 100
    test: int = 100
    classes: int = 2
    steps: int = 16
    min_length: float = 0.5
    dims: dict[str, int] = field(default_factory=lambda: {"text": 24, "audio": 12, "vision": 16})
    informative: dict[str, float] = field(default_factory=lambda: {"text": 1.0, "audio": 0.75, "vision": 0.7})
    signal: dict[str, float] = field(default_factory=lambda: {"text": 1.5, "audio": 0.35, "vision": 0.3})

    def validate(self, where: str) -> None:
        require(self.seed >= 0, f"{where}.seed", "must be a non-negative integer")
        for split in SPLITS:
            require(getattr(self, split) >= self.classes, f"{where}.{split}", "needs at least one sample per class")
        require(self.classes >= 2, f"{where}.classes", "must be at least 2")
        require(self.steps >= 1, f"{where}.steps", "must be at least 1")
        require(0 < self.min_length <= 1, f"{where}.min_length", "must be a fraction of steps in (0, 1]")
        require(len(self.dims) >= 2, f"{where}.dims", "name two or more modalities, each with its feature width")
        for m, d in self.dims.items():
            require(d >= 1, f"{where}.dims.{m}", "must be a positive feature width")
        for name in ("informative", "signal"):
            given = getattr(self, name)
            require(
                set(given) == set(self.dims),
                f"{where}.{name}",
                f"give one value per modality of dims: {list(self.dims)}",
            )
        for m, p in self.informative.items():
            require(0 <= p <= 1, f"{where}.informative.{m}", "must be a probability in [0, 1]")
        for m, s in self.signal.items():
            require(s >= 0, f"{where}.signal.{m}", "must be non-negative")


def prototypes(params: Params) -> dict[str, np.ndarray]:
    """One unit direction per modality and class, (classes, D), fixed by the seed."""
    out = {}
    for i, (m, d) in enumerate(params.dims.items()):
        raw = np.random.default_rng([params.seed, 0, i]).normal(size=(params.classes, d))
        out[m] = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    return out


def draw_split(params: Params, split: str) -> dict[str, np.ndarray]:
    """One split's arrays: balanced classes in a seeded order, each modality drawn from its own stream."""
    n = getattr(params, split)
    s = SPLITS.index(split)
    labels = np.random.default_rng([params.seed, 1, s]).permutation(np.arange(n) % params.classes)
    lengths_rng = np.random.default_rng([params.seed, 2, s])
    shortest = max(1, int(np.ceil(params.min_length * params.steps)))
    lengths = lengths_rng.integers(shortest, params.steps + 1, size=n)
    padded = np.arange(params.steps)[None, :] >= lengths[:, None]  # (N, T): steps after each length
    out: dict[str, np.ndarray] = {}
    for i, (m, proto) in enumerate(prototypes(params).items()):
        rng = np.random.default_rng([params.seed, 3, s, i])
        other = (labels + rng.integers(1, params.classes, size=n)) % params.classes
        shown = np.where(rng.random(n) < params.informative[m], labels, other)
        amplitude = rng.uniform(0.5, 1.5, size=(n, params.steps, 1))
        x = params.signal[m] * amplitude * proto[shown][:, None, :] + rng.normal(size=(n, params.steps, proto.shape[1]))
        x[padded] = 0.0
        out[m] = x.astype(np.float32)
    out["labels"] = labels.astype(np.int64)
    out["ids"] = np.array([f"{split}_{j:05d}" for j in range(n)])
    return out


def generate(out_dir: str | Path, params: Params, force: bool = False) -> dict[str, Any]:
    """Write `{train,val,test}.npz` to `out_dir`, replacing it only once every file is written, and
    only if it is empty or an earlier demo (or `force`)."""
    sizes: dict[str, int] = {}
    with generated_dir(out_dir, force) as staging:
        for split in SPLITS:
            arrays = draw_split(params, split)
            np.savez(staging / f"{split}.npz", allow_pickle=False, **arrays)
            sizes[split] = len(arrays["labels"])
    return {"samples": sizes, "modalities": list(params.dims), "steps": params.steps}
