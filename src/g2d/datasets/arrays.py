"""The `arrays` source: a dataset of any number of named modalities, already turned into arrays.

How a researcher runs G2D on their own data without writing a reader. Per split, either a folder of
`.npy` files or one `.npz` archive::

    {raw_dir}/train/<modality>.npy ... labels.npy [ids.npy]      or   {raw_dir}/train.npz
    {raw_dir}/val/...        (optional: held out of train when absent)   val.npz
    {raw_dir}/test/...                                                    test.npz

Each `<modality>` array is (N, ...) with one row per sample: images (C, H, W), frame stacks
(T, C, H, W), spectrograms (1, F, T), sequences (T, D), tables (D,), token ids (T,). Floats are stored
as float32; uint8 (and bool) stay uint8, which marks an image the training stages scale from [0, 255];
integer arrays are stored as float32 when exact. A modality named in `token_modalities` holds integer
token ids, 0 for padding: stored as int32, never standardised, its vocabulary size (`vocab_size`, or
the largest id in any split + 1) recorded in the dataset meta for the embedding of `text_transformer`.
`labels` are class indices 0..K-1 (`task: classification`) or finite numbers (`task: regression`);
`ids` (strings) are optional and must be unique. Every array is loaded without pickle
(`allow_pickle=False`); shapes, dtypes, row counts, labels and token ids are checked with messages
naming the file; rows holding NaN or Inf are skipped and listed (shared check, g2d.datasets.common).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from g2d.config.schema import require
from g2d.datasets import RawDataError
from g2d.datasets.common import Sample, Skipped, preprocessing_record, report_header, write_dataset
from g2d.datasets.splits import hold_out_stratified
from g2d.io.dataset_file import SPLITS, DatasetMeta

SOURCE = "arrays"
MODALITY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
RESERVED = ("labels", "ids")


@dataclass(frozen=True)
class Params:
    """The `datasets.<name>.preprocess` section for source `arrays`."""

    modalities: tuple[str, ...] = ()
    image_modalities: tuple[str, ...] = ()  # (C, H, W) or (T, C, H, W) arrays that augmentation may crop
    token_modalities: tuple[str, ...] = ()  # integer token ids (0: padding), passed to the model as ids
    vocab_size: int | None = None  # token ids must be below it (null: the largest id in any split + 1)
    task: Literal["classification", "regression"] = "classification"
    class_names: tuple[str, ...] = ()  # default: the label values 0..K-1 as names
    val_fraction: float = 0.1  # of train, held out (stratified by class, seeded) when no val split is given
    seed: int = 0
    max_skipped_fraction: float = 0.05
    workers: int = 1

    def validate(self, where: str) -> None:
        require(len(self.modalities) > 0, f"{where}.modalities", "name at least one modality (its file name)")
        for i, name in enumerate(self.modalities):
            require(
                MODALITY_NAME.fullmatch(name) is not None and name not in RESERVED,
                f"{where}.modalities[{i}]",
                f"{name!r} is not a modality name (a letter, then letters, digits or _; not labels or ids)",
            )
        require(len(set(self.modalities)) == len(self.modalities), f"{where}.modalities", "names must be distinct")
        for i, name in enumerate(self.image_modalities):
            require(name in self.modalities, f"{where}.image_modalities[{i}]", f"{name!r} is not in modalities")
        for i, name in enumerate(self.token_modalities):
            require(name in self.modalities, f"{where}.token_modalities[{i}]", f"{name!r} is not in modalities")
            require(
                name not in self.image_modalities,
                f"{where}.token_modalities[{i}]",
                f"{name!r} is also in image_modalities; token ids are not pixels: augmentation must not crop them",
            )
        require(
            self.vocab_size is None or 2 <= self.vocab_size < 2**31,
            f"{where}.vocab_size",
            "must be at least 2 (id 0 is padding) and below 2**31 (ids are stored as int32), or null",
        )
        require(0 < self.val_fraction < 1, f"{where}.val_fraction", "must be in (0, 1)")
        require(0 <= self.max_skipped_fraction <= 1, f"{where}.max_skipped_fraction", "must be in [0, 1]")
        require(self.workers >= 1, f"{where}.workers", "must be at least 1")


def modalities(params: Params) -> tuple[str, ...]:
    """The modalities this dataset writes: the ones its params name, in that order (model order)."""
    return params.modalities


def image_modalities(params: Params) -> tuple[str, ...]:
    return params.image_modalities


@dataclass
class SplitArrays:
    """One split's arrays as found on disk (memory-mapped where the format allows)."""

    where: dict[str, str]  # array name -> the file (and key) it came from, for messages
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.arrays["labels"])


