"""The MIS-ME regression source and what it brings: sheets (.xlsx and .csv, configurable columns), soil
crops (YOLO boxes, grid, centre; coordinates checked by hand), the tabular normalisation fitted on train
only, bad input, the encoders, the MIS-ME loss, the regression metrics and the demo generator."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from g2d.config.params import load_params, params_from_dict
from g2d.config.schema import ConfigError, parse
from g2d.datasets import RawDataError, misme, misme_demo
from g2d.datasets.misme.crops import centre_box, cut, grid_boxes, read_yolo_boxes
from g2d.datasets.misme.params import CropParams, Params
from g2d.datasets.misme.sheets import read_rows, read_table
from g2d.datasets.misme.tabular import TabularStats
from g2d.io.dataset_file import load_split, read_meta
from g2d.methods.misme import MISME
from g2d.models.encoders import build_encoder
from g2d.models.student import MultimodalStudent, initialise
from g2d.training.metrics import mae, mape, r2, rmse
from g2d.types import Batch

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ("t", "h")


def write_sheet(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    """A sheet as .csv or .xlsx, by the file's suffix."""
    if path.suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([header, *rows])
    else:
        misme_demo.write_sheet(path, header, rows)
    return path


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_sheet_reader_takes_the_configured_columns(tmp_path, suffix):
    path = write_sheet(
        tmp_path / f"s{suffix}",
        ["extra", "photo", "moisture", "h", "t"],
        [["x", "a.jpg", 0.2, 50, 20.5], ["y", "b.jpg", "0.3", "", 21], [None, None, None, None, None]],
    )
    rows, skipped = read_rows(path, "train", "photo", "moisture", FEATURES)
    assert skipped == []
    assert [(r.row, r.image, r.target) for r in rows] == [(2, "a.jpg", 0.2), (3, "b.jpg", 0.3)]
    assert rows[0].features == (20.5, 50.0)
    assert rows[1].features[0] == 21.0 and np.isnan(rows[1].features[1])  # empty cell: missing, filled later


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_bad_cells_skip_their_row_naming_file_row_and_column(tmp_path, suffix):
    path = write_sheet(
        tmp_path / f"s{suffix}",
        ["image", "vwc", "t", "h"],
        [
            ["a.jpg", 0.2, "warm", 1],
            ["b.jpg", 0, 1, 1],
            ["c.jpg", -0.1, 1, 1],
            ["d.jpg", "", 1, 1],
            ["e.jpg", 0.3, 1, 2],
        ],
    )
    rows, skipped = read_rows(path, "val", "image", "vwc", FEATURES)
    assert [r.image for r in rows] == ["e.jpg"]
    reasons = {s.clip: s.reason for s in skipped}
    assert all(s.file == str(path) for s in skipped)
    assert reasons["a.jpg"].startswith("row 2, column 't': 'warm' is not a number")
    assert "row 3, column 'vwc'" in reasons["b.jpg"] and "MAPE" in reasons["b.jpg"]
    assert "row 4, column 'vwc'" in reasons["c.jpg"] and "not positive" in reasons["c.jpg"]
    assert "row 5, column 'vwc': empty" in reasons["d.jpg"]


def test_a_missing_column_stops_the_stage_naming_it(tmp_path):
    path = write_sheet(tmp_path / "s.csv", ["image", "vwc", "t"], [["a.jpg", 0.2, 1]])
    with pytest.raises(RawDataError, match=r"s\.csv: no column 'h'.*it has 'image', 'vwc', 't'"):
        read_rows(path, "train", "image", "vwc", FEATURES)


