"""The dataset file: the one HDF5 schema every dataset source writes and every training stage reads.

Layout of a preprocessed dataset file (`data/processed/<dataset>.h5`)::

    /                      attrs: schema_version, dataset, source, task ("classification" |
                           "regression"), class_names (JSON list; empty for regression),
                           modalities (JSON list, in model order), preprocessing (JSON object),
                           tokens (JSON object {modality: vocabulary size} of the token-id modalities;
                           absent in files without any: read as {})
    /<split>/              one group per split: train, val, test
    /<split>/<modality>    float32 or uint8 array (N, ...) -- one row per sample; int32 token ids
                           (N, T) for a token modality (0 is padding), never standardised
    /<split>/labels        int64 (classification) or float32 (regression), shape (N,)
    /<split>/ids           variable-length UTF-8 strings, shape (N,): the source's sample id

Rows are aligned across a split's arrays. Arrays are chunked one sample per chunk so that
per-sample reads never decode neighbours (measured: with h5py, reading a shuffled batch row by row
costs the same with one row or 64 KiB per chunk, even for 784-byte MNIST images).

A split is read through one interface, `SplitReader` (`modalities`, `labels`, `sample_shape`,
`read`, `close`), in one of two ways: `load_split` holds it in memory (`SplitData`), `StreamedSplit`
reads each batch from the file when it is asked for, so memory does not grow with the dataset.
Every reader checks the file's `schema_version` first. The teachers' score cache is another file
with its own version: g2d.io.score_cache.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import h5py
import numpy as np

from g2d.errors import RunError
from g2d.io import check_schema_version
from g2d.io.atomic import atomic_path

SCHEMA_VERSION = 1
SPLITS: tuple[str, ...] = ("train", "val", "test")
TASKS: tuple[str, ...] = ("classification", "regression")


def check_version(path: str | os.PathLike[str], attrs: Mapping[str, Any]) -> None:
    """Fail, naming the file and the fix, unless it is a dataset file of this g2d's schema version."""
    check_schema_version(path, attrs, SCHEMA_VERSION, "dataset file", "preprocess")


@dataclass(frozen=True)
class DatasetMeta:
    """What a model needs to know about a preprocessed dataset."""

    dataset: str
    source: str
    task: str
    modalities: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    tokens: Mapping[str, int] = field(default_factory=dict)  # token-id modality -> vocabulary size (max id + 1)

    @property
    def num_outputs(self) -> int:
        """Width of a head: one logit per class, or one output for regression."""
        return len(self.class_names) if self.task == "classification" else 1


@runtime_checkable
class SplitReader(Protocol):
    """One split of a dataset file, however it is held: what batching, statistics and cropping read."""

    labels: np.ndarray

    def __len__(self) -> int: ...

    @property
    def modalities(self) -> list[str]: ...

    def sample_shape(self, modality: str) -> tuple[int, ...]: ...

    def read(self, modality: str, index: np.ndarray) -> np.ndarray:
        """Rows `index` of one modality, in the order given, as stored (no conversion)."""
        ...

    def close(self) -> None:
        """Release any file handle (before forking DataLoader workers); a later read reopens it."""
        ...


