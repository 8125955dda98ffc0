"""Training-time augmentation (`datasets.<name>.augment`): the crops, the view bank in the score
cache, which teacher outputs a cropped clip gets, online teachers, and `none` changing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import g2d.training.augment as aug
import g2d.training.student as ts
from g2d.config.params import AugmentParams
from g2d.io.dataset_file import load_split, read_meta
from g2d.io.score_cache import TRAIN_VIEWS, TeacherScores, ViewBank, read_scores, read_view_bank
from g2d.models.student import UnimodalModel
from g2d.stages import evaluate, score, train_student, train_teachers
from g2d.training import checkpoint
from g2d.training.augment import BankViews, FixedView, bank_crops, draw_bank, fresh_crops
from g2d.training.data import Normalizer, SplitTensors
from g2d.training.student import train_student as fit_student
from g2d.training.teacher import load_teachers
from g2d.transforms.augment import crop_resize, draw_boxes

from conftest import toy_params

CPU = torch.device("cpu")
ENCODERS = {"audio": "small_cnn", "video": "small_cnn"}


def aug_params(augment: dict | None, **overrides):
    """The toy params with `datasets.toy.augment` set to `augment` (no section at all if None)."""
    toy = {"source": "cremad", "raw_dir": "unused", "encoders": ENCODERS}
    if augment is not None:
        toy["augment"] = augment
    return toy_params(datasets={"toy": toy}, **{"tau1": 1, "tau2": 1, "teacher": {"epochs": 2}, **overrides})


def run_stages(params, h5: Path, out: Path, method: str = "g2d", seed: int = 0) -> dict:
    """Teachers, score, one student and its evaluation into `out`; what they wrote."""
    augment = params.datasets["toy"].augment
    train_teachers.run(params, "toy", seed, h5, out / "teachers", out / "resume")
    score.run(
        params, h5, out / "teachers", out / "scores.h5", out / "tm.json", out / "c.png", augment=augment, seed=seed
    )
    train_student.run(
        params,
        "toy",
        method,
        seed,
        h5,
        out / "scores.h5",
        out / "teachers",
        out / "s.pt",
        out / "log.json",
        out / "resume",
    )
    metrics = evaluate.run(params, h5, out / "scores.h5", out / "s.pt", out / "m.json")
    return {"log": json.loads((out / "log.json").read_text()), "metrics": metrics}


# -- the crops themselves --------------------------------------------------------------------------


def test_boxes_lie_inside_the_frame_and_follow_scale_and_ratio():
    boxes = draw_boxes(np.random.default_rng(0), 20_000, 30, 40, (0.2, 0.6), (0.5, 2.0))
    top, left, h, w = boxes.T
    assert boxes.dtype == np.int32
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 30).all() and (left + w <= 40).all()
    area = h * w / (30 * 40)
    assert area.min() > 0.15 and area.max() < 0.7  # [0.2, 0.6] up to rounding
    assert len(set(map(tuple, boxes[:100]))) > 90


def test_crop_resize_crops_resizes_and_flips_every_frame_alike():
    frames = np.zeros((2, 3, 3, 8, 8), dtype=np.uint8)
    frames[:, :, :, :4, :4] = 200  # bright top-left quadrant
    frames[:, :, :, :4, 3] = 100  # ... whose last column is grey
    full, quadrant = np.array([[0, 0, 8, 8]]), np.array([[0, 0, 4, 4]])
    out = crop_resize(frames, np.concatenate([full, quadrant]), np.array([True, False]))
    np.testing.assert_array_equal(out[0], frames[0, :, :, :, ::-1])  # full box: a mirror image only
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert (out[1, :, :, :, :5] == 200).all() and (out[1, :, :, :, 7] == 100).all()  # quadrant blown up 2x
    assert all((out[1, t] == out[1, 0]).all() for t in range(3))  # one crop for the whole stack


def test_view_bank_is_deterministic_per_seed_and_records_flips():
    spec = AugmentParams(kind="views", modalities=("video",), views=4)
    sizes = {"video": (12, 12)}
    a, b, c = draw_bank(spec, sizes, 50, seed=3), draw_bank(spec, sizes, 50, seed=3), draw_bank(spec, sizes, 50, seed=4)
    np.testing.assert_array_equal(a.boxes["video"], b.boxes["video"])
    np.testing.assert_array_equal(a.flip["video"], b.flip["video"])
    assert not np.array_equal(a.boxes["video"], c.boxes["video"])
    assert a.boxes["video"].shape == (4, 50, 4) and a.flip["video"].shape == (4, 50)
    assert 0.3 < a.flip["video"].mean() < 0.7
    top, left, h, w = np.moveaxis(a.boxes["video"], -1, 0)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 12).all() and (left + w <= 12).all()
    assert (
        not draw_bank(AugmentParams(kind="views", modalities=("video",), flip=False), sizes, 50, 3).flip["video"].any()
    )


def test_epoch_crops_are_seeded_by_the_epoch():
    bank = draw_bank(AugmentParams(kind="views", modalities=("video",), views=5), {"video": (12, 12)}, 40, seed=0)
    views = BankViews(bank)
    np.testing.assert_array_equal(views.crops(7).view, views.crops(7).view)
    assert not np.array_equal(views.crops(7).view, views.crops(8).view)
    picked = views.crops(7)
    rows = np.arange(40)
    np.testing.assert_array_equal(picked.boxes["video"], bank.boxes["video"][picked.view, rows])
    fresh = aug.FreshCrops(AugmentParams(kind="online", modalities=("video",)), {"video": (12, 12)}, 40)
    np.testing.assert_array_equal(fresh.crops(7).boxes["video"], fresh.crops(7).boxes["video"])
    assert not np.array_equal(fresh.crops(7).boxes["video"], fresh.crops(8).boxes["video"])
    with pytest.raises(ValueError, match="per epoch"):
        fresh.crops(None)


# -- the view bank in the score cache -------------------------------------------------------------


def test_score_cache_holds_the_bank_and_one_teacher_output_per_view(toy_h5, tmp_path):
    views = aug_params({"kind": "views", "views": 3})
    none = aug_params({"kind": "none"})
    tdir = tmp_path / "teachers"
    train_teachers.run(views, "toy", 0, toy_h5, tdir, tmp_path / "resume")
    score.run(
        views,
        toy_h5,
        tdir,
        tmp_path / "views.h5",
        tmp_path / "tm.json",
        tmp_path / "c.png",
        augment=views.datasets["toy"].augment,
        seed=5,
    )
    score.run(none, toy_h5, tdir, tmp_path / "none.h5", tmp_path / "tm0.json", tmp_path / "c0.png")
    bank = read_view_bank(tmp_path / "views.h5")
    n = len(load_split(toy_h5, "train"))
    expected = draw_bank(views.datasets["toy"].augment, {"video": (12, 12)}, n, seed=5)
    np.testing.assert_array_equal(bank.boxes["video"], expected.boxes["video"])  # stored = redrawn from the seed
    np.testing.assert_array_equal(bank.flip["video"], expected.flip["video"])
    per_view = read_scores(tmp_path / "views.h5", TRAIN_VIEWS)
    assert set(per_view) == {"video"}  # audio is never cropped: its train outputs serve every view
    assert per_view["video"].features.shape[:2] == (3, n) and per_view["video"].confidence.shape == (3, n)
    assert json.loads((tmp_path / "tm.json").read_text())[TRAIN_VIEWS]["video"]["accuracy"] >= 0
    for split in ("train", "val", "test"):  # unaugmented splits: exactly what scoring without a bank writes
        a, b = read_scores(tmp_path / "views.h5", split), read_scores(tmp_path / "none.h5", split)
        assert all(
            np.array_equal(vars(a[m])[k], vars(b[m])[k]) for m in a for k in ("features", "logits", "confidence")
        )
    teacher = load_teachers(tdir, ["video"], CPU)["video"]
    train = load_split(toy_h5, "train")
    norm = Normalizer.fit(train, "classification")
    cropped = crop_resize(train.inputs["video"], bank.boxes["video"][2], bank.flip["video"][2])
    with torch.no_grad():
        features, _ = teacher(norm.inputs("video", cropped))
    np.testing.assert_allclose(per_view["video"].features[2], features.numpy(), rtol=1e-5, atol=1e-6)


def _hand_made_cache(n: int) -> tuple[ViewBank, dict[str, TeacherScores], dict[str, TeacherScores]]:
    """Three distinct views per row (whole frame, a corner blown up, the whole frame mirrored) and
    teacher outputs that say which view and row they belong to: confidence = 1000 (view + 1) + row."""
    boxes = np.stack([np.tile([0, 0, 12, 12], (n, 1)), np.tile([0, 0, 6, 6], (n, 1)), np.tile([0, 0, 12, 12], (n, 1))])
    flip = np.stack([np.zeros(n, bool), np.zeros(n, bool), np.ones(n, bool)])
    bank = ViewBank(boxes={"video": boxes.astype(np.int32)}, flip={"video": flip})
    code = 1000.0 * (np.arange(3)[:, None] + 1) + np.arange(n)[None, :]
    views = {
        "video": TeacherScores(
            features=np.repeat(code[..., None], 4, axis=2).astype(np.float32),
            logits=np.zeros((3, n, 3), np.float32),
            confidence=code.astype(np.float32),
        )
    }
    train = {
        m: TeacherScores(
            features=np.full((n, 4), -1, np.float32),
            logits=np.zeros((n, 3), np.float32),
            confidence=np.full(n, -1, np.float32),
        )
        for m in ("audio", "video")
    }
    return bank, train, views


@pytest.mark.parametrize("workers", [0, 1])
def test_a_clip_gets_the_teacher_outputs_of_exactly_the_view_it_was_given(toy_h5, workers):
    train = load_split(toy_h5, "train")
    n = len(train)
    bank, cache, per_view = _hand_made_cache(n)
    norm = Normalizer.fit(train, "classification")
    data = SplitTensors(
        train, norm, CPU, teacher=cache, augment=BankViews(bank), teacher_views=per_view, workers=workers
    )
    candidates = [
        norm.inputs("video", bank_crops(bank, np.full(n, v)).apply("video", train.inputs["video"])) for v in range(3)
    ]
    seen = set()
    for epoch in (1, 2, 3):
        for batch in data.batches(8, shuffle_seed=epoch):
            for j, row in enumerate(batch.index.tolist()):
                view = [v for v in range(3) if torch.equal(batch.inputs["video"][j], candidates[v][row])]
                assert len(view) == 1, "the input is one of the row's views, and only one"
                seen.add(view[0])
                assert batch.teacher.confidence["video"][j] == 1000 * (view[0] + 1) + row
                assert (batch.teacher.features["video"][j] == 1000 * (view[0] + 1) + row).all()
                assert batch.teacher.confidence["audio"][j] == -1  # audio: the train split's own outputs
    assert seen == {0, 1, 2}


def test_cached_views_and_online_teachers_on_the_same_views_train_alike(toy_h5, tmp_path):
    """The cache per view is exact: online teachers on the bank's views give the same training."""
    logs = {}
    for cache in (True, False):
        p = aug_params({"kind": "views", "views": 3}, teacher_cache=cache)
        logs[cache] = run_stages(p, toy_h5, tmp_path / str(cache))["log"]
    for a, b in zip(logs[True], logs[False]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["loss_logit_video"] == pytest.approx(b["loss_logit_video"], rel=1e-4)


def test_views_resume_exactly_after_an_interruption(toy_h5, tmp_path):
    p = aug_params({"kind": "views", "views": 3}, tau1=2, tau2=2)
    train_teachers.run(p, "toy", 0, toy_h5, tmp_path / "t", tmp_path / "resume")
    score.run(
        p,
        toy_h5,
        tmp_path / "t",
        tmp_path / "s.h5",
        tmp_path / "tm.json",
        tmp_path / "c.png",
        augment=p.datasets["toy"].augment,
    )
    train = load_split(toy_h5, "train")
    norm = Normalizer.fit(train, "classification")
    data = SplitTensors(
        train,
        norm,
        CPU,
        teacher=read_scores(tmp_path / "s.h5", "train"),
        augment=BankViews(read_view_bank(tmp_path / "s.h5")),
        teacher_views=read_scores(tmp_path / "s.h5", TRAIN_VIEWS),
    )
    val = SplitTensors(load_split(toy_h5, "val"), norm, CPU)
    args = (p, read_meta(toy_h5), ENCODERS, "g2d", 0, data, val, None, None)
    full_state, full = fit_student(*args, tmp_path / "r1", "fp")
    calls = {"n": 0}
    original = data.batches

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*a, **k)

    data.batches = dying
    with pytest.raises(KeyboardInterrupt):
        fit_student(*args, tmp_path / "r2", "fp")
    assert checkpoint.load(tmp_path / "r2" / "last.pt")["epoch"] == 2
    data.batches = original
    resumed_state, resumed = fit_student(*args, tmp_path / "r2", "fp")
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]
    for k, v in full_state["state_dict"].items():
        assert torch.equal(v, resumed_state["state_dict"][k]), k


