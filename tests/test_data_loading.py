"""Memory and streaming modes of reading a dataset file give the same rows, statistics and batches."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_toy_dataset
from g2d.config.params import DataParams
from g2d.io.hdf5 import StreamedSplit, TeacherScores, load_split, open_split
from g2d.training import data
from g2d.training.data import Normalizer, SplitTensors, resolve_loading

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
    return {m: TeacherScores(features=rng.normal(size=(n, 4)).astype(np.float32),
                             logits=rng.normal(size=(n, 3)).astype(np.float32),
                             confidence=rng.random(n).astype(np.float32)) for m in ("audio", "video")}


def test_batches_are_identical_in_memory_streamed_and_with_workers(big_toy):
    norm = Normalizer.fit(load_split(big_toy, "train"), "classification")
    runs = {}
    for name, loading, workers in (("memory", "memory", 0), ("stream", "stream", 0), ("workers", "stream", 2),
                                   ("memory+workers", "memory", 1)):
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
