"""Stage train_student: one method (joint, g2d, ...) on one dataset and seed."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from g2d.config.params import Params
from g2d.io.atomic import write_json
from g2d.io.hdf5 import read_meta, read_scores
from g2d.methods import get_method
from g2d.methods.confidence import cached_confidence
from g2d.pipeline import FUSION_SECTIONS
from g2d.training import checkpoint
from g2d.training.data import Normalizer, SplitTensors, open_splits
from g2d.training.engine import finish
from g2d.training.optim import resolve_device
from g2d.training.student import train_student
from g2d.training.teacher import load_teachers


def student_settings(params: Params, dataset: str, method: str, k: int) -> dict:
    """The params a student run depends on (its resume fingerprint), the method's and fusions' sections included."""
    section = get_method(method).section
    options = {"options": asdict(getattr(params, section))} if section else {}
    fusion_knobs = {name: asdict(getattr(params, name)) for name in FUSION_SECTIONS}
    return {"method": method, **options, "taus": params.taus(k), "alpha": params.alpha, "beta": params.beta,
            "temperature": params.temperature, "fusion": params.fusion, **fusion_knobs,
            "optimizer": params.optimizer, "init": params.init,
            "lr": params.lr, "momentum": params.momentum, "weight_decay": params.weight_decay,
            "scheduler": asdict(params.scheduler), "batch_size": params.batch_size, "smp": asdict(params.smp),
            "teacher_cache": params.teacher_cache, "encoders": params.datasets[dataset].encoders,
            "device": params.device}


def run(params: Params, dataset: str, method: str, seed: int, data_path: Path, scores_path: Path,
        teachers_dir: Path, student_path: Path, log_path: Path, resume_root: Path) -> None:
    meta = read_meta(data_path)
    device = resolve_device(params.device)
    splits = open_splits(params.data, data_path, ("train", "val"))
    norm = Normalizer.fit(splits["train"], meta.task)
    uses_teachers = get_method(method).uses_teachers
    cached = uses_teachers and params.teacher_cache
    train_scores = read_scores(scores_path, "train")
    workers = params.data.workers
    train = SplitTensors(splits["train"], norm, device, teacher=train_scores if cached else None, workers=workers)
    val = SplitTensors(splits["val"], norm, device, workers=workers)
    teachers = load_teachers(teachers_dir, list(meta.modalities), device) if uses_teachers and not cached else None
    train_conf = {m: cached_confidence(s.confidence, s.sq_error, meta.task) for m, s in train_scores.items()}
    settings = {**student_settings(params, dataset, method, len(meta.modalities)), "seed": seed}
    inputs = [data_path, scores_path] + ([teachers_dir / f"{m}.pt" for m in meta.modalities] if teachers else [])
    resume_dir = resume_root / method
    state, result = train_student(params, meta, params.datasets[dataset].encoders, method, seed, train, val,
                                  teachers, train_conf, resume_dir, checkpoint.fingerprint(settings, inputs))
    checkpoint.save(student_path, state)
    write_json(log_path, result.history)
    finish(resume_dir)
