"""The `arrays` source: users' own data as named arrays per split (folders of .npy or one .npz), any
number of modalities, classification or regression, validation held out when absent; every bad input
named with its file; and a three-modality dataset through teachers, scoring and a G2D student."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from g2d.config.schema import ConfigError
from g2d.datasets import RawDataError
from g2d.io.dataset_file import load_split, read_meta
from g2d.methods import METHODS, method_entry
from g2d.stages import preprocess as preprocess_stage
from g2d.stages import score, train_student, train_teachers

from conftest import toy_params

MODS = ("image", "spec", "table")
# equal feature sizes (64), which the shared-head fusions (MLA, ReconBoost) need
ENCODERS = {"image": "small_cnn", "spec": "small_cnn", "table": {"name": "tabular_mlp", "hidden": [32, 64]}}


def _split_arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    """Three modalities whose class shows in each (image strongest), rows numbered in `table[:, 0]`."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    image = np.clip(rng.integers(0, 120, (n, 1, 8, 8)) + labels[:, None, None, None] * 60, 0, 255).astype(np.uint8)
    spec = (rng.normal(size=(n, 1, 6, 5)) + labels[:, None, None, None]).astype(np.float32)
    table = np.concatenate([np.arange(n)[:, None], rng.normal(size=(n, 3)) + labels[:, None]], 1).astype(np.float64)
    return {"image": image, "spec": spec, "table": table, "labels": labels}


def write_folders(root: Path, sizes: dict[str, int], draw=None) -> Path:
    """A folder per split of .npy arrays drawn by `draw(n, seed)` (default: the three modalities above)."""
    for i, (split, n) in enumerate(sizes.items()):
        (root / split).mkdir(parents=True)
        for name, array in (draw or _split_arrays)(n, i).items():
            np.save(root / split / f"{name}.npy", array)
    return root


def own_dataset(root: Path, student: dict | None = None, **preprocess) -> dict:
    """The params of dataset `own`: the three modalities above read by the arrays source from `root`."""
    spec = {"modalities": list(MODS), "image_modalities": ["image"], **preprocess}
    extra = {"student": student} if student is not None else {}
    return {"source": "arrays", "raw_dir": str(root), "preprocess": spec, "encoders": ENCODERS, **extra}


def params_for(root: Path, **preprocess):
    return toy_params(datasets={"own": own_dataset(root, **preprocess)}, tau3=1)


