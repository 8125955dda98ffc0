"""Stage train_teachers: one unimodal teacher per modality, chosen on validation, with per-epoch logs.

With `augment` on (kind views or online), teachers train on a fresh crop of every training clip
each epoch, as the reference's teachers do; the view bank is only for the students' distillation.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from g2d.config.params import Params
from g2d.io.atomic import write_json
from g2d.io.atomic_dir import atomic_dir
from g2d.io.dataset_file import read_meta
from g2d.training import checkpoint, distributed
from g2d.training.augment import fresh_crops
from g2d.training.data import Normalizer, SplitTensors, open_splits, resolve_workers
from g2d.training.engine import finish
from g2d.training.optim import optimisation_settings, resolve_device
from g2d.training.teacher import teacher_path, train_teacher


def teacher_settings(params: Params, dataset: str) -> dict:
    """The params a teacher depends on (its resume fingerprint)."""
    return {
        "encoders": params.datasets[dataset].encoders,
        "teacher": asdict(params.teacher),
        **optimisation_settings(params),
        **augment_settings(params, dataset),
    }


def augment_settings(params: Params, dataset: str) -> dict:
    """What the teachers' fresh crops depend on (nothing when augmentation is off)."""
    augment = params.datasets[dataset].augment
    return {"augment": augment.crop_settings()} if augment.active else {}


def run(params: Params, dataset: str, seed: int, data_path: Path, out_dir: Path, resume_root: Path) -> None:
    meta = read_meta(data_path)
    device = resolve_device(params.device)
    splits = open_splits(params.data, data_path, ("train", "val"))
    norm = Normalizer.fit(splits["train"], meta.task, meta.tokens)
    workers = resolve_workers(params.data, params.distributed.processes)
    train = SplitTensors(
        splits["train"],
        norm,
        device,
        workers=workers,
        augment=fresh_crops(params.datasets[dataset].augment, splits["train"]),
    )
    val = SplitTensors(splits["val"], norm, device, workers=workers)
    encoders = params.datasets[dataset].encoders
    settings = {**teacher_settings(params, dataset), "seed": seed}
    results = {}
    for modality in meta.modalities:
        resume_dir = resume_root / f"teacher_{modality}"
        fp = checkpoint.fingerprint({**settings, "modality": modality}, [data_path])
        results[modality] = train_teacher(params, meta, modality, encoders[modality], seed, train, val, resume_dir, fp)
    if distributed.is_main():
        with atomic_dir(out_dir) as tmp:
            for modality, (state, result) in results.items():
                checkpoint.save(teacher_path(tmp, modality), state)
                write_json(tmp / f"{modality}.log.json", result.history)
    for modality in meta.modalities:
        finish(resume_root / f"teacher_{modality}")
