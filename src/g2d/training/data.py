"""Batches for training and evaluation, built from HDF5 splits and the teacher cache.

Inputs are standardised per modality with the training split's mean and std (so spectrograms and
uint8 frames need no per-source code), except token-id modalities (the dataset meta's `tokens`),
which pass through as int64 ids for an embedding; regression targets are min-max scaled to [0, 1] on the
training split (docs/method.md), and the scaling is stored with every checkpoint.

Splits are held in memory or streamed from the file (`data.loading`, see `resolve_loading`); the
statistics are computed in chunks and batches are built by the same code in both modes, so both
give the same tensors.

A training split may be augmented (`augment`, a `CropSource`): each epoch every row gets a crop,
applied to the stored arrays before standardisation, and with a view bank its teacher outputs are
those cached for the view it got. The statistics are always those of the stored, uncropped split.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from g2d.config.params import DataParams
from g2d.errors import RunError
from g2d.io.dataset_file import SplitReader, open_split
from g2d.io.score_cache import TeacherScores
from g2d.training.augment import Crops, CropSource
from g2d.types import Batch, TeacherBatch

STATS_CHUNK_BYTES = 64 * 2**20  # float64 bytes per chunk of the statistics pass
MAX_AUTO_WORKERS = 4  # `data.workers: auto` never starts more: two batches ahead each is plenty for one device
RESERVED_CORES = 2  # cores `auto` leaves to each training process: its own loop and torch's compute, the OS


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a cluster job's allocation), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_workers(data: DataParams, processes: int = 1) -> int:
    """DataLoader workers per training process: `data.workers`, or for `auto` one per core beyond
    RESERVED_CORES of this process's share of the cores (`processes` share a node), at most
    MAX_AUTO_WORKERS. On 2 cores that is 0: docs/results/train_step.md measured a worker slowing a
    2-core machine, whose compute already needs both cores. Results never depend on it."""
    if data.workers != "auto":
        return int(data.workers)
    share = usable_cores() // max(1, processes)
    return max(0, min(MAX_AUTO_WORKERS, share - RESERVED_CORES))


def pins(device: torch.device) -> bool:
    """Whether host batches bound for `device` are pinned and copied asynchronously: CUDA only (page-locked
    memory lets the copy overlap compute; on the CPU there is no copy to overlap)."""
    return device.type == "cuda"


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` on `device`; bound for CUDA, pinned first (unless a DataLoader already pinned it) and copied
    without blocking, so the copy overlaps the step still running. Pinned memory comes from torch's caching
    host allocator, which keeps it until the copy is done."""
    if not pins(device):
        return tensor.to(device)
    if not tensor.is_pinned():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def mem_available() -> int | None:
    """Bytes of memory available to new work (Linux MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def resolve_loading(data: DataParams, path: str | os.PathLike[str]) -> str:
    """`memory` or `stream`: `auto` streams when the file exceeds memory_fraction x available memory."""
    if data.loading != "auto":
        return data.loading
    size, available = os.path.getsize(path), mem_available()
    if available is None or size <= data.memory_fraction * available:
        return "memory"
    print(
        f"{path}: {size / 2**20:.0f} MiB > {data.memory_fraction} x {available / 2**20:.0f} MiB available; "
        "streaming it batch by batch (data.loading)",
        file=sys.stderr,
    )
    return "stream"


def open_splits(
    data: DataParams, path: str | os.PathLike[str], splits: Sequence[str], modalities: Sequence[str] | None = None
) -> dict[str, SplitReader]:
    """The named splits of a dataset file, held or streamed as `data.loading` decides; seen through
    `modalities` only when given (a student of a modality subset)."""
    loading = resolve_loading(data, Path(path))
    return {split: open_split(path, split, loading, modalities) for split in splits}


def chunk_rows(shape: Sequence[int]) -> int:
    """Rows per chunk of the statistics pass: STATS_CHUNK_BYTES of float64, at least one row."""
    return max(1, STATS_CHUNK_BYTES // (8 * int(np.prod(shape))))


def mean_std(split: SplitReader, modality: str) -> tuple[float, float]:
    """Mean and std over every value of one modality, in chunks (two passes, as numpy's std)."""
    n, rows = len(split), chunk_rows(split.sample_shape(modality))
    chunks = [np.arange(start, min(start + rows, n)) for start in range(0, n, rows)]
    count = n * int(np.prod(split.sample_shape(modality)))
    total = 0.0
    for index in chunks:
        total += float(split.read(modality, index).astype(np.float64).sum())
    mean = total / count
    squares = 0.0
    for index in chunks:
        centred = split.read(modality, index).astype(np.float64)
        centred -= mean
        squares += float(np.multiply(centred, centred, out=centred).sum())
    return mean, float(np.sqrt(squares / count))


@dataclass(frozen=True)
class Normalizer:
    """Input standardisation and target scaling, fitted on the training split only."""

    task: str
    mean: dict[str, float]
    std: dict[str, float]
    y_min: float = 0.0
    y_max: float = 1.0
    tokens: tuple[str, ...] = ()  # token-id modalities: ids, not magnitudes, so never standardised

    @classmethod
    def fit(cls, train: SplitReader, task: str, tokens: Collection[str] = ()) -> Normalizer:
        """Statistics of the training split; `tokens` (the dataset meta's token modalities) get none."""
        mean, std = {}, {}
        for m in train.modalities:
            if m in tokens:
                continue
            mean[m], spread = mean_std(train, m)
            std[m] = spread or 1.0
        kept = tuple(m for m in train.modalities if m in tokens)
        if task == "regression":
            y_min, y_max = float(train.labels.min()), float(train.labels.max())
            if y_max <= y_min:
                y_max = y_min + 1.0
            return cls(task, mean, std, y_min, y_max, kept)
        return cls(task, mean, std, tokens=kept)

    def inputs(self, modality: str, array: np.ndarray) -> torch.Tensor:
        if modality in self.tokens:
            return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
        x = torch.from_numpy(np.ascontiguousarray(array)).float()
        return (x - self.mean[modality]) / self.std[modality]

    def target(self, labels: np.ndarray) -> torch.Tensor:
        if self.task == "classification":
            return torch.from_numpy(labels.astype(np.int64))
        return torch.from_numpy(((labels - self.y_min) / (self.y_max - self.y_min)).astype(np.float32))

    def unscale(self, y01: np.ndarray) -> np.ndarray:
        """Map [0, 1]-scale regression outputs back to the target's units."""
        return y01 * (self.y_max - self.y_min) + self.y_min

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> Normalizer:
        return cls(**{**d, "tokens": tuple(d.get("tokens", ()))})  # checkpoints before token modalities: none


Request = tuple[np.ndarray, Crops | None]  # a batch's rows and, if augmented, their crops


class InputReader(Dataset):
    """Standardised input tensors of one batch of rows, cropped first if asked: what DataLoader
    workers compute."""

    def __init__(self, split: SplitReader, norm: Normalizer) -> None:
        self.split = split
        self.norm = norm

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, request: Request) -> dict[str, torch.Tensor]:
        index, crops = request
        rows = {m: self.split.read(m, index) for m in self.split.modalities}
        if crops is not None:
            rows = {m: crops.apply(m, array) for m, array in rows.items()}
        return {m: self.norm.inputs(m, array) for m, array in rows.items()}