# -- online mode, validation and test splits ---------------------------------------------------


class TeacherInputs:
    """Every input a teacher's forward pass gets, by a global forward hook."""

    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []

    def __call__(self, module: torch.nn.Module, args: tuple, output: object) -> None:
        if isinstance(module, UnimodalModel):
            self.inputs.append(args[0].detach().clone())


def test_online_mode_runs_the_teachers_on_each_batchs_augmented_frames(toy_h5, tmp_path, monkeypatch):
    p = aug_params({"kind": "online", "scale": [0.1, 0.5]}, teacher_cache=False)  # never the whole frame
    train_teachers.run(p, "toy", 0, toy_h5, tmp_path / "t", tmp_path / "resume")
    score.run(
        p,
        toy_h5,
        tmp_path / "t",
        tmp_path / "s.h5",
        tmp_path / "tm.json",
        tmp_path / "c.png",
        augment=p.datasets["toy"].augment,
    )
    assert read_view_bank(tmp_path / "s.h5") is None
    batches = []
    original = ts.online_teacher_batch

    def recording(teachers, batch, task, precision):
        batches.append(batch)
        return original(teachers, batch, task, precision)

    monkeypatch.setattr(ts, "online_teacher_batch", recording)
    hook = TeacherInputs()
    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        train_student.run(
            p,
            "toy",
            "g2d",
            0,
            toy_h5,
            tmp_path / "s.h5",
            tmp_path / "t",
            tmp_path / "st.pt",
            tmp_path / "l.json",
            tmp_path / "resume",
        )
    finally:
        handle.remove()
    n = len(load_split(toy_h5, "train"))
    assert sum(len(b.index) for b in batches) == 2 * n  # one online teacher pass per batch, 2 epochs
    assert len(hook.inputs) == 2 * len(batches)  # audio and video teacher on each
    train = load_split(toy_h5, "train")
    norm = Normalizer.fit(train, "classification")
    stored = norm.inputs("video", train.inputs["video"])
    video_inputs = [x for x in hook.inputs if x.dim() == 5]
    for batch, seen in zip(batches, video_inputs):
        assert torch.equal(seen, batch.inputs["video"])  # the teacher saw what the student saw ...
        for j, row in enumerate(batch.index.tolist()):
            assert not torch.equal(seen[j], stored[row])  # ... and it was cropped