def test_yolo_boxes_by_hand(tmp_path):
    labels = tmp_path / "p.txt"
    labels.write_text("0 0.5 0.5 0.5 0.4 0.9\n0 0.25 0.25 0.5 0.5 0.3\n0 0.75 0.2 0.2 0.2\n", encoding="utf-8")
    boxes = read_yolo_boxes(labels, threshold=0.5)
    assert [b.line for b in boxes] == [3, 1]  # most confident first (no confidence = 1.0); line 2 below 0.5
    # photo 100 x 60 (H x W): line 1 spans x 0.25..0.75 -> 15..45, y 0.3..0.7 -> 30..70
    assert boxes[1].pixels(100, 60) == (30, 15, 40, 30)
    assert boxes[0].pixels(100, 60) == (10, 39, 20, 12)  # x 0.65..0.85 -> 39..51, y 0.1..0.3 -> 10..30
    assert [b.line for b in read_yolo_boxes(labels, 0.0, max_boxes=2)] == [3, 1]
    labels.write_text("0 0.9 0.5 0.4 0.2 0.9\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: box .* reaches outside the image"):
        read_yolo_boxes(labels, 0.5)
    labels.write_text("0 0.5 0.5\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: expected `class cx cy w h"):
        read_yolo_boxes(labels, 0.5)


def test_grid_and_centre_boxes_by_hand():
    assert grid_boxes(10, 7, 2, 3) == [
        (0, 0, 5, 2),
        (0, 2, 5, 2),
        (0, 4, 5, 3),
        (5, 0, 5, 2),
        (5, 2, 5, 2),
        (5, 4, 5, 3),
    ]
    assert centre_box(10, 7, 1.0) == (1, 0, 7, 7)
    assert centre_box(10, 8, 0.5) == (3, 2, 4, 4)


def test_cut_takes_the_box_and_resizes_to_a_square():
    photo = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    patch = cut(photo, (1, 2, 4, 4), 4)
    assert patch.shape == (3, 4, 4)
    assert np.array_equal(patch, photo[1:5, 2:6].transpose(2, 0, 1))
    uniform = np.full((6, 8, 3), 77, dtype=np.uint8)
    assert (cut(uniform, (0, 0, 6, 8), 3) == 77).all()


def test_tabular_stats_by_hand_and_missing_values_filled():
    train = np.array([[1.0, 10.0], [3.0, np.nan], [5.0, 30.0]])
    stats = TabularStats.fit(("a", "b"), train)
    assert stats.mean == (3.0, 20.0)
    assert stats.std == pytest.approx((np.sqrt(8 / 3), np.sqrt(200 / 3)))  # b filled with 20: (100 + 0 + 100) / 3
    assert np.allclose(stats.apply([3.0, np.nan]), [0.0, 0.0])  # a missing cell is the training mean
    with pytest.raises(ValueError, match="column 'b' has no value on any training row"):
        TabularStats.fit(("a", "b"), np.array([[1.0, np.nan], [2.0, np.nan]]))


def write_raw(root: Path, rows: dict[str, list[list[object]]], size: tuple[int, int] = (24, 32)) -> Path:
    """A raw MIS-ME folder: one csv per split and a photo per listed image (each photo a flat colour)."""
    (root / "images").mkdir(parents=True)
    for split, split_rows in rows.items():
        write_sheet(root / f"{split}.csv", ["image", "vwc", "t", "h"], split_rows)
        for i, row in enumerate(split_rows):
            photo = np.full((*size, 3), 40 + 10 * i, dtype=np.uint8)
            cv2.imwrite(str(root / "images" / str(row[0])), photo)
    return root


def source_params(**crops: object) -> Params:
    return Params(
        sheets={s: f"{s}.csv" for s in ("train", "val", "test")},
        features=FEATURES,
        crops=CropParams(**{"mode": "grid", "size": 8, "grid": (1, 2), **crops}),  # type: ignore[arg-type]
        max_skipped_fraction=0.8,
    )


