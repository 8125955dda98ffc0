"""A dataset source is one module plus one line in g2d.datasets.SOURCES: this test module is one (a
toy source of numbers), registered at test time; g2d.datasets.common.write_dataset does the writing,
the report and the checks every source shares."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from g2d.config.schema import ConfigError, require
from g2d.datasets import SOURCES, RawDataError
from g2d.datasets.common import Sample, Skipped, preprocessing_record, skip_fields, write_dataset
from g2d.io.dataset_file import SPLITS, DatasetMeta, load_split, read_meta
from g2d.stages import preprocess as preprocess_stage

from conftest import toy_params

# --- the source ---------------------------------------------------------------------------------

SOURCE = "numbers"
MODALITIES: tuple[str, ...] = ("left", "right")
IMAGE_MODALITIES: tuple[str, ...] = ("right",)


@dataclass(frozen=True)
class Params:
    """Rows per split; rows whose number is divisible by `skip_every` stand for unreadable files, and
    those divisible by `nan_every` hold a NaN (a corrupt input that decodes)."""

    rows: int = 6
    skip_every: int = 0
    nan_every: int = 0
    max_skipped_fraction: float = 0.2
    workers: int = 1

    def validate(self, where: str) -> None:
        require(self.rows >= 0, f"{where}.rows", "must be a non-negative count")


def check_raw(raw_dir: str | Path, params: Params | None = None) -> None:
    if not Path(raw_dir).is_dir():
        raise RawDataError(f"{raw_dir}: raw folder not found (any folder will do)")


def preprocess(
    dataset: str,
    raw_dir: str | Path,
    params: Params,
    out_path: str | Path,
    report_path: str | Path,
    workers: int | None = None,
) -> dict[str, Any]:
    found = len(SPLITS) * params.rows

    def samples() -> Iterator[Sample | Skipped]:
        for n in range(found):
            if params.skip_every and n % params.skip_every == 0:
                yield Skipped(str(n), f"{raw_dir}/{n}.bin", "unreadable")
            else:
                left = np.full((1, 2, 2), n, np.float32)
                if params.nan_every and n % params.nan_every == 1:
                    left[0, 1, 0] = np.nan
                yield Sample(
                    SPLITS[n // params.rows],
                    {"left": left, "right": np.full((1, 3, 3), n, np.uint8)},
                    n % 2,
                    str(n),
                    origin={"left": f"{raw_dir}/{n}.bin"},
                )

    def report(counts: Mapping[str, int], skipped: Sequence[Skipped]) -> dict[str, Any]:
        return {"dataset": dataset, "counts": dict(counts), **skip_fields(found, skipped)}

    meta = DatasetMeta(
        dataset=dataset,
        source=SOURCE,
        task="classification",
        modalities=MODALITIES,
        class_names=("even", "odd"),
        preprocessing=preprocessing_record(SOURCE, params),
    )
    return write_dataset(
        meta,
        {"left": ((1, 2, 2), "float32"), "right": ((1, 3, 3), "uint8")},
        samples(),
        total=found,
        unit="row",
        out_path=out_path,
        report_path=report_path,
        report=report,
        found=found,
        what="rows",
        max_skipped_fraction=params.max_skipped_fraction,
    )


# --- the tests ----------------------------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(SOURCES, SOURCE, __name__)  # the source's registry line


def numbers_params(tmp_path: Path, **preprocess: Any):
    return toy_params(
        datasets={
            "nums": {
                "source": SOURCE,
                "raw_dir": str(tmp_path),
                "preprocess": preprocess,
                "encoders": {"left": "small_cnn", "right": "small_cnn"},
            }
        }
    )


def test_a_registered_source_validates_and_preprocesses(registered, tmp_path):
    params = numbers_params(tmp_path, rows=4, skip_every=5, max_skipped_fraction=0.25)
    assert params.datasets["nums"].preprocess == Params(rows=4, skip_every=5, max_skipped_fraction=0.25)
    assert params.datasets["nums"].augment.modalities == ("right",)
    preprocess_stage.run(params, "nums", tmp_path / "nums.h5", tmp_path / "nums.report.json")
    meta = read_meta(tmp_path / "nums.h5")
    assert meta.modalities == MODALITIES and meta.preprocessing == {
        "source": SOURCE,
        "rows": 4,
        "skip_every": 5,
        "nan_every": 0,
        "max_skipped_fraction": 0.25,
    }
    train = load_split(tmp_path / "nums.h5", "train")
    assert train.ids == ["1", "2", "3"] and train.inputs["right"][0, 0, 0, 0] == 1  # row 0 skipped
    report = json.loads((tmp_path / "nums.report.json").read_text())
    assert report["counts"] == {"train": 3, "val": 3, "test": 3} and report["skipped_fraction"] == 3 / 12
    assert [s["file"] for s in report["skipped"]] == [f"{tmp_path}/{n}.bin" for n in (0, 5, 10)]


def test_a_source_s_section_is_checked(registered, tmp_path):
    with pytest.raises(ConfigError, match=r"datasets.nums.preprocess.rows: must be a non-negative count"):
        numbers_params(tmp_path, rows=-1)
    with pytest.raises(ConfigError, match=r"datasets.nums.encoders: no encoder for modalities \['right'\]"):
        toy_params(datasets={"nums": {"source": SOURCE, "raw_dir": ".", "encoders": {"left": "small_cnn"}}})


def test_unregistered_source_is_refused(tmp_path):
    with pytest.raises(
        ConfigError, match=r"datasets.nums.source: unknown source 'numbers'; choose from arrays, avmnist"
    ):
        numbers_params(tmp_path)


@pytest.mark.parametrize(
    "preprocess, message",
    [
        (
            {"rows": 4, "skip_every": 2},
            r"6 of 12 rows \(50.0%\) could not be used, more than "
            r"datasets.nums.preprocess.max_skipped_fraction = 0.2",
        ),
        ({"rows": 0}, r"splits \['train', 'val', 'test'\] of nums have no usable row"),
    ],
)
def test_too_many_skips_or_an_empty_split_write_the_report_and_no_dataset_file(
    registered, tmp_path, preprocess, message
):
    params = numbers_params(tmp_path, **preprocess)
    with pytest.raises(RawDataError, match=message):
        preprocess_stage.run(params, "nums", tmp_path / "nums.h5", tmp_path / "nums.report.json")
    assert not (tmp_path / "nums.h5").exists() and (tmp_path / "nums.report.failed.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["nums.report.failed.json"]  # no temporary file left either


def test_samples_holding_nan_are_skipped_and_named(registered, tmp_path):
    out, report = tmp_path / "nums.h5", tmp_path / "nums.report.json"
    preprocess_stage.run(numbers_params(tmp_path, rows=4, nan_every=6), "nums", out, report)
    skipped = json.loads(report.read_text())["skipped"]
    assert skipped == [
        {"clip": str(n), "file": f"{tmp_path}/{n}.bin", "reason": "left holds non-finite values (NaN or Inf)"}
        for n in (1, 7)
    ]
    for split in SPLITS:
        assert np.isfinite(load_split(out, split).inputs["left"]).all()
    with pytest.raises(RawDataError, match=r"(?s)3 of 12 rows.*/1.bin: left holds non-finite values"):
        preprocess_stage.run(numbers_params(tmp_path, rows=4, nan_every=4), "nums", out, report)


def test_a_failed_run_leaves_the_previous_dataset_file_and_its_report_as_they_were(registered, tmp_path):
    out, report = tmp_path / "out" / "nums.h5", tmp_path / "out" / "nums.report.json"
    preprocess_stage.run(numbers_params(tmp_path), "nums", out, report)
    before = out.read_bytes(), report.read_bytes()
    with pytest.raises(RawDataError, match="max_skipped_fraction"):
        preprocess_stage.run(numbers_params(tmp_path, rows=4, skip_every=2), "nums", out, report)
    assert (out.read_bytes(), report.read_bytes()) == before  # the pair still describes each other
    failed = json.loads((tmp_path / "out" / "nums.report.failed.json").read_text())
    assert len(failed["skipped"]) == 6
    preprocess_stage.run(numbers_params(tmp_path), "nums", out, report)
    assert sorted(p.name for p in out.parent.iterdir()) == ["nums.h5", "nums.report.json"]  # the failure is over


def test_a_failing_write_closes_the_samples_generator(tmp_path):
    closed = []

    def samples() -> Iterator[Sample]:
        try:
            yield Sample("train", {"x": np.zeros(2, np.float32)}, 0, "a")
            yield Sample("train", {"x": np.zeros(3, np.float32)}, 0, "b")  # wrong shape: the writer refuses it
        finally:
            closed.append(True)

    meta = DatasetMeta(dataset="d", source=SOURCE, task="classification", modalities=("x",), class_names=("a",))
    with pytest.raises(ValueError, match=r"b: x has shape \(3,\), expected \(2,\)"):
        write_dataset(
            meta,
            {"x": ((2,), "float32")},
            samples(),
            total=2,
            unit="row",
            out_path=tmp_path / "d.h5",
            report_path=tmp_path / "d.json",
            report=lambda counts, skipped: {},
            found=2,
            what="rows",
            max_skipped_fraction=0.0,
        )
    assert closed == [True] and list(tmp_path.iterdir()) == []
