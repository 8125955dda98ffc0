"""Teachers, scoring, students and evaluation in-process on a small dataset file.

Covers: exact resume after an interruption, the teacher cache against online teachers, SMP's
gradient gating inside real training (the suppressed encoder stays put under `freeze`), and the
evaluation's outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import g2d.training.student as ts
from g2d.io.dataset_file import load_split, read_meta
from g2d.io.score_cache import read_scores
from g2d.stages import evaluate, score, train_student, train_teachers
from g2d.training import checkpoint
from g2d.training.data import Normalizer, SplitTensors
from g2d.training.student import train_student as fit_student

from conftest import toy_params, write_toy_dataset


@pytest.fixture
def teachers(tmp_path: Path, toy_h5: Path):
    params = toy_params()
    tdir = tmp_path / "teachers"
    train_teachers.run(params, "toy", 0, toy_h5, tdir, tmp_path / "resume")
    scores = tmp_path / "scores.h5"
    score.run(params, toy_h5, tdir, scores, tmp_path / "teacher_metrics.json", tmp_path / "conf.png")
    return params, tdir, scores


def test_teacher_stage_outputs(teachers, tmp_path):
    params, tdir, scores = teachers
    for m in ("audio", "video"):
        state = checkpoint.load(tdir / f"{m}.pt")
        assert state["modality"] == m and 1 <= state["best_epoch"] <= 3
        log = json.loads((tdir / f"{m}.log.json").read_text())
        assert [r["epoch"] for r in log] == [1, 2, 3]
        assert {"train_acc", "val_acc", "train_confidence", "val_confidence"} <= set(log[0])
    cache = read_scores(scores, "test")
    assert cache["audio"].features.shape[0] == 12 and cache["audio"].logits.shape == (12, 3)
    assert ((cache["video"].confidence > 0) & (cache["video"].confidence < 1)).all()
    assert (tmp_path / "conf.png").stat().st_size > 1000
    assert not (tmp_path / "resume").exists() or not any((tmp_path / "resume").iterdir())


def _student_inputs(params, h5, scores, cached=True):
    meta = read_meta(h5)
    tr, va = load_split(h5, "train"), load_split(h5, "val")
    norm = Normalizer.fit(tr, meta.task)
    train = SplitTensors(tr, norm, torch.device("cpu"), teacher=read_scores(scores, "train") if cached else None)
    return meta, train, SplitTensors(va, norm, torch.device("cpu"))


def test_resume_after_interruption_matches_uninterrupted_run(teachers, tmp_path):
    params, tdir, scores = teachers
    h5 = tmp_path / "toy.h5"
    meta, train, val = _student_inputs(params, h5, scores)
    args = (
        params,
        meta,
        {"audio": "small_cnn", "video": "small_cnn"},
        "g2d",
        0,
        train,
        val,
        None,
        {"audio": 0.5, "video": 0.4},
    )
    full_state, full = fit_student(*args, tmp_path / "r1", "fp")

    calls = {"n": 0}
    original = train.batches

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*a, **k)

    train.batches = dying
    with pytest.raises(KeyboardInterrupt):
        fit_student(*args, tmp_path / "r2", "fp")
    assert checkpoint.load(tmp_path / "r2" / "last.pt")["epoch"] == 2
    train.batches = original
    resumed_state, resumed = fit_student(*args, tmp_path / "r2", "fp")
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[-1]["loss"] == pytest.approx(full.history[-1]["loss"], rel=1e-5)
    for k, v in full_state["state_dict"].items():
        assert torch.allclose(v.float(), resumed_state["state_dict"][k].float(), atol=1e-6), k


def test_resume_state_of_other_settings_is_ignored(teachers, tmp_path):
    params, tdir, scores = teachers
    meta, train, val = _student_inputs(params, tmp_path / "toy.h5", scores)
    args = (params, meta, {"audio": "small_cnn", "video": "small_cnn"}, "joint", 0, train, val, None, None)
    fit_student(*args, tmp_path / "r", "fingerprint-A")
    _, result = fit_student(*args, tmp_path / "r", "fingerprint-B")
    assert len(result.history) == 4  # trained from scratch, not "resumed" at the end


def test_cached_and_online_teachers_give_the_same_training(teachers, tmp_path):
    params, tdir, scores = teachers
    h5 = tmp_path / "toy.h5"
    out = {}
    for cache in (True, False):
        p = toy_params(teacher_cache=cache)
        train_student.run(
            p,
            "toy",
            "g2d",
            0,
            h5,
            scores,
            tdir,
            tmp_path / f"s{cache}.pt",
            tmp_path / f"l{cache}.json",
            tmp_path / f"resume{cache}",
        )
        out[cache] = json.loads((tmp_path / f"l{cache}.json").read_text())
    for a, b in zip(out[True], out[False]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["kappa_audio"] == b["kappa_audio"]


def test_freeze_keeps_suppressed_encoder_fixed_during_phase_one(teachers, tmp_path, monkeypatch):
    params, tdir, scores = teachers
    p = toy_params(smp={"ranking": "global", "suppression": "freeze"}, tau1=2, tau2=0)
    meta, train, val = _student_inputs(p, tmp_path / "toy.h5", scores)
    conf = {"audio": 0.9, "video": 0.2}  # video least confident: only video's encoder trains
    built = {}

    initialise = ts.initialise

    def recording(model, scheme):
        """Initialise the student as training does, then remember its initial encoder weights."""
        initialise(model, scheme)
        built["model"] = model
        built["init"] = {m: [q.detach().clone() for q in model.encoders[m].parameters()] for m in ("audio", "video")}
        return model

    monkeypatch.setattr(ts, "initialise", recording)
    fit_student(
        p, meta, {"audio": "small_cnn", "video": "small_cnn"}, "g2d", 0, train, val, None, conf, tmp_path / "rf", "x"
    )
    model, init = built["model"], built["init"]
    assert all(torch.equal(a, b) for a, b in zip(model.encoders["audio"].parameters(), init["audio"]))
    assert any(not torch.equal(a, b) for a, b in zip(model.encoders["video"].parameters(), init["video"]))


def test_evaluate_reports_metrics_ratio_and_alignment(teachers, tmp_path):
    params, tdir, scores = teachers
    h5 = tmp_path / "toy.h5"
    train_student.run(
        params, "toy", "joint", 0, h5, scores, tdir, tmp_path / "s.pt", tmp_path / "l.json", tmp_path / "resume"
    )
    result = evaluate.run(params, h5, scores, tmp_path / "s.pt", tmp_path / "metrics.json")
    assert set(result["test"]) == {"fused", "audio", "video"}
    assert 0 <= result["test"]["fused"]["accuracy"] <= 1 and "macro_f1" in result["test"]["video"]
    assert result["least_confident_teacher"] in ("audio", "video")
    assert set(result["confidence_ratio"]) == {"audio", "video"}
    assert all(-1 <= v <= 1 for v in result["feature_alignment"].values())
    assert json.loads((tmp_path / "metrics.json").read_text()) == result


def test_regression_end_to_end(tmp_path):
    h5 = write_toy_dataset(tmp_path / "reg.h5", task="regression")
    params = toy_params()
    tdir, scores = tmp_path / "t", tmp_path / "scores.h5"
    train_teachers.run(params, "toy", 0, h5, tdir, tmp_path / "resume")
    score.run(params, h5, tdir, scores, tmp_path / "tm.json", tmp_path / "c.png")
    assert read_scores(scores, "train")["audio"].sq_error is not None
    train_student.run(
        params, "toy", "g2d", 0, h5, scores, tdir, tmp_path / "s.pt", tmp_path / "l.json", tmp_path / "resume"
    )
    result = evaluate.run(params, h5, scores, tmp_path / "s.pt", tmp_path / "m.json")
    assert {"mape", "r2", "rmse", "mae"} == set(result["test"]["fused"])
    log = json.loads((tmp_path / "l.json").read_text())
    assert "val_mse" in log[0] and "loss_logit_audio" in log[0]


def test_same_seed_same_metrics_exactly_in_memory_and_streamed(teachers, tmp_path):
    """Twice with the same seed and params gives the same metrics to the last bit on CPU, and so does
    streaming the file through a DataLoader worker instead of holding it in memory."""
    _, tdir, scores = teachers
    h5 = tmp_path / "toy.h5"
    held = toy_params(tau1=1, tau2=1)
    streamed = toy_params(tau1=1, tau2=1, data={"loading": "stream", "workers": 1})
    score.run(streamed, h5, tdir, tmp_path / "scores_s.h5", tmp_path / "tm_s.json", tmp_path / "conf_s.png")
    assert json.loads((tmp_path / "teacher_metrics.json").read_text()) == json.loads(
        (tmp_path / "tm_s.json").read_text()
    )
    for split in ("train", "test"):
        a, b = read_scores(scores, split), read_scores(tmp_path / "scores_s.h5", split)
        assert all((vars(a[m])[k] == vars(b[m])[k]).all() for m in a for k in ("features", "logits", "confidence"))
    runs = {}
    for name, p in (("first", held), ("again", held), ("streamed", streamed)):
        out = tmp_path / name
        train_student.run(p, "toy", "g2d", 0, h5, scores, tdir, out / "s.pt", out / "log.json", out / "resume")
        runs[name] = (
            json.loads((out / "log.json").read_text()),
            evaluate.run(p, h5, scores, out / "s.pt", out / "m.json"),
        )
    assert runs["first"] == runs["again"] == runs["streamed"]
