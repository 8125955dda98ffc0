"""Stage train_student: one method (joint, g2d, ...) on one dataset and seed.

Training clips are augmented as `datasets.<name>.augment` says: with `views`, each clip gets one of
its bank views per epoch and, with the teacher cache, the teachers' cached outputs on that view;
with `online`, a fresh crop per epoch and the teachers run on it (validation prevents the cache).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from g2d.config.params import Params
from g2d.errors import RunError
from g2d.io.atomic import write_json
from g2d.io.dataset_file import SplitReader, read_meta, restrict
from g2d.io.score_cache import TRAIN_VIEWS, read_scores, read_view_bank
from g2d.methods import method_entry
from g2d.methods.confidence import cached_confidence
from g2d.models import fusion_sections
from g2d.training import checkpoint, distributed
from g2d.training.augment import BankViews, CropSource, fresh_crops
from g2d.training.data import Normalizer, SplitTensors, open_splits, resolve_workers
from g2d.training.engine import finish
from g2d.training.optim import optimisation_settings, resolve_device
from g2d.training.student import train_student
from g2d.training.teacher import load_teachers


def student_settings(params: Params, dataset: str, method: str, k: int) -> dict:
    """The params a student run depends on (its resume fingerprint), the method's and fusions' sections included."""
    options = params.method_options(method)
    extra = {"options": asdict(options)} if options is not None else {}
    augment = params.datasets[dataset].augment
    if augment.active:
        extra["augment"] = asdict(augment)
    fusion_knobs = {name: asdict(params.section(name)) for name in fusion_sections()}
    return {
        "method": method,
        "modalities": list(params.student_modalities(dataset)),
        **extra,
        "taus": params.taus(k),
        "alpha": params.alpha,
        "beta": params.beta,
        "temperature": params.temperature,
        "fusion": params.fusion,
        **fusion_knobs,
        **optimisation_settings(params),
        "smp": asdict(params.smp),
        "teacher_cache": params.teacher_cache,
        "encoders": params.datasets[dataset].encoders,
    }


def train_crops(params: Params, dataset: str, train: SplitReader, scores_path: Path) -> CropSource | None:
    """The student's crops: the bank stored in the score cache (views), fresh ones (online), or none."""
    augment = params.datasets[dataset].augment
    if augment.kind != "views":
        return fresh_crops(augment, train)
    bank = read_view_bank(scores_path)
    if bank is None or bank.rows != len(train) or set(bank.modalities) != set(augment.modalities or ()):
        raise RunError(
            f"{scores_path}: its view bank does not match datasets.{dataset}.augment and the training "
            "split; rerun the score stage"
        )
    return BankViews(bank)


def run(
    params: Params,
    dataset: str,
    method: str,
    seed: int,
    data_path: Path,
    scores_path: Path,
    teachers_dir: Path,
    student_path: Path,
    log_path: Path,
    resume_root: Path,
) -> None:
    meta = restrict(read_meta(data_path), params.student_modalities(dataset))
    device = resolve_device(params.device)
    splits = open_splits(params.data, data_path, ("train", "val"), meta.modalities)
    norm = Normalizer.fit(splits["train"], meta.task, meta.tokens)
    entry = method_entry(method)
    uses_teachers = entry.teachers
    cached = uses_teachers and params.teacher_cache
    train_scores = {m: s for m, s in read_scores(scores_path, "train").items() if m in meta.modalities}
    workers = resolve_workers(params.data, params.distributed.processes)
    crops = train_crops(params, dataset, splits["train"], scores_path)
    views = read_scores(scores_path, TRAIN_VIEWS) if cached and isinstance(crops, BankViews) else None
    train = SplitTensors(
        splits["train"],
        norm,
        device,
        teacher=train_scores if cached else None,
        workers=workers,
        augment=crops,
        teacher_views=views,
    )
    val = SplitTensors(splits["val"], norm, device, workers=workers)
    online = uses_teachers and not cached
    loaded = load_teachers(teachers_dir, list(meta.modalities), device) if online or entry.teacher_weights else None
    teachers = loaded if online else None
    train_conf = {m: cached_confidence(s.confidence, s.sq_error, meta.task) for m, s in train_scores.items()}
    settings = {**student_settings(params, dataset, method, len(meta.modalities)), "seed": seed}
    inputs = [data_path, scores_path] + ([teachers_dir / f"{m}.pt" for m in meta.modalities] if loaded else [])
    resume_dir = resume_root / method
    state, result = train_student(
        params,
        meta,
        params.datasets[dataset].encoders,
        method,
        seed,
        train,
        val,
        teachers,
        train_conf,
        resume_dir,
        checkpoint.fingerprint(settings, inputs),
        teacher_models=loaded if entry.teacher_weights else None,
    )
    if distributed.is_main():
        checkpoint.save(student_path, state)
        write_json(log_path, result.history)
    finish(resume_dir)