def test_folders_of_npy_without_val_hold_out_a_stratified_validation(tmp_path):
    root = write_folders(tmp_path / "raw", {"train": 30, "test": 9})
    params = params_for(root, val_fraction=0.2, seed=1)
    out = tmp_path / "own.h5"
    report = preprocess_stage.run(params, "own", out, tmp_path / "own.report.json") or json.loads(
        (tmp_path / "own.report.json").read_text()
    )
    meta = read_meta(out)
    assert meta.modalities == MODS and meta.class_names == ("0", "1", "2") and meta.task == "classification"
    train, val, test = (load_split(out, s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (24, 6, 9)
    assert sorted(np.bincount(val.labels).tolist()) == [2, 2, 2]  # 20% of each class of 10
    assert report["val"].startswith("held out of train (0.2, seed 1)")
    raw = _split_arrays(30, 0)
    for split in (train, val):  # every row is its raw row, image kept uint8, the rest float32
        rows = split.inputs["table"][:, 0].astype(int)
        assert split.inputs["image"].dtype == np.uint8 and split.inputs["table"].dtype == np.float32
        np.testing.assert_array_equal(split.inputs["image"], raw["image"][rows])
        np.testing.assert_array_equal(split.labels, raw["labels"][rows])
        assert split.ids == [f"train{r:07d}" for r in rows]
    assert params.datasets["own"].augment.modalities == ("image",)


def test_an_npz_per_split_for_regression_with_ids_and_a_given_val(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    for i, (split, n) in enumerate({"train": 12, "valid": 4, "test": 4}.items()):
        data = _split_arrays(n, i)
        data["labels"] = data["table"][:, 1] + 10.0
        data["ids"] = np.array([f"{split}-{k}" for k in range(n)])
        np.savez(root / f"{split}.npz", **data)
    out = tmp_path / "r.h5"
    params = params_for(root, task="regression")
    preprocess_stage.run(params, "own", out, tmp_path / "r.json")
    assert read_meta(out).task == "regression" and read_meta(out).class_names == ()
    val = load_split(out, "val")
    assert val.ids == [f"valid-{k}" for k in range(4)] and val.labels.dtype == np.float32


def _expect(root: Path, tmp_path: Path, message: str, **preprocess) -> None:
    with pytest.raises(RawDataError, match=message):
        preprocess_stage.run(params_for(root, **preprocess), "own", tmp_path / "x.h5", tmp_path / "x.json")
    assert not (tmp_path / "x.h5").exists()


def test_bad_arrays_are_named_with_their_file(tmp_path):
    root = write_folders(tmp_path / "raw", {"train": 12, "test": 6})
    np.save(root / "test" / "spec.npy", np.zeros((5, 1, 6, 5), np.float32))
    _expect(root, tmp_path, r"test/spec.npy: 5 rows, but .*test/labels.npy has 6")
    np.save(root / "test" / "spec.npy", np.zeros((6, 1, 6, 4), np.float32))
    _expect(root, tmp_path, r"test/spec.npy: rows of shape \(1, 6, 4\), but train's are \(1, 6, 5\)")
    np.save(root / "test" / "spec.npy", np.zeros((6, 1, 6, 5), np.float32))
    np.save(root / "test" / "labels.npy", np.array([0, 1, 2, 3, 0, 1]))
    _expect(root, tmp_path, r"test/labels.npy: labels \[3\] are outside 0..2", class_names=["a", "b", "c"])
    np.save(root / "test" / "labels.npy", np.array([0, 1, 2, 0, 0, 1]))
    np.save(root / "test" / "table.npy", np.array([["x"] * 4] * 6))
    _expect(root, tmp_path, r"test/table.npy: dtype <U1 is not numeric")
    np.save(root / "test" / "table.npy", np.array([{"a": 1}] * 6, dtype=object), allow_pickle=True)
    _expect(root, tmp_path, r"test/table.npy: not a readable array without pickle")  # never unpickled
    (root / "test" / "table.npy").unlink()
    _expect(root, tmp_path, r"test/table.npy: missing")


def test_rows_holding_nan_are_skipped_and_listed(tmp_path):
    root = write_folders(tmp_path / "raw", {"train": 30, "val": 6, "test": 6})
    spec = np.load(root / "train" / "spec.npy")
    spec[4, 0, 1, 1] = np.nan
    np.save(root / "train" / "spec.npy", spec)
    preprocess_stage.run(params_for(root), "own", tmp_path / "n.h5", tmp_path / "n.json")
    skipped = json.loads((tmp_path / "n.json").read_text())["skipped"]
    assert skipped == [
        {
            "clip": "train0000004",
            "file": f"{root}/train/spec.npy row 4",
            "reason": "spec holds non-finite values (NaN or Inf)",
        }
    ]


def test_params_name_the_modalities_and_encoders_must_match(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets.own.encoders: no encoder for modalities \['table'\]"):
        toy_params(
            datasets={
                "own": {
                    "source": "arrays",
                    "raw_dir": "x",
                    "preprocess": {"modalities": list(MODS)},
                    "encoders": {"image": "small_cnn", "spec": "small_cnn"},
                }
            }
        )
    with pytest.raises(ConfigError, match=r"preprocess.modalities\[0\]: 'labels' is not a modality name"):
        params_for(tmp_path, modalities=["labels"])


def test_three_modalities_through_teachers_scores_and_a_g2d_student(tmp_path):
    root = write_folders(tmp_path / "raw", {"train": 36, "val": 9, "test": 9})
    params = params_for(root)
    h5 = tmp_path / "own.h5"
    preprocess_stage.run(params, "own", h5, tmp_path / "own.json")
    train_teachers.run(params, "own", 0, h5, tmp_path / "teachers", tmp_path / "resume")
    assert sorted(p.name for p in (tmp_path / "teachers").glob("*.pt")) == ["image.pt", "spec.pt", "table.pt"]
    score.run(params, h5, tmp_path / "teachers", tmp_path / "scores.h5", tmp_path / "tm.json", tmp_path / "c.png")
    run = params.for_dataset("own")
    scores, teachers = tmp_path / "scores.h5", tmp_path / "teachers"
    student, log_path = tmp_path / "s.pt", tmp_path / "log.json"
    train_student.run(run, "own", "g2d", 0, h5, scores, teachers, student, log_path, tmp_path / "resume")
    log = json.loads(log_path.read_text())
    assert len(log) == params.tau1 + params.tau2 + params.tau3  # three SMP phases
    assert {f"prioritised_{m}" for m in MODS} <= set(log[0])


def _mult_pickle(path: Path) -> None:
    """A pickle laid out as the aligned-feature downloads (MulT's iemocap_data.pkl): splits of dicts."""
    rng = np.random.default_rng(0)
    data = {}
    for split, n in (("train", 8), ("valid", 3), ("test", 3)):
        emotions = np.zeros((n, 4, 2), np.float32)
        emotions[np.arange(n), np.arange(n) % 4, 1] = 1  # emotion k present
        emotions[:, :, 0] = 1 - emotions[:, :, 1]
        data[split] = {
            "text": rng.normal(size=(n, 5, 7)),
            "audio": rng.normal(size=(n, 5, 3)).astype(np.float32),
            "vision": rng.normal(size=(n, 5, 2)),
            "labels": emotions,
            "id": np.array([[f"Ses01_{split}{k}".encode(), b"seg"] for k in range(n)]),
        }
    with open(path, "wb") as fh:
        __import__("pickle").dump(data, fh)


def test_convert_pickle_unpickles_once_into_npz_that_the_arrays_source_reads(tmp_path, capsys):
    from g2d.cli import main

    _mult_pickle(tmp_path / "iemocap_data.pkl")
    out = tmp_path / "iemocap"
    argv = ["convert-pickle", str(tmp_path / "iemocap_data.pkl"), "--out", str(out)]
    assert main([*argv, "--modality", "text", "--modality", "audio", "--modality", "visual=vision"]) == 0
    err = capsys.readouterr().err
    assert "unpickling" in err and "runs code from the file" in err
    assert sorted(p.name for p in out.iterdir()) == ["test.npz", "train.npz", "val.npz"]
    with np.load(out / "train.npz", allow_pickle=False) as train:  # safe to read: plain arrays only
        assert train["labels"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
        assert train["visual"].shape == (8, 5, 2) and train["ids"][1] == "Ses01_train1_seg"
    spec = {"modalities": ["text", "audio", "visual"]}
    params = toy_params(
        datasets={
            "iemocap": {
                "source": "arrays",
                "raw_dir": str(out),
                "preprocess": spec,
                "encoders": {m: "small_cnn" for m in spec["modalities"]},
            }
        },
        tau3=1,
    )
    preprocess_stage.run(params, "iemocap", tmp_path / "i.h5", tmp_path / "i.json")
    val = load_split(tmp_path / "i.h5", "val")
    assert val.inputs["text"].shape == (3, 5, 7) and val.ids[0] == "Ses01_valid0_seg"
    assert read_meta(tmp_path / "i.h5").class_names == ("0", "1", "2", "3")
    # and the sequences train, with the sequence encoder
    sequence = {"name": "sequence_transformer", "d_model": 8, "heads": 2, "layers": 1}
    encoders = {m: sequence for m in spec["modalities"]}
    params = toy_params(
        datasets={"iemocap": {"source": "arrays", "raw_dir": str(out), "preprocess": spec, "encoders": encoders}},
        tau3=1,
    )
    train_teachers.run(params, "iemocap", 0, tmp_path / "i.h5", tmp_path / "teachers", tmp_path / "resume")
    assert sorted(p.name for p in (tmp_path / "teachers").glob("*.pt")) == ["audio.pt", "text.pt", "visual.pt"]


def test_convert_pickle_names_what_is_missing(tmp_path, capsys):
    from g2d.cli import main

    _mult_pickle(tmp_path / "d.pkl")
    assert main(["convert-pickle", str(tmp_path / "d.pkl"), "--out", str(tmp_path / "o"), "--modality", "video"]) == 2
    assert "d.pkl [train]: no array 'video'; it holds text, audio, vision, labels, id" in capsys.readouterr().err
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    assert main(["convert-pickle", str(tmp_path / "bad.pkl"), "--out", str(tmp_path / "o"), "--modality", "a"]) == 2
    assert "bad.pkl: not a readable pickle" in capsys.readouterr().err


def test_convert_pickle_reads_ur_funny_labels_and_keeps_token_ids_as_integers(tmp_path, capsys):
    """UR-Funny as MultiBench ships it (humor.pkl): labels (N, 1) of 0.0 / 1.0; here with token-id text."""
    from g2d.cli import main

    rng = np.random.default_rng(1)
    data = {}
    for split, n in (("train", 6), ("dev", 2), ("test", 2)):
        data[split] = {
            "text": rng.integers(0, 20, (n, 4)),
            "audio": rng.normal(size=(n, 4, 3)),
            "vision": rng.normal(size=(n, 4, 2)),
            "labels": (np.arange(n) % 2).astype(np.float32)[:, None],
        }
    with open(tmp_path / "humor.pkl", "wb") as fh:
        __import__("pickle").dump(data, fh)
    out = tmp_path / "urfunny"
    mods = ["--modality", "text", "--modality", "audio", "--modality", "visual=vision"]
    assert main(["convert-pickle", str(tmp_path / "humor.pkl"), "--out", str(out), *mods]) == 0
    assert f"{out / 'val.npz'}: text [2, 4], audio [2, 4, 3], visual [2, 4, 2], labels [2]" in capsys.readouterr().out
    with np.load(out / "train.npz", allow_pickle=False) as train:
        assert train["labels"].dtype == np.int64 and train["labels"].tolist() == [0, 1, 0, 1, 0, 1]
        assert train["text"].dtype == np.int64 and train["text"].tolist() == data["train"]["text"].tolist()
        assert train["audio"].dtype == np.float32 and "ids" not in train.files


def test_convert_pickle_drops_label_rows_that_mark_no_single_class():
    from g2d.datasets.convert_pickle import class_indices

    present = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]])
    pairs = np.stack([1 - present, present], axis=2)  # IEMOCAP's (N, 4, [absent, present])
    labels, keep = class_indices(pairs, "x")
    assert labels[keep].tolist() == [2, 0] and keep.tolist() == [True, True, False, False]
    labels, keep = class_indices(np.array([[0.1, 0.7, 0.2]]), "x")  # scores: argmax, kept
    assert labels.tolist() == [1] and keep.all()
    labels, keep = class_indices(np.array([[0.5], [-1.25]]), "x")  # regression targets stay floats
    assert labels.dtype.kind == "f" and labels.tolist() == [0.5, -1.25]
    with pytest.raises(RawDataError, match=r"x: labels of shape \(2, 2, 2, 2\) are not"):
        class_indices(np.zeros((2, 2, 2, 2)), "x")


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> tuple[Path, Path]:
    """A three-modality dataset, its teachers and their score cache (made once for the methods below)."""
    folder = tmp_path_factory.mktemp("three")
    root = write_folders(folder / "raw", {"train": 36, "val": 9, "test": 9})
    params = params_for(root)
    h5 = folder / "own.h5"
    preprocess_stage.run(params, "own", h5, folder / "own.json")
    train_teachers.run(params, "own", 0, h5, folder / "teachers", folder / "resume")
    score.run(params, h5, folder / "teachers", folder / "scores.h5", folder / "tm.json", folder / "c.png")
    return root, folder


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_on_three_modalities(three, method):
    """Each baseline's rule for k > 2 modalities (the mean of the others, per-modality groups, three SMP
    phases) runs on a real k = 3 dataset and logs a finite loss every epoch."""
    root, folder = three
    params = params_for(root)
    if method_entry(method).smp:
        params = params_for(root).with_student_overrides({"smp.suppression": "partial"})  # k = 3 partial
    out = folder / method
    train_student.run(
        params.for_dataset("own"), "own", method, 0, folder / "own.h5", folder / "scores.h5", folder / "teachers",
        out / "s.pt", out / "log.json", out / "resume",
    )  # fmt: skip
    log = json.loads((out / "log.json").read_text())
    assert log or method_entry(method).teacher_weights  # UME trains nothing: it combines the teachers
    assert all(np.isfinite(r["loss"]) for r in log if "loss" in r)


# --- modality subsets (paper Table 2): `modalities` picks what a student uses; teachers are shared ---


def test_modalities_name_a_subset_of_two_or_more_of_the_dataset(tmp_path):
    params = params_for(tmp_path)
    run = params.for_dataset("own")
    assert run.student_modalities("own") == MODS  # all
    assert run.with_student_overrides({"modalities": ["table", "image"]}).student_modalities("own") == (
        "image",
        "table",
    )  # the dataset's (model) order, whatever the list's
    for value, message in (
        (["image", "text"], r"dataset own has no modality 'text'; its modalities: image, spec, table"),
        (["image"], r"\['image'\] is one modality: a student of one modality is that modality's teacher"),
        (["image", "image"], r"names must be distinct"),
    ):
        with pytest.raises(ConfigError, match=r"datasets.own.student.modalities: " + message):
            toy_params(datasets={"own": own_dataset(tmp_path, student={"modalities": value})}, tau3=1)
    with pytest.raises(
        ConfigError, match=r"modalities: 'image' \(str\) is not allowed; expected one of 'all' or a list"
    ):
        run.with_student_overrides({"modalities": "image"})


def test_a_subsets_ablation_runs_every_combination_of_each_datasets_modalities(tmp_path):
    ablation = {"table2": {"over": "modalities", "values": "subsets", "methods": ["joint", "g2d"]}}
    p = toy_params(
        datasets={
            "own": own_dataset(tmp_path),
            "toy": {"source": "cremad", "raw_dir": "unused", "encoders": {"audio": "small_cnn", "video": "small_cnn"}},
        },
        tau3=1,
        ablations=ablation,
    )
    assert list(p.for_dataset("own").variants("table2")) == [
        "image-spec", "image-table", "spec-table", "image-spec-table",
    ]  # fmt: skip
    assert list(p.for_dataset("toy").variants("table2")) == ["audio-video"]
    assert p.for_dataset("own").variant("table2", "spec-table").student_modalities("own") == ("spec", "table")
    with pytest.raises(ConfigError, match=r"depend on the dataset"):
        p.variants("table2")
    with pytest.raises(ConfigError, match=r"ablations.bad.values: subsets .* goes with over: modalities"):
        toy_params(ablations={"bad": {"over": "fusion", "values": "subsets", "methods": ["g2d"]}})
    with pytest.raises(ConfigError, match=r"ablations.bad.values\[0\] on top of dataset toy: .*no modality 'text'"):
        toy_params(ablations={"bad": {"over": "modalities", "values": [["audio", "text"]], "methods": ["g2d"]}})


def test_a_student_of_two_of_three_modalities_reuses_their_teachers(three):
    """The student and its evaluation see only the subset: its SMP ranks those two (tau1 + tau2 epochs),
    its metrics name those two, and the third modality's teacher is not read."""
    from g2d.stages import evaluate

    root, folder = three
    run = params_for(root).for_dataset("own").with_student_overrides({"modalities": ["table", "image"]})
    out = folder / "subset"
    train_student.run(
        run, "own", "g2d", 0, folder / "own.h5", folder / "scores.h5", folder / "teachers",
        out / "s.pt", out / "log.json", out / "resume",
    )  # fmt: skip
    log = json.loads((out / "log.json").read_text())
    assert len(log) == run.tau1 + run.tau2
    assert {k for k in log[0] if k.startswith("prioritised_")} == {"prioritised_image", "prioritised_table"}
    result = evaluate.run(run, folder / "own.h5", folder / "scores.h5", out / "s.pt", out / "metrics.json")
    assert list(result["test"]) == ["fused", "image", "table"]
    assert list(result["teacher"]) == ["image", "table"] and result["least_confident_teacher"] in ("image", "table")
    assert set(result["modality_gap"]["pairs"]) == {"image-table"} or "undefined" in result["modality_gap"]


def test_the_modality_gap_is_the_distance_between_normalised_centroids():
    """Hand-checked: unit vectors e1 (a) and e2 (b) give centroids 1 apart in each coordinate, so sqrt(2);
    scaling a row changes nothing (only directions count); identical features give 0; widths that differ
    have no shared space."""
    from g2d.training.gap import modality_gap, projection

    a = np.array([[2.0, 0.0], [0.5, 0.0]])
    b = np.array([[0.0, 3.0], [0.0, 1.0]])
    gap = modality_gap({"a": a, "b": b})
    assert gap["pairs"] == {"a-b": pytest.approx(np.sqrt(2))} and gap["mean"] == pytest.approx(np.sqrt(2))
    assert modality_gap({"a": a, "b": a * 7})["mean"] == pytest.approx(0.0)
    three = modality_gap({"a": a, "b": b, "c": -a})
    assert three["pairs"] == pytest.approx({"a-b": np.sqrt(2), "a-c": 2.0, "b-c": np.sqrt(2)})
    assert three["mean"] == pytest.approx((2 * np.sqrt(2) + 2) / 3)
    wide = modality_gap({"a": a, "b": np.ones((2, 3))})
    assert wide["mean"] is None and "widths differ" in wide["undefined"]
    pca = projection({"a": a, "b": b})
    assert {m: len(p) for m, p in pca["points"].items()} == {"a": 2, "b": 2} and sum(pca["explained"]) <= 1 + 1e-9
    first = np.asarray(pca["points"]["a"])[:, 0]
    assert np.allclose(first, first[0]) and not np.allclose(first, np.asarray(pca["points"]["b"])[:, 0])


# --- token-id text: stored as ids, never standardised, read by text_transformer ----------------------

TEXT = {"name": "text_transformer", "dim": 8, "heads": 2, "layers": 1}
SEQUENCE = {"name": "sequence_transformer", "d_model": 8, "heads": 2, "layers": 1}


def _text_arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    """Text ids (0-padded at the end) whose first token is 3 + the class; audio sequences; a table."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    text = rng.integers(1, 9, (n, 6))
    text[:, 0] = 3 + labels
    text[:, 4:] = 0
    audio = (rng.normal(size=(n, 5, 3)) + labels[:, None, None]).astype(np.float32)
    table = (rng.normal(size=(n, 4)) + labels[:, None]).astype(np.float32)
    return {"text": text, "audio": audio, "table": table, "labels": labels}


def write_text_folders(root: Path, sizes: dict[str, int]) -> Path:
    return write_folders(root, sizes, _text_arrays)


def text_params(root: Path, **preprocess):
    spec = {"modalities": ["text", "audio", "table"], "token_modalities": ["text"], **preprocess}
    encoders = {"text": TEXT, "audio": SEQUENCE, "table": {"name": "tabular_mlp", "hidden": [8]}}
    return toy_params(
        datasets={"talk": {"source": "arrays", "raw_dir": str(root), "preprocess": spec, "encoders": encoders}},
        tau3=1,
    )


def test_token_modalities_are_stored_as_ids_with_their_vocabulary_and_never_standardised(tmp_path):
    from g2d.training.data import Normalizer

    root = write_text_folders(tmp_path / "raw", {"train": 12, "val": 3, "test": 3})
    np.save(root / "test" / "text.npy", np.array([[11, 0, 0, 0, 0, 0]] * 3))  # the largest id is in test
    out = tmp_path / "t.h5"
    preprocess_stage.run(text_params(root), "talk", out, tmp_path / "t.json")
    meta = read_meta(out)
    assert dict(meta.tokens) == {"text": 12}  # largest id over all splits + 1
    assert json.loads((tmp_path / "t.json").read_text())["vocab_sizes"] == {"text": 12}
    train = load_split(out, "train")
    assert train.inputs["text"].dtype == np.int32 and train.inputs["audio"].dtype == np.float32
    np.testing.assert_array_equal(train.inputs["text"], _text_arrays(12, 0)["text"])
    norm = Normalizer.fit(train, meta.task, meta.tokens)
    assert norm.tokens == ("text",) and "text" not in norm.mean and "audio" in norm.mean
    ids = norm.inputs("text", train.inputs["text"][:2])
    assert ids.dtype == torch.int64 and ids.tolist() == _text_arrays(12, 0)["text"][:2].tolist()
    assert Normalizer.from_dict(norm.to_dict()) == norm
    assert Normalizer.from_dict({k: v for k, v in norm.to_dict().items() if k != "tokens"}).tokens == ()
    preprocess_stage.run(text_params(root, vocab_size=100), "talk", out, tmp_path / "t.json")
    assert dict(read_meta(out).tokens) == {"text": 100}  # the given vocabulary


def test_bad_token_ids_are_named_with_their_file(tmp_path):
    root = write_text_folders(tmp_path / "raw", {"train": 12, "test": 6})
    path = root / "test" / "text.npy"
    np.save(path, np.full((6, 6), 2.0))
    with pytest.raises(RawDataError, match=r"test/text.npy: dtype float64, but token ids must be integers"):
        preprocess_stage.run(text_params(root), "talk", tmp_path / "x.h5", tmp_path / "x.json")
    np.save(path, np.array([[1, -1, 0, 0, 0, 0]] * 6))
    with pytest.raises(RawDataError, match=r"test/text.npy: token id -1 is negative"):
        preprocess_stage.run(text_params(root), "talk", tmp_path / "x.h5", tmp_path / "x.json")
    np.save(path, np.array([[1, 9, 0, 0, 0, 0]] * 6))
    with pytest.raises(RawDataError, match=r"test/text.npy: token id 9 is not below vocab_size 9; raise"):
        preprocess_stage.run(text_params(root, vocab_size=9), "talk", tmp_path / "x.h5", tmp_path / "x.json")
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(ConfigError, match=r"token_modalities\[0\]: 'text' is also in image_modalities"):
        text_params(root, image_modalities=["text"])
    with pytest.raises(ConfigError, match=r"token_modalities\[0\]: 'words' is not in modalities"):
        text_params(root, token_modalities=["words"])


def test_a_token_text_modality_trains_teachers_and_a_g2d_student(tmp_path):
    root = write_text_folders(tmp_path / "raw", {"train": 24, "val": 6, "test": 6})
    params = text_params(root)
    h5, teachers, scores = tmp_path / "t.h5", tmp_path / "teachers", tmp_path / "scores.h5"
    preprocess_stage.run(params, "talk", h5, tmp_path / "t.json")
    train_teachers.run(params, "talk", 0, h5, teachers, tmp_path / "resume")
    text_teacher = torch.load(teachers / "text.pt", weights_only=False)
    assert text_teacher["encoder"] == {**TEXT, "vocab_size": 9}  # the dataset's vocabulary, stored to rebuild
    score.run(params, h5, teachers, scores, tmp_path / "tm.json", tmp_path / "c.png")
    student, log_path = tmp_path / "s.pt", tmp_path / "log.json"
    train_student.run(
        params.for_dataset("talk"), "talk", "g2d", 0, h5, scores, teachers, student, log_path, tmp_path / "resume"
    )
    log = json.loads(log_path.read_text())
    assert len(log) == 2 + 2 + 1 and all(np.isfinite(r["loss"]) for r in log)
    state = torch.load(student, weights_only=False)
    assert state["encoders"]["text"]["vocab_size"] == 9 and state["normalizer"]["tokens"] == ("text",)
    # a feature encoder on the ids is refused before training, naming the key
    wrong = text_params(root)
    wrong.datasets["talk"].encoders["text"] = SEQUENCE
    with pytest.raises(ConfigError, match=r"datasets.talk.encoders.text: text holds token ids"):
        train_teachers.run(wrong, "talk", 0, h5, tmp_path / "t2", tmp_path / "resume2")


@pytest.mark.parametrize(
    "suppression, ranking", [("zero_grad", "batch"), ("freeze", "batch"), ("partial", "batch"), ("zero_grad", "global")]
)
def test_three_smp_phases_on_three_modalities_with_each_suppression(three, suppression, ranking):
    """Eq. 6-7 for k = 3 on a real run: phases 1 and 2 each prioritise one modality per batch (the
    least, then the second least confident teacher), phase 3 all three; complete suppression gives the
    others kappa 0, partial gives them 1 - tanh(r) in (0, 1), so the kappas of a batch sum above 1;
    ranked once (global), every batch of a phase prioritises the same modality, a different one in
    phase 2 than in phase 1."""
    root, folder = three
    run = (
        params_for(root)
        .for_dataset("own")
        .with_student_overrides(
            {"tau1": 1, "tau2": 1, "tau3": 1, "smp.suppression": suppression, "smp.ranking": ranking}
        )
    )
    out = folder / f"phases-{suppression}-{ranking}"
    train_student.run(
        run, "own", "g2d", 0, folder / "own.h5", folder / "scores.h5", folder / "teachers",
        out / "s.pt", out / "log.json", out / "resume",
    )  # fmt: skip
    log = json.loads((out / "log.json").read_text())
    assert [r["smp_phase"] for r in log] == [1, 2, 3]
    for record in log:
        shares = sum(record[f"prioritised_{m}"] for m in MODS)
        kappas = sum(record[f"kappa_{m}"] for m in MODS)
        if record["smp_phase"] < 3:
            assert shares == pytest.approx(1.0)
            if suppression == "partial":
                assert 1.0 < kappas < 3.0
            else:
                assert kappas == pytest.approx(1.0)
        else:
            assert shares == pytest.approx(3.0) and kappas == pytest.approx(3.0)
    if ranking == "global":
        first, second = ({m for m in MODS if log[e][f"prioritised_{m}"] == 1.0} for e in (0, 1))
        assert len(first) == len(second) == 1 and first != second


@pytest.mark.parametrize("k, task", [(2, "classification"), (4, "regression")])
def test_any_number_of_modalities_classification_or_regression_end_to_end(tmp_path, k, task):
    """k named table modalities (2 and 4, one tau per modality) through preprocessing, k teachers,
    scoring, a G2D student with k SMP phases and its evaluation; regression keeps its target's units."""
    from g2d.stages import evaluate

    names = [f"m{i}" for i in range(k)]

    def draw(n: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        y = np.arange(n) % 2
        arrays = {m: (rng.normal(size=(n, 3)) + (i + 1) * y[:, None]).astype(np.float32) for i, m in enumerate(names)}
        arrays["labels"] = y if task == "classification" else (5.0 + y + 0.1 * rng.random(n)).astype(np.float32)
        return arrays

    root = write_folders(tmp_path / "raw", {"train": 24, "val": 8, "test": 8}, draw)
    params = toy_params(
        datasets={
            "k": {
                "source": "arrays",
                "raw_dir": str(root),
                "preprocess": {"modalities": names, "task": task},
                "encoders": {m: {"name": "tabular_mlp", "hidden": [8]} for m in names},
            }
        },
        tau1=1,
        tau2=1,
        tau3=1,
        **({"tau4": 1} if k == 4 else {}),
    )
    h5 = tmp_path / "k.h5"
    preprocess_stage.run(params, "k", h5, tmp_path / "k.json")
    assert read_meta(h5).modalities == tuple(names) and read_meta(h5).task == task
    train_teachers.run(params, "k", 0, h5, tmp_path / "teachers", tmp_path / "resume")
    score.run(params, h5, tmp_path / "teachers", tmp_path / "scores.h5", tmp_path / "tm.json", tmp_path / "c.png")
    run = params.for_dataset("k")
    out = tmp_path / "g2d"
    train_student.run(
        run, "k", "g2d", 0, h5, tmp_path / "scores.h5", tmp_path / "teachers", out / "s.pt", out / "log.json",
        out / "resume",
    )  # fmt: skip
    log = json.loads((out / "log.json").read_text())
    assert [r["smp_phase"] for r in log] == list(range(1, k + 1))
    result = evaluate.run(run, h5, tmp_path / "scores.h5", out / "s.pt", out / "metrics.json")
    assert set(result["test"]) == {"fused", *names}
    if task == "regression":
        assert set(result["test"]["fused"]) >= {"mape", "r2"} and np.isfinite(result["test"]["fused"]["mape"])
    else:
        assert 0.0 <= result["test"]["fused"]["accuracy"] <= 1.0


def test_only_the_explicit_converter_ever_unpickles():
    """No module of the pipeline imports pickle or loads arrays with allow_pickle=True: the one place
    that unpickles is `g2d convert-pickle`, run by hand (torch checkpoints load weights-only)."""
    import ast

    src = Path(__file__).resolve().parents[1] / "src" / "g2d"
    offenders = []
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            imported = (
                [a.name for a in node.names] if isinstance(node, ast.Import) else
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            if any(name.split(".")[0] in ("pickle", "dill", "cloudpickle", "joblib") for name in imported):
                uses = {
                    n.attr
                    for n in ast.walk(tree)
                    if isinstance(n, ast.Attribute) and getattr(n.value, "id", "") == "pickle"
                }
                if uses != {"UnpicklingError"}:  # naming the error a weights-only torch.load raises is fine
                    offenders.append(f"{path.relative_to(src)}: imports {imported}")
            if isinstance(node, ast.keyword) and node.arg == "allow_pickle" and getattr(node.value, "value", False):
                offenders.append(f"{path.relative_to(src)}: allow_pickle=True")
            if isinstance(node, ast.keyword) and node.arg == "weights_only" and not getattr(node.value, "value", True):
                offenders.append(f"{path.relative_to(src)}: weights_only=False")
    assert offenders == ["datasets/convert_pickle.py: imports ['pickle']"]