@pytest.mark.parametrize("kind", ["views", "online"])
def test_validation_and_test_frames_are_never_augmented(toy_h5, tmp_path, monkeypatch, kind):
    """Every cropped row is a training row: the count is exactly what training (and the bank) needs."""
    cropped = []
    original = aug.crop_resize
    monkeypatch.setattr(aug, "crop_resize", lambda s, b, f: cropped.append(len(s)) or original(s, b, f))
    p = aug_params({"kind": kind, "views": 3}, teacher_cache=kind == "views")
    out = run_stages(p, toy_h5, tmp_path)
    n = len(load_split(toy_h5, "train"))
    teacher_rows = 2 * 2 * n  # 2 teachers x 2 epochs: each teacher's batches crop the video of every row
    bank_rows = 3 * n if kind == "views" else 0  # the score stage, once per view
    student_rows = 2 * n  # 2 epochs
    assert sum(cropped) == teacher_rows + bank_rows + student_rows
    assert out["metrics"]["test"]["fused"]["accuracy"] >= 0


def h5_contents(path: Path) -> dict:
    """Every dataset's bytes and every attribute of an HDF5 file, but the run folder it names."""
    out = {}
    with h5py.File(path) as h5:
        out["/"] = {k: v for k, v in h5.attrs.items() if k != "teachers_dir"}
        h5.visititems(
            lambda name, node: out.__setitem__(
                name,
                (node[()].tobytes(), str(node.dtype), node.shape, dict(node.attrs))
                if isinstance(node, h5py.Dataset)
                else dict(node.attrs),
            )
        )
    return out