@dataclass
class SplitData:
    """One split held in memory: inputs per modality, labels and sample ids, row-aligned."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    ids: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def modalities(self) -> list[str]:
        return list(self.inputs)

    def sample_shape(self, modality: str) -> tuple[int, ...]:
        return tuple(self.inputs[modality].shape[1:])

    def read(self, modality: str, index: np.ndarray) -> np.ndarray:
        """Rows `index` of one modality, in the order given (a copy, as stored: no conversion)."""
        return self.inputs[modality][np.asarray(index)]

    def close(self) -> None:
        """Nothing to release; present so that callers need not know how a split is held."""


class StreamedSplit:
    """One split read from its file batch by batch; only labels (8 bytes a row) stay in memory.

    The file is opened lazily, once per process: h5py handles must not cross a fork, so a
    DataLoader worker opens its own on first read, and pickling (spawned workers) drops the handle.
    """

    def __init__(self, path: str | os.PathLike[str], split: str, modalities: Sequence[str] | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.path = Path(path)
        self.split = split
        with h5py.File(self.path, "r") as h5:
            check_version(self.path, h5.attrs)
            if split not in h5:
                raise ValueError(f"{path}: no split {split!r}")
            group = h5[split]
            mods = list(modalities) if modalities is not None else json.loads(h5.attrs["modalities"])
            self._layout = {m: (tuple(group[m].shape[1:]), group[m].dtype) for m in mods}
            self.labels: np.ndarray = group["labels"][()]
        self._h5: h5py.File | None = None
        self._pid = -1

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def modalities(self) -> list[str]:
        return list(self._layout)

    def sample_shape(self, modality: str) -> tuple[int, ...]:
        return self._layout[modality][0]

    def read(self, modality: str, index: np.ndarray) -> np.ndarray:
        """Rows `index` in the order given; read in file order, one slice per run of consecutive rows.

        Slices, not h5py's list indexing, which measured 10 to 30 times slower for a batch of 32.
        """
        index = np.asarray(index, dtype=np.int64)
        order = np.argsort(index, kind="stable")
        rows = index[order]
        shape, dtype = self._layout[modality]
        in_file_order = np.empty((len(rows), *shape), dtype=dtype)
        dset = self._group()[modality]
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(rows)]):
            in_file_order[start:stop] = dset[rows[start] : rows[stop - 1] + 1]
        out = np.empty_like(in_file_order)
        out[order] = in_file_order
        return out

    def _group(self) -> h5py.Group:
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5[self.split]

    def close(self) -> None:
        """Close this process's handle (before forking workers; a later read reopens it)."""
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_h5": None, "_pid": -1}


def restrict(meta: DatasetMeta, modalities: Sequence[str]) -> DatasetMeta:
    """`meta` for a student of some of the dataset's modalities, kept in the dataset's order."""
    unknown = [m for m in modalities if m not in meta.modalities]
    if unknown:
        raise RunError(f"dataset {meta.dataset} has no modality {unknown[0]!r}; it has {', '.join(meta.modalities)}")
    kept = tuple(m for m in meta.modalities if m in modalities)
    return dataclasses.replace(meta, modalities=kept, tokens={m: v for m, v in meta.tokens.items() if m in kept})


def open_split(
    path: str | os.PathLike[str], split: str, loading: str, modalities: Sequence[str] | None = None
) -> SplitReader:
    """One split, held in memory (`loading="memory"`) or streamed from the file (`"stream"`), with
    `modalities` only when given (a student of a modality subset reads no others); an empty split is
    an error here, before any statistics or batches divide by its size."""
    if loading == "memory":
        reader: SplitReader = load_split(path, split, modalities)
    elif loading == "stream":
        reader = StreamedSplit(path, split, modalities)
    else:
        raise ValueError(f"loading must be 'memory' or 'stream', got {loading!r}")
    if len(reader) == 0:
        reader.close()
        raise RunError(
            f"{path}: split {split!r} has no rows; this file was not written by a successful `g2d preprocess` "
            "(which refuses empty splits): run `g2d preprocess` for its dataset again"
        )
    return reader