def test_normalisation_is_fitted_on_train_only_and_stored(tmp_path):
    """Val and test rows have far-off features: statistics that saw them would differ from train's."""
    raw = write_raw(
        tmp_path / "raw",
        {
            "train": [["a.png", 0.2, 1, 10], ["b.png", 0.3, 3, ""], ["c.png", 0.25, 5, 30]],
            "val": [["d.png", 0.2, 1000, -500]],
            "test": [["e.png", 0.2, -1000, 900]],
        },
    )
    report = misme.preprocess("m", raw, source_params(), tmp_path / "m.h5", tmp_path / "m.json")
    expected = TabularStats.fit(FEATURES, np.array([[1.0, 10.0], [3.0, np.nan], [5.0, 30.0]]))
    stored = read_meta(tmp_path / "m.h5").preprocessing["tabular_normalisation"]
    for record in (
        stored,
        report["tabular_normalisation"],
        json.loads((tmp_path / "m.json").read_text())["tabular_normalisation"],
    ):
        assert record["mean"] == pytest.approx(expected.mean) and record["std"] == pytest.approx(expected.std)
        assert record["fitted_on"] == "train" and record["training_rows"] == 3
    train = load_split(tmp_path / "m.h5", "train")
    assert train.inputs["tabular"].mean(axis=0) == pytest.approx([0.0, 0.0], abs=1e-6)
    assert train.inputs["tabular"][2] == pytest.approx([0.0, 0.0])  # b.png's missing h filled: (3, 20) -> 0, 0
    assert report["missing_values_filled"]["train"] == {"t": 0, "h": 1}
    # two grid crops per photo, each inheriting its photo's row and split
    assert train.ids == ["a.png#0", "a.png#1", "b.png#0", "b.png#1", "c.png#0", "c.png#1"]
    assert train.labels.tolist() == pytest.approx([0.2, 0.2, 0.3, 0.3, 0.25, 0.25])
    assert train.inputs["image"].shape == (6, 3, 8, 8)
    with h5py.File(tmp_path / "m.h5") as h5:
        assert h5.attrs["task"] == "regression"