def test_augment_none_changes_nothing(toy_h5, tmp_path):
    """`kind: none` (whatever its other keys say) gives the same files and training as no section."""
    runs = {}
    for name, section in (("absent", None), ("none", {"kind": "none", "views": 2, "scale": [0.3, 0.4], "flip": False})):
        out = tmp_path / name
        runs[name] = run_stages(aug_params(section), toy_h5, out)
        runs[name]["scores"] = h5_contents(out / "scores.h5")
        runs[name]["state"] = checkpoint.load(out / "s.pt")["state_dict"]
        runs[name]["teacher"] = checkpoint.load(out / "teachers" / "video.pt")["state_dict"]
    a, b = runs["absent"], runs["none"]
    assert a["scores"] == b["scores"] and a["log"] == b["log"] and a["metrics"] == b["metrics"]
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
    assert all(torch.equal(a["teacher"][k], b["teacher"][k]) for k in a["teacher"])
    with h5py.File(tmp_path / "none" / "scores.h5") as h5:
        assert set(h5) == {"train", "val", "test"}
    assert fresh_crops(aug_params(None).datasets["toy"].augment, load_split(toy_h5, "train")) is None


def test_default_modalities_are_the_sources_frames():
    assert aug_params({"kind": "views"}).datasets["toy"].augment.modalities == ("video",)
    assert aug_params(None).datasets["toy"].augment == AugmentParams(modalities=("video",))
    assert FixedView(
        draw_bank(AugmentParams(kind="views", modalities=("video",), views=2), {"video": (4, 4)}, 3, 0), 1
    ).crops(None).view.tolist() == [1, 1, 1]