class DatasetWriter:
    """Append samples to a dataset file split by split; the file appears only on `close()`.

    Rows are written as they come, so memory stays flat however large the dataset is.
    Used as a context manager: an exception discards the temporary file.
    `compression` {modality: gzip level 1-9} stores those arrays deflated (readers need nothing special:
    HDF5 inflates them); a modality left out is stored raw.
    Appending is the serial part of parallel preprocessing (workers decode, this process writes),
    so it is kept cheap: each sample is one chunk, written as raw bytes (no h5py selection or
    conversion machinery), datasets grow GROW_ROWS rows at a time and are trimmed on close, and
    labels and ids are written LABEL_BLOCK at a time.
    """

    GROW_ROWS = 256
    LABEL_BLOCK = 1024

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: DatasetMeta,
        shapes: Mapping[str, tuple[tuple[int, ...], str]],
        compression: Mapping[str, int] | None = None,
    ) -> None:
        if meta.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {meta.task!r}")
        missing = set(meta.modalities) - set(shapes)
        if missing:
            raise ValueError(f"no shape given for modalities {sorted(missing)}")
        not_ids = [m for m in meta.tokens if m not in shapes or np.dtype(shapes[m][1]).kind != "i"]
        if not_ids:
            raise ValueError(f"token modalities {not_ids} must be modalities stored as signed integers (int32, int64)")
        self.path = Path(path)
        self.meta = meta
        self.shapes = dict(shapes)
        self.compression = dict(compression or {})
        unknown = set(self.compression) - set(meta.modalities)
        if unknown or not all(1 <= level <= 9 for level in self.compression.values()):
            raise ValueError(f"compression must map modalities to gzip levels 1-9, got {self.compression}")
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._h5 = h5py.File(self._tmp, "w", track_order=True)
        self._write_attrs()
        self._counts: dict[str, int] = {}
        self._pending: dict[str, list[tuple[float | int, str]]] = {}
        self._rows: dict[str, list[tuple[h5py.Dataset, np.dtype, tuple[int, ...], int]]] = {}  # per split: datasets
        self._capacity: dict[str, int] = {}
        for split in SPLITS:
            self._create_split(split)

    def _write_attrs(self) -> None:
        attrs = self._h5.attrs
        attrs["schema_version"] = SCHEMA_VERSION
        attrs["dataset"] = self.meta.dataset
        attrs["source"] = self.meta.source
        attrs["task"] = self.meta.task
        attrs["modalities"] = json.dumps(list(self.meta.modalities))
        attrs["class_names"] = json.dumps(list(self.meta.class_names))
        attrs["preprocessing"] = json.dumps(dict(self.meta.preprocessing), sort_keys=True)
        if self.meta.tokens:  # only when there are any: files without token modalities stay as before
            attrs["tokens"] = json.dumps(dict(self.meta.tokens))

    def _create_split(self, split: str) -> None:
        group = self._h5.create_group(split)
        for modality in self.meta.modalities:
            shape, dtype = self.shapes[modality]
            level = self.compression.get(modality)
            group.create_dataset(
                modality,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype=dtype,
                chunks=(1, *shape),
                track_times=False,
                **({"compression": "gzip", "compression_opts": level} if level else {}),
            )
        label_dtype = "int64" if self.meta.task == "classification" else "float32"
        group.create_dataset(
            "labels", shape=(0,), maxshape=(None,), dtype=label_dtype, chunks=(1024,), track_times=False
        )
        group.create_dataset(
            "ids", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype("utf-8"), chunks=(1024,), track_times=False
        )
        self._counts[split] = 0
        self._pending[split] = []
        self._rows[split] = [
            (group[m], group[m].dtype, self.shapes[m][0], self.compression.get(m, 0)) for m in self.meta.modalities
        ]
        self._capacity[split] = 0

    def append(self, split: str, sample: Mapping[str, np.ndarray], label: float | int, sample_id: str) -> None:
        """Write one sample at the end of `split`."""
        n = self._counts[split]
        grow = n >= self._capacity[split]
        for modality, (dset, dtype, expected, level) in zip(self.meta.modalities, self._rows[split]):
            given = np.asarray(sample[modality])
            if given.shape != expected:
                raise ValueError(f"{sample_id}: {modality} has shape {given.shape}, expected {expected}")
            if dtype.kind in "iub" and given.dtype.kind not in "iub":  # a cast would truncate, not round
                raise ValueError(f"{sample_id}: {modality} is {given.dtype}, which the file's {dtype} cannot hold")
            array = np.ascontiguousarray(given, dtype=dtype)
            if grow:
                dset.resize(n + self.GROW_ROWS, axis=0)
            chunk = zlib.compress(array.tobytes(), level) if level else array.tobytes()  # HDF5's deflate is zlib
            dset.id.write_direct_chunk((n,) + (0,) * array.ndim, chunk)
        if grow:
            self._capacity[split] = n + self.GROW_ROWS
        self._pending[split].append((label, sample_id))
        self._counts[split] = n + 1
        if len(self._pending[split]) >= self.LABEL_BLOCK:
            self._flush_labels(split)

    def _flush_labels(self, split: str) -> None:
        """Write the buffered labels and ids of `split` after those already in the file."""
        pending = self._pending[split]
        if not pending:
            return
        group = self._h5[split]
        start = group["labels"].shape[0]
        labels, ids = zip(*pending)
        columns = {"labels": np.asarray(labels, dtype=group["labels"].dtype), "ids": np.asarray(ids, dtype=object)}
        for name, values in columns.items():
            dset = group[name]
            dset.resize(start + len(pending), axis=0)
            dset[start:] = values
        pending.clear()

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def close(self) -> None:
        """Finish the file and move it into place."""
        empty = [s for s, n in self._counts.items() if n == 0]
        if empty:
            self.abort()
            raise ValueError(f"{self.path}: splits {empty} are empty; every split needs at least one sample")
        for split, n in self._counts.items():
            self._flush_labels(split)
            for dset, _, _, _ in self._rows[split]:
                dset.resize(n, axis=0)
        self._h5.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop the temporary file; nothing appears at `path`."""
        try:
            self._h5.close()
        finally:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_meta(path: str | os.PathLike[str]) -> DatasetMeta:
    """Read a dataset file's attributes, failing with the file name if it is not ours or not this version."""
    with h5py.File(path, "r") as h5:
        check_version(path, h5.attrs)
        attrs = h5.attrs
        return DatasetMeta(
            dataset=str(attrs["dataset"]),
            source=str(attrs["source"]),
            task=str(attrs["task"]),
            modalities=tuple(json.loads(attrs["modalities"])),
            class_names=tuple(json.loads(attrs["class_names"])),
            preprocessing=json.loads(attrs["preprocessing"]),
            tokens=json.loads(attrs.get("tokens", "{}")),
        )


