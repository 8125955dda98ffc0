"""Memory and streaming modes of reading a dataset file give the same rows, statistics and batches."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from g2d.config.params import DataParams
from g2d.io import dataset_file, score_cache
from g2d.io.dataset_file import (
    DatasetMeta,
    DatasetWriter,
    SplitReader,
    StreamedSplit,
    load_split,
    open_split,
    read_meta,
)
from g2d.io.score_cache import TeacherScores, read_scores, read_view_bank, write_scores
from g2d.training import data
from g2d.training.data import Normalizer, SplitTensors, resolve_loading

from conftest import write_toy_dataset

CPU = torch.device("cpu")


@pytest.fixture
def big_toy(tmp_path: Path) -> Path:
    return write_toy_dataset(tmp_path / "toy.h5", n={"train": 50, "val": 7, "test": 5})


def test_streamed_rows_come_back_in_the_order_asked(big_toy):
    held, streamed = load_split(big_toy, "train"), StreamedSplit(big_toy, "train")
    np.testing.assert_array_equal(held.labels, streamed.labels)
    assert streamed.modalities == held.modalities and streamed.sample_shape("video") == (2, 3, 12, 12)
    index = np.array([7, 3, 4, 5, 49, 0, 4, 6, 48])  # unsorted, with runs and a repeat
    for m in held.modalities:
        got = streamed.read(m, index)
        assert got.dtype == held.inputs[m].dtype
        np.testing.assert_array_equal(got, held.inputs[m][index])


def test_streamed_split_pickles_without_its_handle(big_toy):
    split = StreamedSplit(big_toy, "val")
    split.read("audio", np.arange(3))
    clone = pickle.loads(pickle.dumps(split))
    np.testing.assert_array_equal(clone.read("audio", np.arange(3)), split.read("audio", np.arange(3)))
    split.close()


def test_statistics_are_chunked_the_same_way_in_both_modes(big_toy, monkeypatch):
    monkeypatch.setattr(data, "STATS_CHUNK_BYTES", 8 * 12 * 10 * 7)  # 7 rows of audio per chunk
    held, streamed = load_split(big_toy, "train"), StreamedSplit(big_toy, "train")
    a, b = Normalizer.fit(held, "classification"), Normalizer.fit(streamed, "classification")
    assert a == b
    for m, array in held.inputs.items():
        values = array.astype(np.float64)
        assert a.mean[m] == pytest.approx(values.mean(), rel=1e-12)
        assert a.std[m] == pytest.approx(values.std(), rel=1e-12)


def _teacher(n: int) -> dict[str, TeacherScores]:
    rng = np.random.default_rng(1)
    return {
        m: TeacherScores(
            features=rng.normal(size=(n, 4)).astype(np.float32),
            logits=rng.normal(size=(n, 3)).astype(np.float32),
            confidence=rng.random(n).astype(np.float32),
        )
        for m in ("audio", "video")
    }


def test_batches_are_identical_in_memory_streamed_and_with_workers(big_toy):
    norm = Normalizer.fit(load_split(big_toy, "train"), "classification")
    runs = {}
    for name, loading, workers in (
        ("memory", "memory", 0),
        ("stream", "stream", 0),
        ("workers", "stream", 2),
        ("memory+workers", "memory", 1),
    ):
        split = open_split(big_toy, "train", loading)
        tensors = SplitTensors(split, norm, CPU, teacher=_teacher(len(split)), workers=workers)
        runs[name] = [tensors.batches(8, shuffle_seed=seed) for seed in (3, 4)]
        runs[name] = [b for epoch in runs[name] for b in epoch]
    reference = runs.pop("memory")
    assert len(reference) == 14
    for name, batches in runs.items():
        assert len(batches) == len(reference), name
        for a, b in zip(reference, batches):
            assert torch.equal(a.index, b.index) and torch.equal(a.target, b.target), name
            for m in ("audio", "video"):
                assert torch.equal(a.inputs[m], b.inputs[m]), (name, m)
                assert torch.equal(a.teacher.features[m], b.teacher.features[m]), (name, m)


def test_auto_streams_only_files_larger_than_the_memory_fraction(big_toy, monkeypatch):
    size = big_toy.stat().st_size
    monkeypatch.setattr(data, "mem_available", lambda: 4 * size)
    assert resolve_loading(DataParams(loading="auto", memory_fraction=0.5), big_toy) == "memory"
    assert resolve_loading(DataParams(loading="auto", memory_fraction=0.2), big_toy) == "stream"
    assert resolve_loading(DataParams(loading="memory", memory_fraction=0.2), big_toy) == "memory"
    assert resolve_loading(DataParams(loading="stream"), big_toy) == "stream"
    monkeypatch.setattr(data, "mem_available", lambda: None)
    assert resolve_loading(DataParams(loading="auto"), big_toy) == "memory"


def test_writer_rows_survive_growth_trimming_and_label_blocks(tmp_path, monkeypatch):
    """Rows are raw chunk writes into datasets grown a block at a time and trimmed on close, and
    labels and ids are buffered: with tiny blocks, every row, label and id must still come back."""
    monkeypatch.setattr(DatasetWriter, "GROW_ROWS", 3)
    monkeypatch.setattr(DatasetWriter, "LABEL_BLOCK", 4)
    meta = DatasetMeta(
        dataset="w",
        source="cremad",
        task="classification",
        modalities=("audio", "video"),
        class_names=("A", "B", "C"),
        preprocessing={},
    )
    shapes = {"audio": ((1, 5, 4), "float32"), "video": ((2, 3, 4, 4), "uint8")}
    rng = np.random.default_rng(0)
    written = {s: [] for s in ("train", "val", "test")}
    with DatasetWriter(tmp_path / "w.h5", meta, shapes) as writer:
        for i, split in enumerate(["train"] * 10 + ["val"] * 4 + ["test"] + ["train"] * 3):
            # float64 audio and int64 video: converted to the dataset's dtypes as h5py would
            row = {"audio": rng.normal(size=(1, 5, 4)), "video": rng.integers(0, 256, size=(2, 3, 4, 4))}
            writer.append(split, row, i % 3, f"clip{i}")
            written[split].append((row, i % 3, f"clip{i}"))
        with pytest.raises(ValueError, match="clipX: audio has shape"):
            writer.append("train", {"audio": np.zeros((1, 4, 4)), "video": row["video"]}, 0, "clipX")
        with pytest.raises(ValueError, match="clipY: video is float64"):
            writer.append("train", {"audio": row["audio"], "video": row["video"] + 0.5}, 0, "clipY")
    assert read_meta(tmp_path / "w.h5").class_names == ("A", "B", "C")
    for split, rows in written.items():
        data = load_split(tmp_path / "w.h5", split)
        assert data.inputs["audio"].shape == (len(rows), 1, 5, 4) and data.inputs["audio"].dtype == np.float32
        assert data.inputs["video"].dtype == np.uint8
        np.testing.assert_array_equal(
            data.inputs["audio"], np.stack([r["audio"] for r, _, _ in rows]).astype(np.float32)
        )
        np.testing.assert_array_equal(data.inputs["video"], np.stack([r["video"] for r, _, _ in rows]).astype(np.uint8))
        assert data.labels.tolist() == [label for _, label, _ in rows]
        assert data.ids == [name for _, _, name in rows]


def test_both_split_readers_implement_the_one_interface(big_toy):
    for loading in ("memory", "stream"):
        split = open_split(big_toy, "val", loading)
        assert isinstance(split, SplitReader)
        assert split.read("audio", np.array([1, 0])).shape == (2, *split.sample_shape("audio")) and len(split) == 7
        split.close()


def set_attr(path: Path, key: str, value=None) -> None:
    """Set (or, with None, delete) a root attribute of an HDF5 file."""
    with h5py.File(path, "a") as h5:
        if value is None:
            del h5.attrs[key]
        else:
            h5.attrs[key] = value


@pytest.mark.parametrize("value, message", [(None, "no schema_version attribute"), (99, "schema version 99")])
def test_dataset_file_readers_check_its_version(big_toy, value, message):
    set_attr(big_toy, "schema_version", value)
    for read in (read_meta, lambda p: load_split(p, "train"), lambda p: StreamedSplit(p, "train")):
        with pytest.raises(ValueError, match=rf"{big_toy}: .*{message}.*; rerun the preprocess stage"):
            read(big_toy)


@pytest.mark.parametrize("value, message", [(None, "no schema_version attribute"), (99, "schema version 99")])
def test_score_cache_readers_check_its_own_version(tmp_path, value, message):
    path = tmp_path / "scores.h5"
    write_scores(path, {"train": _teacher(3)}, {"dataset": "toy"})
    assert score_cache.SCHEMA_VERSION == 1 and dataset_file.SCHEMA_VERSION == 1  # two formats, two versions
    assert read_scores(path, "train")["audio"].confidence.shape == (3,) and read_view_bank(path) is None
    set_attr(path, "schema_version", value)
    for read in (lambda p: read_scores(p, "train"), read_view_bank):
        with pytest.raises(ValueError, match=rf"{path}: .*{message}.*; rerun the score stage"):
            read(path)


class CopyLog:
    """Stands in for the host-to-CUDA copy on a machine without CUDA: Tensor.pin_memory marks a tensor
    pinned, Tensor.to records (device type, non_blocking, pinned) and leaves the tensor where it is."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pins = 0
        self.copies: list[tuple[str, bool, bool]] = []
        log = self

        def pin_memory(self: torch.Tensor) -> torch.Tensor:
            log.pins += 1
            out = self.clone()
            out.fake_pinned = True  # type: ignore[attr-defined]
            return out

        def is_pinned(self: torch.Tensor) -> bool:
            return getattr(self, "fake_pinned", False)

        def to(self: torch.Tensor, device: torch.device | str, non_blocking: bool = False) -> torch.Tensor:
            log.copies.append((torch.device(device).type, non_blocking, is_pinned(self)))
            return self

        monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
        monkeypatch.setattr(torch.Tensor, "is_pinned", is_pinned)
        monkeypatch.setattr(torch.Tensor, "to", to)


