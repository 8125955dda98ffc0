"""Resumable preprocessing: decoded samples kept in shards beside the output until the dataset file is written.

A source with many slow inputs (VGGSound: 200,000 video files, hours of decoding) hands its jobs,
its decode function and a `ShardStore` to `resumable`, and its result to `write_dataset` as usual.
Jobs are cut, in their final order, into shards of `shard_size`; every finished shard is written to
`<output>.resume/shard-NNNNNN.h5` (atomically: a shard file is complete or absent) while its samples
go on to the dataset file. An interrupted run leaves its finished shards; the next run with the same
decoding params and the same input files reads those back instead of decoding their jobs again,
and decodes the rest. The dataset file itself is still written from scratch, in one pass, in job
order, so it is byte-identical to an uninterrupted run's (tested); the shard folder is removed
once it is written.

What is resumed is checked, never trusted: a shard is used only if its `fingerprint` (the decoding
params and code) and its `key` (each job's id, split, label, file size and modification time)
match, and every sample's arrays match the SHA-256 recorded when it was decoded. A shard that fails
any check is decoded again (its jobs, in this process). Cost: while the dataset file is being
written, the shards of the run hold a second, uncompressed copy of the rows (the peak disk use is
about twice the dataset file); a run with `resume: false` writes none.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np

from g2d.datasets.common import Sample, Skipped
from g2d.datasets.parallel import ordered_map
from g2d.io.atomic import atomic_path

J = TypeVar("J")
Outcome = Sample | Skipped


def resume_folder(out_path: str | Path) -> Path:
    """Where the shards of an unfinished run writing `out_path` are kept: `<out_path>.resume/`."""
    path = Path(out_path)
    return path.with_name(path.name + ".resume")


def fingerprint(record: Mapping[str, Any], code: Sequence[str | Path], versions: Mapping[str, str]) -> str:
    """A hash of what decoding depends on: its params (`record`), the source files `code` and library
    `versions`; shards written under another fingerprint are not resumed."""
    h = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode())
    h.update(json.dumps(dict(versions), sort_keys=True).encode())
    for path in code:
        h.update(Path(path).read_bytes())
    return h.hexdigest()


class ShardStore:
    """The shard files of one output; see the module docstring."""

    def __init__(
        self,
        folder: Path,
        fingerprint: str,
        shapes: Mapping[str, tuple[tuple[int, ...], str]],
        shard_size: int,
    ) -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size must be at least 1, got {shard_size}")
        self.folder = folder
        self.fingerprint = fingerprint
        self.shapes = dict(shapes)
        self.shard_size = shard_size

    def path(self, index: int) -> Path:
        return self.folder / f"shard-{index:06d}.h5"

    def matches(self, index: int, key: str) -> bool:
        """Whether shard `index` exists and was written by the same decoding of the same jobs."""
        path = self.path(index)
        if not path.is_file():
            return False
        try:
            with h5py.File(path, "r") as h5:
                return bool(h5.attrs.get("fingerprint") == self.fingerprint and h5.attrs.get("key") == key)
        except OSError:  # not an HDF5 file (a disk fault; shards are renamed into place only once complete)
            return False

    def load(self, index: int, key: str) -> list[Outcome] | None:
        """Shard `index`'s outcomes, in job order, once every sample's checksum is verified; None if any
        check fails (the caller decodes that shard again)."""
        if not self.matches(index, key):
            return None
        outcomes: list[Outcome] = []
        try:
            with h5py.File(self.path(index), "r") as h5:
                rows = [json.loads(r) for r in h5["rows"].asstr()[()]]
                for i, row in enumerate(rows):
                    if "skipped" in row:
                        outcomes.append(Skipped(**row["skipped"]))
                        continue
                    arrays = {m: h5[m][i] for m in self.shapes}
                    if {m: _digest(a) for m, a in arrays.items()} != row["sha256"]:
                        return None
                    outcomes.append(Sample(row["split"], arrays, row["label"], row["id"], row["origin"]))
        except (OSError, KeyError, TypeError, ValueError):  # unreadable, or rows of another layout
            return None
        return outcomes

    def remove(self) -> None:
        """Delete the folder (after the dataset file is in place)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def resumable(
    jobs: Sequence[J],
    decode: Callable[[J], Outcome],
    workers: int,
    store: ShardStore,
    key: Callable[[J], str],
) -> Iterator[Outcome]:
    """`decode` over `jobs` in order (as g2d.datasets.parallel.ordered_map, in `workers` processes),
    reading the shards a previous run finished instead of decoding their jobs, and writing a shard for
    every other one. `key(job)` names what a job's output depends on besides the store's fingerprint.

    Closing the generator early (a failed run) stops the workers and leaves only finished shards.
    """
    size = store.shard_size
    shards = [list(jobs[start : start + size]) for start in range(0, len(jobs), size)]
    keys = [_shard_key(shard, key) for shard in shards]
    done = {i for i, k in enumerate(keys) if store.matches(i, k)}
    fresh = ordered_map(decode, [job for i, shard in enumerate(shards) if i not in done for job in shard], workers)
    try:
        for i, (shard, shard_key) in enumerate(zip(shards, keys)):
            if i in done:
                outcomes = store.load(i, shard_key)
                if outcomes is not None:
                    yield from outcomes
                    continue
                source: Iterator[Outcome] = map(decode, shard)  # failed its checks: decode it again, here
            else:
                source = fresh
            yield from _write_shard(store, i, shard_key, (next(source) for _ in shard))
    finally:
        fresh.close()


def _write_shard(store: ShardStore, index: int, key: str, outcomes: Iterator[Outcome]) -> Iterator[Outcome]:
    """Pass `outcomes` through while writing them to shard `index`; the file appears only when all are written."""
    store.folder.mkdir(parents=True, exist_ok=True)
    rows: list[str] = []
    with atomic_path(store.path(index)) as tmp:
        with h5py.File(tmp, "w") as h5:
            for outcome in outcomes:
                i = len(rows)
                if isinstance(outcome, Skipped):
                    rows.append(json.dumps({"skipped": vars(outcome)}))
                else:
                    for modality, (shape, dtype) in store.shapes.items():
                        if modality not in h5:
                            h5.create_dataset(
                                modality, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype, chunks=(1, *shape)
                            )
                        dset = h5[modality]
                        if dset.shape[0] <= i:
                            dset.resize(i + 1, axis=0)
                        dset[i] = outcome.arrays[modality]
                    rows.append(
                        json.dumps(
                            {
                                "split": outcome.split,
                                "label": outcome.label,
                                "id": outcome.id,
                                "origin": dict(outcome.origin),
                                "sha256": {
                                    m: _digest(np.asarray(a, dtype=store.shapes[m][1]))
                                    for m, a in outcome.arrays.items()
                                },
                            }
                        )
                    )
                yield outcome
            h5.create_dataset("rows", data=np.asarray(rows, dtype=object), dtype=h5py.string_dtype("utf-8"))
            h5.attrs["fingerprint"] = store.fingerprint
            h5.attrs["key"] = key


def _shard_key(shard: Sequence[Any], key: Callable[[Any], str]) -> str:
    return hashlib.sha256("\n".join(key(job) for job in shard).encode()).hexdigest()


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