def _split_location(root: Path, split: str) -> Path | None:
    """The split's folder or .npz archive (val may also be spelled valid); None if absent."""
    for name in (split, "valid") if split == "val" else (split,):
        for candidate in (root / name, root / f"{name}.npz"):
            if candidate.exists():
                return candidate
    return None


def check_raw(raw_dir: str | Path, params: Params | None = None) -> None:
    root = Path(raw_dir)
    missing = [s for s in ("train", "test") if _split_location(root, s) is None]
    if not root.is_dir() or missing:
        raise RawDataError(
            f"{root}: expected a folder per split with one .npy per modality plus labels.npy (or one <split>.npz), "
            f"for train and test (val optional); missing: {', '.join(missing) or 'the folder'} (docs/data.md)"
        )


def _load(location: Path, names: Sequence[str]) -> SplitArrays:
    """The named arrays of one split, without pickle; a missing or unreadable one is named with the fix."""
    out = SplitArrays(where={})
    archive = None
    if location.suffix == ".npz":
        try:
            archive = np.load(location, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RawDataError(f"{location}: not a readable .npz archive ({exc})") from exc
    for name in names:
        if archive is not None:
            where = f"{location} [{name}]"
            if name not in archive.files:
                if name == "ids":
                    continue
                raise RawDataError(f"{location}: no array {name!r}; it holds {', '.join(archive.files)}")
            loader = lambda: archive[name]  # noqa: B023 - used at once
        else:
            path = location / f"{name}.npy"
            where = str(path)
            if not path.is_file():
                if name == "ids":
                    continue
                raise RawDataError(f"{path}: missing; every split needs one .npy per modality and labels.npy")
            loader = lambda: np.load(path, mmap_mode="r", allow_pickle=False)  # noqa: B023 - used at once
        try:
            out.arrays[name] = loader()
        except (OSError, ValueError) as exc:
            raise RawDataError(f"{where}: not a readable array without pickle ({exc})") from exc
        out.where[name] = where
    return out


def _stored_dtype(array: np.ndarray, where: str) -> str:
    """How a modality is stored: uint8 images stay uint8, numbers become float32 (exactly, for integers)."""
    kind = array.dtype.kind
    if kind == "u" and array.dtype.itemsize == 1 or kind == "b":
        return "uint8"
    if kind == "f":
        return "float32"
    if kind in "iu":
        if array.size and int(np.abs(array).max()) > 2**24:
            raise RawDataError(f"{where}: integers above 2**24 cannot be stored exactly as float32; rescale them")
        return "float32"
    raise RawDataError(f"{where}: dtype {array.dtype} is not numeric; store numbers (float, int, uint8 or bool)")


def _token_top(array: np.ndarray, where: str, vocab_size: int | None) -> int:
    """The largest id of a token-id array, once it holds integer ids 0 (padding) .. vocab_size - 1."""
    if array.dtype.kind not in "iu":
        raise RawDataError(
            f"{where}: dtype {array.dtype}, but token ids must be integers (0 for padding); store the ids "
            "(e.g. int64), or drop the modality from token_modalities if it holds features"
        )
    if array.size == 0:
        return 0
    low, high = int(np.min(array)), int(np.max(array))
    if low < 0:
        raise RawDataError(f"{where}: token id {low} is negative; ids are 0 (padding) or more")
    limit = vocab_size if vocab_size is not None else 2**31
    if high >= limit:
        raise RawDataError(
            f"{where}: token id {high} is not below vocab_size {limit}; raise preprocess.vocab_size "
            "(or leave it null: the largest id + 1)"
        )
    return high


def _check_split(data: SplitArrays, params: Params) -> None:
    labels, where = data.arrays["labels"], data.where["labels"]
    n = len(labels)
    if labels.ndim != 1 or n == 0:
        raise RawDataError(f"{where}: expected labels of shape (N,) with N > 0, got {labels.shape}")
    for name in (*params.modalities, "ids"):
        if name in data.arrays and len(data.arrays[name]) != n:
            raise RawDataError(
                f"{data.where[name]}: {len(data.arrays[name])} rows, but {where} has {n}; one row per sample"
            )
    if params.task == "classification":
        if labels.dtype.kind not in "iub" and not (
            labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
        ):
            raise RawDataError(f"{where}: classification labels must be class indices 0..K-1, got dtype {labels.dtype}")
        indices = labels.astype(np.int64)
        too_big = indices >= len(params.class_names) if params.class_names else np.zeros(n, dtype=bool)
        bad = indices[(indices < 0) | too_big]
        if bad.size:
            limit = f"0..{len(params.class_names) - 1}" if params.class_names else "0 or more"
            raise RawDataError(f"{where}: labels {sorted(set(bad.tolist()))[:5]} are outside {limit}")
    elif labels.dtype.kind not in "iuf" or not np.all(np.isfinite(labels)):
        raise RawDataError(f"{where}: regression targets must be finite numbers")
    if "ids" in data.arrays:
        ids = [str(i) for i in data.arrays["ids"]]
        if len(set(ids)) != len(ids):
            raise RawDataError(f"{data.where['ids']}: ids must be unique")


def preprocess(
    dataset: str,
    raw_dir: str | Path,
    params: Params,
    out_path: str | Path,
    report_path: str | Path,
    workers: int | None = None,
) -> dict[str, Any]:
    """Check the arrays, hold out validation if needed, and write the dataset file and its report."""
    root = Path(raw_dir)
    check_raw(root, params)
    names = (*params.modalities, "labels", "ids")
    given = {s: _split_location(root, s) for s in SPLITS}
    loaded = {s: _load(loc, names) for s, loc in given.items() if loc is not None}
    for data in loaded.values():
        _check_split(data, params)
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    tokens: dict[str, int] = {}
    for m in params.modalities:
        first = loaded["train"]
        shape = tuple(first.arrays[m].shape[1:])
        for data in loaded.values():
            if tuple(data.arrays[m].shape[1:]) != shape:
                raise RawDataError(
                    f"{data.where[m]}: rows of shape {tuple(data.arrays[m].shape[1:])}, but train's are {shape}; "
                    "every split needs the same shape per modality"
                )
            if m in params.token_modalities:
                top = _token_top(data.arrays[m], data.where[m], params.vocab_size)
                tokens[m] = max(tokens.get(m, 1), top + 1)
            else:
                _stored_dtype(data.arrays[m], data.where[m])
        if m in params.token_modalities:
            shapes[m] = (shape, "int32")
            tokens[m] = params.vocab_size or tokens[m]
        else:
            shapes[m] = (shape, _stored_dtype(first.arrays[m], first.where[m]))
    classification = params.task == "classification"
    if classification:
        top = max(int(np.max(d.arrays["labels"])) for d in loaded.values())
        class_names = params.class_names or tuple(str(c) for c in range(top + 1))
    else:
        class_names = ()
    # (split, source split, row) of every sample: val held out of train when the raw data has none
    rows: list[tuple[str, str, int]] = []
    held: set[int] = set()
    if "val" not in loaded:
        labels = np.asarray(loaded["train"].arrays["labels"])
        rows_of = [f"{i:09d}" for i in range(len(labels))]
        groups = [str(v) for v in labels] if classification else [""] * len(labels)  # regression: unstratified
        held = {int(i) for i in hold_out_stratified(rows_of, groups, params.val_fraction, params.seed)}
    for part in ("train", "val", "test"):
        if part in loaded:
            rows += [("val" if part == "train" and i in held else part, part, i) for i in range(len(loaded[part]))]
    rows.sort(key=lambda r: SPLITS.index(r[0]))

    def samples() -> Iterator[Sample]:
        for split, part, i in rows:
            data = loaded[part]
            label = data.arrays["labels"][i]
            ids = data.arrays.get("ids")
            yield Sample(
                split,
                {m: np.asarray(data.arrays[m][i], dtype=shapes[m][1]) for m in params.modalities},
                int(label) if classification else float(label),
                str(ids[i]) if ids is not None else f"{part}{i:07d}",
                origin={m: f"{data.where[m]} row {i}" for m in params.modalities},
            )

    def report(counts: Mapping[str, int], lost: Sequence[Skipped]) -> dict[str, Any]:
        return {
            **report_header(dataset, SOURCE, root, counts, len(rows), lost, params),
            "rows_found": len(rows),
            "val": "given" if "val" in loaded else f"held out of train ({params.val_fraction:g}, seed {params.seed})",
            "stored": {m: {"shape": list(s), "dtype": d} for m, (s, d) in shapes.items()},
            "vocab_sizes": tokens,
        }

    meta = DatasetMeta(
        dataset=dataset,
        source=SOURCE,
        task=params.task,
        modalities=params.modalities,
        class_names=class_names,
        preprocessing=preprocessing_record(SOURCE, params),
        tokens=tokens,
    )
    return write_dataset(
        meta,
        shapes,
        samples(),
        total=len(rows),
        unit="row",
        out_path=out_path,
        report_path=report_path,
        report=report,
        found=len(rows),
        what="rows",
        max_skipped_fraction=params.max_skipped_fraction,
    )
