"""The one place g2d unpickles anything: a one-time, explicit conversion of a feature-sequence pickle
(UR-Funny, IEMOCAP, CMU-MOSI/MOSEI as researchers download them) into the `arrays` source's layout.

Unpickling runs code from the file, so the pipeline never does it: `g2d convert-pickle FILE --out DIR`
is run by hand, says that it unpickles FILE, and writes `DIR/{train,val,test}.npz`, which the `arrays`
source then reads with `allow_pickle=False`. Only run it on a file from a source you trust.

Expected structure (the aligned-features pickles of MulT and its successors)::

    {"train": {"text": (N, T, 300), "audio": (N, T, 74), "vision": (N, T, 35), "labels": ..., "id": ...},
     "valid": {...}, "test": {...}}

Split names train / valid or val or dev / test; modality keys are renamed with `--modality
NEW=OLD`. Features are written as float32; integer arrays (token ids) keep integer values (int64), for
the arrays source's `token_modalities`. Labels become one class index (or target) per sample:
(N,) and (N, 1) as they are (UR-Funny's humour 0/1), one-hot or multi-hot 0/1 (N, K) by the class
marked, scores (N, K) by argmax, and IEMOCAP's per-emotion [absent, present] pairs (N, K, 2) by the
emotion marked present; labels holding only whole numbers are written as int64 class indices. A 0/1
row that marks no class or several is not one sample of one class: it is dropped (from every array of
its split) and counted in what `convert` returns, rather than given the first class by argmax.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from g2d.datasets import RawDataError
from g2d.io.atomic import atomic_path

SPLIT_NAMES = {"train": ("train",), "val": ("valid", "val", "dev"), "test": ("test",)}


def unpickle(path: Path) -> Any:
    """Load the pickle (this runs code from it: the caller has said so to the user)."""
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh, encoding="latin1")  # noqa: S301 - explicit, user-requested conversion
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise RawDataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc


def class_indices(labels: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One label per sample from the layouts these pickles use (see the module docstring), and which
    rows to keep (False: a 0/1 row marking no class or several)."""
    labels = np.asarray(labels)
    if labels.ndim == 3 and labels.shape[2] == 2:  # IEMOCAP: (N, emotions, [absent, present])
        labels = labels[:, :, 1]
    elif labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim not in (1, 2):
        raise RawDataError(f"{where}: labels of shape {labels.shape} are not (N,), (N, 1), (N, K) or (N, K, 2)")
    keep = np.ones(len(labels), dtype=bool)
    if labels.ndim == 2:
        if np.isin(labels, (0, 1)).all():  # one-hot or multi-hot: exactly one class marked
            keep = labels.sum(axis=1) == 1
        labels = labels.argmax(axis=1)
    if labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels == np.round(labels)).all():
        labels = labels.astype(np.int64)  # whole numbers: class indices (e.g. UR-Funny's 0.0 / 1.0)
    return labels, keep


def convert(
    data: Any, source: Path, out_dir: Path, modalities: Mapping[str, str], labels: str = "labels", ids: str = "id"
) -> dict[str, dict[str, Any]]:
    """Write `out_dir/<split>.npz` for each split in `data`; return what was written (shapes per split)."""
    if not isinstance(data, Mapping):
        raise RawDataError(f"{source}: expected a dict of splits (train, valid, test), got a {type(data).__name__}")
    written: dict[str, dict[str, Any]] = {}
    for split, names in SPLIT_NAMES.items():
        key = next((n for n in names if n in data), None)
        if key is None:
            if split == "val":
                continue  # the arrays source holds validation out of train
            raise RawDataError(f"{source}: no {split!r} split; it holds {', '.join(map(str, data))}")
        part = data[key]
        if not isinstance(part, Mapping):
            raise RawDataError(f"{source} [{key}]: expected a dict of arrays, got a {type(part).__name__}")
        arrays: dict[str, np.ndarray] = {}
        for new, old in modalities.items():
            if old not in part:
                raise RawDataError(f"{source} [{key}]: no array {old!r}; it holds {', '.join(map(str, part))}")
            arrays[new] = _modality(part[old])
        if labels not in part:
            raise RawDataError(f"{source} [{key}]: no labels {labels!r}; it holds {', '.join(map(str, part))}")
        arrays["labels"], keep = class_indices(part[labels], f"{source} [{key}][{labels}]")
        if ids in part:
            arrays["ids"] = np.asarray(
                [_id(i) for i in np.asarray(part[ids], dtype=object).reshape(len(arrays["labels"]), -1)]
            )
        arrays = {name: a[keep] for name, a in arrays.items()}
        out = out_dir / f"{split}.npz"
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]
        written[split] = {name: list(a.shape) for name, a in arrays.items()}
        if not keep.all():
            written[split]["dropped (no single class marked)"] = int((~keep).sum())
    return written


def _modality(values: Any) -> np.ndarray:
    """A modality as the arrays source stores it: integer arrays (token ids) as int64, the rest float32."""
    array = np.asarray(values)
    return array.astype(np.int64) if array.dtype.kind in "iu" else array.astype(np.float32)


def _id(row: np.ndarray) -> str:
    """A sample id from the pickle's id row (a string, or parts such as [video, segment] joined by _)."""
    return "_".join(str(x.decode() if isinstance(x, bytes) else x) for x in row)