def test_bad_photos_boxes_and_split_straddling_are_skipped_and_listed(tmp_path):
    rows = {
        "train": [["a.png", 0.2, 1, 1], ["b.png", 0.3, 2, 2], ["c.png", 0.25, 3, 3], ["d.png", 0.2, 4, 4]],
        "val": [["e.png", 0.2, 1, 1], ["a.png", 0.2, 1, 1], ["g.png", 0.2, 1, 1]],
        "test": [["f.png", 0.2, 1, 1], ["ghost.png", 0.2, 1, 1]],
    }
    raw = write_raw(tmp_path / "raw", rows)
    (raw / "images" / "ghost.png").unlink()
    (raw / "train.csv").write_text((raw / "train.csv").read_text() + "g2.png,0.3,1,1\n")
    cv2.imwrite(str(raw / "images" / "g2.png"), np.zeros((24, 32, 3), np.uint8))
    (raw / "labels").mkdir()
    (raw / "labels" / "g2.txt").write_text("0 0.5 0.5 1 1\n")
    (raw / "images" / "c.png").write_bytes(b"not an image")
    for name in ("a", "b", "c", "e", "f", "g"):
        (raw / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.5 0.5 0.9\n0 0.5 0.5 0.2 0.2 0.1\n")
    (raw / "labels" / "b.txt").write_text("0 0.9 0.5 0.5 0.5 0.9\n")  # a box outside the image
    report = misme.preprocess("m", raw, source_params(mode="yolo", max_boxes=0), tmp_path / "m.h5", tmp_path / "m.json")
    skipped = {(s["clip"], Path(s["file"]).name): s["reason"] for s in report["skipped"]}
    assert set(skipped) == {
        ("a.png", "train.csv"),
        ("a.png", "val.csv"),
        ("b.png", "b.txt"),
        ("c.png", "c.png"),
        ("d.png", "d.txt"),
        ("ghost.png", "ghost.png"),
    }
    assert "listed in several splits" in skipped[("a.png", "train.csv")]
    assert "line 1: box" in skipped[("b.png", "b.txt")] and "train.csv, row 3" in skipped[("b.png", "b.txt")]
    assert skipped[("c.png", "c.png")].startswith("unreadable image")
    assert "no YOLO label file" in skipped[("d.png", "d.txt")]
    assert (
        skipped[("ghost.png", "ghost.png")].startswith("photo not found (listed in")
        and "row 3" in skipped[("ghost.png", "ghost.png")]
    )
    assert report["counts"] == {"train": 1, "val": 2, "test": 1}
    # one box per photo passes the 0.5 threshold: e and f give one crop each
    assert load_split(tmp_path / "m.h5", "test").ids == ["f.png#0"]


def test_too_many_bad_rows_fail_without_a_dataset_file(tmp_path):
    raw = write_raw(
        tmp_path / "raw",
        {
            "train": [["a.png", 0.2, 1, 1], ["b.png", 0.3, "x", 2]],
            "val": [["c.png", 0.2, 1, 1]],
            "test": [["d.png", 0.2, 1, 1]],
        },
    )
    params = Params(
        sheets={s: f"{s}.csv" for s in ("train", "val", "test")}, features=FEATURES, max_skipped_fraction=0.1
    )
    with pytest.raises(
        RawDataError,
        match=r"1 of 4 listed photos \(25.0%\) could not be used, more than "
        r"datasets.m.preprocess.max_skipped_fraction = 0.1",
    ):
        misme.preprocess("m", raw, params, tmp_path / "m.h5", tmp_path / "m.json")
    assert not (tmp_path / "m.h5").exists() and not (tmp_path / "m.json").exists()
    assert (tmp_path / "m.failed.json").is_file()  # the failed run's report, beside no dataset file


def test_given_patches_of_one_photo_in_two_splits_are_skipped(tmp_path):
    raw = write_raw(
        tmp_path / "raw",
        {
            "train": [["OK001_20220401_130000_0.png", 0.2, 1, 1], ["OK001_20220402_130000_0.png", 0.2, 1, 2]],
            "val": [["OK001_20220401_130000_1.png", 0.2, 1, 1], ["OK001_20220403_130000_0.png", 0.2, 2, 1]],
            "test": [["OK001_20220404_130000_0.png", 0.2, 1, 1]],
        },
    )
    params = Params(
        sheets={s: f"{s}.csv" for s in ("train", "val", "test")}, features=FEATURES, max_skipped_fraction=0.5
    )
    report = misme.preprocess("m", raw, params, tmp_path / "m.h5", tmp_path / "m.json")
    assert sorted(s["clip"] for s in report["skipped"]) == [
        "OK001_20220401_130000_0.png",
        "OK001_20220401_130000_1.png",
    ]
    assert report["counts"] == {"train": 1, "val": 1, "test": 1}


def test_the_demo_defaults_are_the_values_params_yaml_documents():
    assert load_params([ROOT / "params.yaml"]).generators["misme_demo"] == misme_demo.Params()


def test_the_demo_is_deterministic_and_preprocesses(tmp_path):
    p = misme_demo.Params(days=4, width=64, height=48, soils=2, sheet_format="xlsx")
    first = misme_demo.generate(tmp_path / "a", p)
    misme_demo.generate(tmp_path / "b", p)
    assert first["photos"] == 12
    for name in ("images/OK002_20220403_130000.jpg", "labels/OK003_20220404_130000.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    sheet = "combined_only_train_set.xlsx"  # the same cells (a zip's bytes carry the time it was written)
    assert read_table(tmp_path / "a" / sheet) == read_table(tmp_path / "b" / sheet)
    params = Params(crops=CropParams(mode="yolo", size=16))
    report = misme.preprocess("d", tmp_path / "a", params, tmp_path / "d.h5", tmp_path / "d.json")
    assert report["skipped"] == [] and sum(report["counts"].values()) == 12 * 2  # the decoy boxes are dropped
    patches = misme_demo.generate(
        tmp_path / "c", misme_demo.Params(days=2, layout="patches", patch_size=16, width=64, height=48)
    )
    assert patches["rows"]["train"] + patches["rows"]["val"] + patches["rows"]["test"] == 6 * 3
    assert sorted(p.name for p in (tmp_path / "c" / "images").iterdir())[0] == "OK001_20220401_130000_0.jpg"


def test_misme_loss_is_fused_plus_each_head_mse():
    method = MISME(modalities=["tabular", "image"], task="regression", taus=(1, 1))
    assert method.student_fusion("late") == "concat_heads"
    out = type("Out", (), {})()
    out.fused = torch.tensor([[0.0], [0.0]])  # sigmoid 0.5
    out.logits = {"tabular": torch.tensor([[0.0], [0.0]]), "image": torch.tensor([[100.0], [100.0]])}  # 0.5, 1.0
    batch = Batch(index=torch.arange(2), inputs={}, target=torch.tensor([1.0, 0.0]))
    parts = method.loss(out, batch)  # type: ignore[arg-type]
    # fused and tabular: ((0.5 - 1)^2 + 0.5^2) / 2 = 0.25 each; image: (0 + 1) / 2 = 0.5
    assert parts.task.item() == pytest.approx(0.25)
    assert parts.uni["tabular"].item() == pytest.approx(0.25) and parts.uni["image"].item() == pytest.approx(0.5)
    assert parts.total.item() == pytest.approx(1.0)


def test_regression_metrics_by_hand():
    y, p = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])
    assert mape(p, y) == pytest.approx((0.5 + 0 + 0.25) / 3 * 100)  # 25.0
    assert r2(p, y) == pytest.approx(1 - 1.25 / (14 / 3))  # SS_res 0.25 + 0 + 1; mean 7/3, SS_tot 14/3
    assert rmse(p, y) == pytest.approx(np.sqrt(1.25 / 3))
    assert mae(p, y) == pytest.approx(0.5)


