"""The teachers' score cache (`<run>/scores.h5`): each frozen teacher's outputs on every split,
written once by the score stage and read by the students and evaluation.

Layout, row-aligned with the dataset file's splits::

    /                               attrs: schema_version, and what the score stage records (dataset,
                                    modalities, teachers_dir, ...)
    /<split>/<modality>/features    float32 (N, D) teacher encoder features
    /<split>/<modality>/logits      float32 (N, C) teacher logits (C = 1 for regression)
    /<split>/<modality>/confidence  float32 (N,) per-sample confidence (Eq. 5 before the batch mean)
    /<split>/<modality>/sq_error    float32 (N,) regression only: squared error on the [0, 1] scale

With `augment.kind: views`, the cache also holds the view bank and each teacher's outputs on every
view, for the augmented modalities only (the others' teachers see the same input in every view)::

    /train_views/                   attrs: views (K), augment (JSON params) and seed that drew the bank
    /train_views/<modality>/boxes   int32 (K, N, 4) crop boxes (top, left, height, width), stored pixels
    /train_views/<modality>/flip    bool (K, N) horizontal flips
    /train_views/<modality>/features, logits, confidence[, sq_error]   as above, (K, N, ...)

Its `schema_version` is its own (the dataset file has another); every reader checks it first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from g2d.io import check_schema_version
from g2d.io.atomic import atomic_path

SCHEMA_VERSION = 1
TRAIN_VIEWS = "train_views"  # the group of teacher outputs per view of the training split


def check_version(path: str | os.PathLike[str], attrs: Mapping[str, Any]) -> None:
    """Fail, naming the file and the fix, unless it is a score cache of this g2d's schema version."""
    check_schema_version(path, attrs, SCHEMA_VERSION, "score cache", "score")


@dataclass
class TeacherScores:
    """Cached outputs of one frozen teacher on one split, row-aligned with the dataset file."""

    features: np.ndarray
    logits: np.ndarray
    confidence: np.ndarray
    sq_error: np.ndarray | None = None


@dataclass(frozen=True)
class ViewBank:
    """K stored augmented views of every training row, per augmented modality: crop boxes
    (top, left, height, width) in stored pixels, (K, N, 4) int32, and horizontal flips, (K, N) bool."""

    boxes: dict[str, np.ndarray]
    flip: dict[str, np.ndarray]

    @property
    def modalities(self) -> list[str]:
        return list(self.boxes)

    @property
    def views(self) -> int:
        return int(next(iter(self.boxes.values())).shape[0])

    @property
    def rows(self) -> int:
        return int(next(iter(self.boxes.values())).shape[1])


def write_scores(
    path: str | os.PathLike[str],
    scores: Mapping[str, Mapping[str, TeacherScores]],
    attrs: Mapping[str, Any],
    bank: ViewBank | None = None,
    bank_attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write the teacher cache {split: {modality: TeacherScores}} atomically; with `bank`, also its
    boxes and flips beside the per-view outputs (`scores[TRAIN_VIEWS]`, arrays (K, N, ...))."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        _write_attrs(h5, {**attrs, "schema_version": SCHEMA_VERSION})
        if bank is not None:
            group = h5.create_group(TRAIN_VIEWS)
            _write_attrs(group, {"views": bank.views, **(bank_attrs or {})})
            for modality in bank.modalities:
                group[f"{modality}/boxes"] = bank.boxes[modality].astype(np.int32)
                group[f"{modality}/flip"] = bank.flip[modality].astype(bool)
        for split, per_mod in scores.items():
            for modality, s in per_mod.items():
                group = h5.require_group(f"{split}/{modality}")
                group["features"] = s.features.astype(np.float32)
                group["logits"] = s.logits.astype(np.float32)
                group["confidence"] = s.confidence.astype(np.float32)
                if s.sq_error is not None:
                    group["sq_error"] = s.sq_error.astype(np.float32)


def _write_attrs(node: h5py.Group, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        node.attrs[key] = json.dumps(value) if not isinstance(value, (str, int, float)) else value


def read_view_bank(path: str | os.PathLike[str]) -> ViewBank | None:
    """The view bank stored in a score cache, or None if the cache has none (no `augment.kind: views`)."""
    with h5py.File(path, "r") as h5:
        check_version(path, h5.attrs)
        if TRAIN_VIEWS not in h5:
            return None
        group = h5[TRAIN_VIEWS]
        return ViewBank(
            boxes={m: g["boxes"][()] for m, g in group.items()}, flip={m: g["flip"][()] for m, g in group.items()}
        )


def read_scores(path: str | os.PathLike[str], split: str) -> dict[str, TeacherScores]:
    """Read the teacher cache of one split: {modality: TeacherScores}."""
    with h5py.File(path, "r") as h5:
        check_version(path, h5.attrs)
        if split not in h5:
            raise ValueError(
                f"{path}: no cached teacher scores for {split!r}; rerun the score stage"
                + (" with datasets.<name>.augment.kind: views" if split == TRAIN_VIEWS else "")
            )
        out = {}
        for modality, group in h5[split].items():
            out[modality] = TeacherScores(
                features=group["features"][()],
                logits=group["logits"][()],
                confidence=group["confidence"][()],
                sq_error=group["sq_error"][()] if "sq_error" in group else None,
            )
    return out