def test_batches_bound_for_cuda_are_pinned_and_copied_asynchronously(big_toy, monkeypatch):
    """Every tensor of a batch (inputs, target, cached teacher outputs) read in the training process is
    pinned, then copied with non_blocking: the logic only, CUDA itself is not exercised here."""
    norm = Normalizer.fit(load_split(big_toy, "train"), "classification")
    tensors = SplitTensors(load_split(big_toy, "train"), norm, torch.device("cuda"), teacher=_teacher(50))
    log = CopyLog(monkeypatch)
    batch = next(tensors.batches(8, shuffle_seed=0))
    per_batch = 2 + 1 + 2 * 3  # two inputs, the target, features + logits + confidence per modality
    assert batch.teacher is not None and log.pins == per_batch
    assert log.copies == [("cuda", True, True)] * per_batch


def test_worker_batches_for_cuda_are_pinned_by_the_loader_not_again(big_toy, monkeypatch):
    """With workers the DataLoader is asked to pin (pin_memory) and the copy does not pin its inputs twice."""
    asked: dict[str, object] = {}

    def loader(reader, sampler, pin_memory, **kwargs):
        asked.update(pin_memory=pin_memory, **kwargs)
        for request in sampler:
            inputs = reader[request]
            yield {m: torch.Tensor.pin_memory(t) if pin_memory else t for m, t in inputs.items()}

    norm = Normalizer.fit(load_split(big_toy, "train"), "classification")
    monkeypatch.setattr(data, "DataLoader", loader)
    tensors = SplitTensors(load_split(big_toy, "train"), norm, torch.device("cuda"), workers=2)
    log = CopyLog(monkeypatch)
    next(tensors.batches(8, shuffle_seed=0))
    assert asked["pin_memory"] is True and asked["num_workers"] == 2
    assert log.pins == 2 + 1  # the loader's two inputs, then only the target here
    assert log.copies == [("cuda", True, True)] * 3