class SplitTensors:
    """One split ready for batching: raw arrays stay as stored, each batch is converted on the fly.

    With `workers` > 0, batches are read and standardised by that many DataLoader processes, two
    batches ahead per worker; the batches are the same as with 0. Bound for CUDA, every host tensor
    of a batch (inputs, targets, cached teacher outputs), read in this process or by a worker, is
    pinned and copied asynchronously (`to_device`).
    `augment` crops the rows of every epoch (training split only); `teacher_views` are the cached
    teacher outputs per bank view, (K, N, ...), which replace `teacher`'s for their modalities: each
    row then gets the outputs of the view `augment` gave it.
    """

    def __init__(
        self,
        split: SplitReader,
        norm: Normalizer,
        device: torch.device,
        teacher: Mapping[str, TeacherScores] | None = None,
        workers: int = 0,
        augment: CropSource | None = None,
        teacher_views: Mapping[str, TeacherScores] | None = None,
    ) -> None:
        self.split = split
        self.norm = norm
        self.device = device
        self.workers = workers
        self.augment = augment
        self.reader = InputReader(split, norm)
        self.modalities = list(split.modalities)
        self.target = norm.target(split.labels)
        self.teacher = None
        self.teacher_views: dict[str, dict[str, torch.Tensor]] = {}
        if teacher is not None:
            missing = [m for m in self.modalities if m not in teacher]
            if missing:
                raise RunError(f"the teacher cache has no scores for modalities {missing}; rerun the score stage")
            self.teacher = {m: self._cached(teacher[m], m, (len(split),)) for m in self.modalities}
        if teacher_views:
            if self.teacher is None or augment is None:
                raise ValueError(
                    "per-view teacher outputs need the training split's cache and a view bank to pick from"
                )
            views = next(iter(teacher_views.values())).confidence.shape[0]
            self.teacher_views = {
                m: self._cached(s, m, (views, len(split))) for m, s in teacher_views.items() if m in self.modalities
            }

    @staticmethod
    def _cached(scores: TeacherScores, modality: str, rows: tuple[int, ...]) -> dict[str, torch.Tensor]:
        """One modality's cached teacher outputs as tensors, checked to cover `rows` (N, or K x N views)."""
        if scores.confidence.shape != rows:
            raise RunError(
                f"teacher cache for {modality} has {scores.confidence.shape} rows, "
                f"the split needs {rows}; rerun the score stage"
            )
        return {name: torch.from_numpy(v) for name, v in vars(scores).items() if v is not None}

    def __len__(self) -> int:
        return len(self.split)

    def batch(
        self, index: np.ndarray, inputs: Mapping[str, torch.Tensor] | None = None, crops: Crops | None = None
    ) -> Batch:
        """The batch of rows `index` through their `crops`, if any; `inputs` are its standardised
        inputs if already read."""
        idx = np.asarray(index)
        t_idx = torch.from_numpy(idx)
        host = inputs if inputs is not None else self.reader[idx, crops]
        on_device = {m: to_device(host[m], self.device) for m in self.modalities}
        teacher = None
        if self.teacher is not None:
            pick = {m: {k: to_device(v[t_idx], self.device) for k, v in d.items()} for m, d in self.teacher.items()}
            if self.teacher_views:
                if crops is None or crops.view is None:
                    raise ValueError("per-view teacher outputs need each row's view: augment with the bank")
                rows = (torch.from_numpy(crops.view), t_idx)
                pick.update(
                    {
                        m: {k: to_device(v[rows], self.device) for k, v in d.items()}
                        for m, d in self.teacher_views.items()
                    }
                )
            teacher = TeacherBatch(
                features={m: d["features"] for m, d in pick.items()},
                logits={m: d["logits"] for m, d in pick.items()},
                confidence={m: d["confidence"] for m, d in pick.items()},
                sq_error={m: d["sq_error"] for m, d in pick.items()} if self.norm.task == "regression" else None,
            )
        target = to_device(self.target[t_idx], self.device)
        return Batch(index=t_idx, inputs=on_device, target=target, teacher=teacher)

    def batches(self, batch_size: int, shuffle_seed: int | None = None) -> Iterator[Batch]:
        """All samples in batches; shuffled, and cropped if augmented, by generators seeded per epoch
        so resumes are exact."""
        n = len(self)
        order = np.arange(n) if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(n)
        epoch = self.augment.crops(shuffle_seed) if self.augment is not None else None
        requests: list[Request] = [
            (idx, epoch.take(idx) if epoch is not None else None)
            for idx in (order[start : start + batch_size] for start in range(0, n, batch_size))
        ]
        if self.workers == 0:
            for idx, crops in requests:
                yield self.batch(idx, crops=crops)
            return
        self.split.close()  # no h5py handle may cross the fork; each worker opens its own
        loader = DataLoader(
            self.reader,
            sampler=requests,
            batch_size=None,
            num_workers=self.workers,
            pin_memory=pins(self.device),
        )
        for (idx, crops), inputs in zip(requests, loader):
            yield self.batch(idx, inputs, crops)