def preprocessing_record(source: str, params: Any, **extra: Any) -> dict[str, Any]:
    """What made a dataset file (its `preprocessing` attribute): the source, its params minus those that
    never change the output (`workers`, or the keys its Params class lists in `SPEED_ONLY`, e.g. how
    VGGSound resumes), and `extra` (e.g. the resolved format)."""
    record = dataclasses.asdict(params)
    for name in getattr(params, "SPEED_ONLY", ("workers",)):
        del record[name]
    return {"source": source, **record, **extra}


def check_preprocessing(path: str | os.PathLike[str], dataset: str, source: str, params: Any) -> DatasetMeta:
    """The file's meta, once its recorded preprocessing matches what params say now (`source`, and the
    `datasets.<dataset>.preprocess` section `params`): a stage must not train on data another setting made,
    e.g. while another front end rewrites the file, or after params changed without preprocessing again."""
    meta = read_meta(path)
    expected = json.loads(json.dumps(preprocessing_record(source, params)))  # tuples as lists, as stored
    recorded = dict(meta.preprocessing)
    differ = [k for k in expected if recorded.get(k, "<missing>") != expected[k]]
    if differ:
        shown = "; ".join(
            f"{'source' if k == 'source' else f'datasets.{dataset}.preprocess.{k}'}: file has "
            f"{recorded.get(k, '<missing>')!r}, params say {expected[k]!r}"
            for k in differ[:3]
        )
        raise RunError(
            f"{path}: made with other preprocessing settings than params ({shown}). Preprocess it again "
            f"(snakemake or dvc repro, or `g2d preprocess --dataset {dataset}`); if another run is rewriting it, "
            "wait for that run to finish"
        )
    return meta


def load_split(path: str | os.PathLike[str], split: str, modalities: Sequence[str] | None = None) -> SplitData:
    """Load one split of a dataset file into memory."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    with h5py.File(path, "r") as h5:
        check_version(path, h5.attrs)
        if split not in h5:
            raise ValueError(f"{path}: no split {split!r}")
        group = h5[split]
        mods = list(modalities) if modalities is not None else json.loads(h5.attrs["modalities"])
        inputs = {m: group[m][()] for m in mods}
        labels = group["labels"][()]
        ids = [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in group["ids"][()]]
    return SplitData(inputs=inputs, labels=labels, ids=ids)