def test_cpu_batches_are_neither_pinned_nor_copied_asynchronously(big_toy, monkeypatch):
    norm = Normalizer.fit(load_split(big_toy, "train"), "classification")
    tensors = SplitTensors(load_split(big_toy, "train"), norm, CPU, teacher=_teacher(50))
    log = CopyLog(monkeypatch)
    next(tensors.batches(8, shuffle_seed=0))
    assert log.pins == 0 and log.copies == [("cpu", False, False)] * 9
    assert not data.pins(CPU) and data.pins(torch.device("cuda", 1))


@pytest.mark.parametrize(
    ("cores", "processes", "expected"),
    [(1, 1, 0), (2, 1, 0), (3, 1, 1), (4, 1, 2), (16, 1, 4), (16, 4, 2), (16, 8, 0)],
)
def test_auto_workers_use_the_cores_beyond_two_per_training_process(monkeypatch, cores, processes, expected):
    monkeypatch.setattr(data, "usable_cores", lambda: cores)
    assert data.resolve_workers(DataParams(workers="auto"), processes) == expected
    assert data.resolve_workers(DataParams(workers=3), processes) == 3  # a number is taken as given


def test_usable_cores_are_this_process_affinity(monkeypatch):
    monkeypatch.setattr(data.os, "sched_getaffinity", lambda pid: {0, 5, 7})
    assert data.usable_cores() == 3