def test_encoders_for_rows_and_photos_and_pretrained_weights(tmp_path):
    mlp, dim = build_encoder({"name": "tabular_mlp", "hidden": [8, 4]}, (3,))
    assert dim == 4 and mlp(torch.randn(1, 3)).shape == (1, 4)  # a batch of one row trains too
    with pytest.raises(ValueError, match="needs \\(C, H, W\\).*tabular encoder"):
        build_encoder("small_cnn", (8,))
    net, dim = build_encoder({"name": "mobilenet_v2", "width": 0.25}, (3, 16, 16))
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, dim)
    torch.save(net.backbone.state_dict(), tmp_path / "w.pt")
    spec = {"name": "mobilenet_v2", "width": 0.25, "weights": str(tmp_path / "w.pt")}
    student = initialise(
        MultimodalStudent(
            ["tabular", "image"],
            {"tabular": "tabular_mlp", "image": spec},
            {"tabular": (3,), "image": (3, 16, 16)},
            "late",
            1,
        ),
        "reference",
    )
    loaded = student.encoders["image"].backbone.features.state_dict()
    assert all(torch.equal(v, net.backbone.features.state_dict()[k]) for k, v in loaded.items())
    with pytest.raises(ValueError, match="does not fit this MobileNetV2"):
        build_encoder({**spec, "width": 0.5}, (3, 16, 16))


def test_params_name_bad_encoder_options_and_sheets():
    base = {"seeds": [0], "methods": ["joint"], "tau1": 1, "tau2": 1}
    ds = {
        "source": "misme",
        "raw_dir": "x",
        "encoders": {"tabular": "tabular_mlp", "image": {"name": "mobilenet_v2", "depth": 2}},
    }
    with pytest.raises(ConfigError, match=r"datasets\.m\.encoders\.image\.depth: unknown key"):
        params_from_dict({**base, "datasets": {"m": ds}})
    ds["encoders"]["image"] = {"name": "mobilenet_v2", "width": 0.5}
    assert params_from_dict({**base, "datasets": {"m": ds}}).datasets["m"].preprocess.crops.mode == "given"
    with pytest.raises(ConfigError, match=r"p\.sheets: give one sheet per split"):
        parse(Params, {"sheets": {"train": "a.csv"}}, "p")
    with pytest.raises(ConfigError, match=r"p\.sheets\.val: 'b.txt' is neither"):
        parse(Params, {"sheets": {"train": "a.csv", "val": "b.txt", "test": "c.csv"}}, "p")