def test_single_images_are_cropped_like_frame_stacks():
    """An image modality (C, H, W), float as AV-MNIST's, goes through the same crops; audio is untouched."""
    from g2d.config.params import resolve_augment
    from g2d.datasets import avmnist
    from g2d.io.dataset_file import SplitData

    spec = resolve_augment(
        AugmentParams(kind="online", scale=(0.1, 0.5)), avmnist, avmnist.IMAGE_MODALITIES, "datasets.av.augment"
    )
    assert spec.modalities == ("image",)
    rng = np.random.default_rng(0)
    split = SplitData(
        inputs={
            "audio": rng.normal(size=(10, 1, 8, 8)).astype(np.float32),
            "image": rng.random((10, 1, 28, 28)).astype(np.float32),
        },
        labels=np.arange(10) % 3,
        ids=[str(i) for i in range(10)],
    )
    norm = Normalizer.fit(split, "classification")
    data = SplitTensors(split, norm, CPU, augment=fresh_crops(spec, split))
    batch = next(data.batches(10, shuffle_seed=1))
    rows = batch.index.numpy()
    assert batch.inputs["image"].shape == (10, 1, 28, 28)
    assert torch.equal(batch.inputs["audio"], norm.inputs("audio", split.inputs["audio"][rows]))
    assert not torch.equal(batch.inputs["image"], norm.inputs("image", split.inputs["image"][rows]))
