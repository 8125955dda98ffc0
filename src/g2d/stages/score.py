"""Stage score: run each frozen teacher once over every split and cache what the student needs.

The cache holds, per split and modality, the teacher's features, logits and per-sample confidence
(Eq. 5 before the batch mean), so student training runs no teacher forward pass. It also writes the
teachers' own metrics and the plot of teacher confidence over training epochs (paper, Figure 3).

With `augment.kind: views` the stage also draws the view bank (K crops per training clip, seeded by
the run's seed) and runs the teachers of the augmented modalities once per view: the cache gains
the bank and a `train_views` section, so students train on augmented input from the cache too.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from g2d.config.params import AugmentParams, Params
from g2d.io.atomic import read_json, write_json
from g2d.io.dataset_file import SPLITS, SplitReader, read_meta
from g2d.io.score_cache import TRAIN_VIEWS, TeacherScores, ViewBank, write_scores
from g2d.methods.confidence import sample_confidence, sample_sq_error
from g2d.models.student import UnimodalModel
from g2d.plots import plot_teacher_confidence
from g2d.training.augment import FixedView, draw_bank, frame_sizes
from g2d.training.data import Normalizer, SplitTensors, open_splits, resolve_workers
from g2d.training.metrics import task_summary
from g2d.training.optim import resolve_device
from g2d.training.precision import Precision
from g2d.training.predict import predict_unimodal
from g2d.training.teacher import load_teachers

Scored = tuple[dict[str, TeacherScores], dict[str, dict]]


def run(
    params: Params,
    data_path: Path,
    teachers_dir: Path,
    out_path: Path,
    metrics_path: Path,
    plot_path: Path,
    augment: AugmentParams | None = None,
    seed: int = 0,
) -> None:
    """Score every split; with `augment.kind: views`, also the bank of views drawn from `seed`."""
    augment = augment or AugmentParams()
    meta = read_meta(data_path)
    device = resolve_device(params.device)
    teachers = load_teachers(teachers_dir, list(meta.modalities), device)
    precision = Precision(params.precision, device)
    workers = resolve_workers(params.data)
    norm = Normalizer.fit(open_splits(params.data, data_path, ("train",))["train"], meta.task, meta.tokens)
    scores: dict[str, dict[str, TeacherScores]] = {}
    metrics: dict[str, dict] = {}
    splits = {}
    for split in SPLITS:
        splits[split] = open_splits(params.data, data_path, (split,))[split]
        data = SplitTensors(splits[split], norm, device, workers=workers)
        scores[split], metrics[split] = score_split(teachers, data, meta.task, params.eval_batch_size, precision)
    bank = None
    if augment.kind == "views":
        train = splits["train"]
        bank = draw_bank(
            augment,
            frame_sizes(augment, {m: train.sample_shape(m) for m in augment.modalities or ()}),
            len(train),
            seed,
        )
        scores[TRAIN_VIEWS], metrics[TRAIN_VIEWS] = score_views(
            {m: teachers[m] for m in bank.modalities}, train, bank, norm, meta.task, params, precision, workers
        )
    write_scores(
        out_path,
        scores,
        {"dataset": meta.dataset, "modalities": list(meta.modalities), "teachers_dir": str(teachers_dir)},
        bank,
        {"augment": dataclasses.asdict(augment), "seed": seed},
    )
    write_json(metrics_path, metrics)
    logs = {m: read_json(teachers_dir / f"{m}.log.json") for m in meta.modalities}
    plot_teacher_confidence(logs, plot_path, title=f"{meta.dataset}: teacher confidence during training")


def score_split(
    teachers: Mapping[str, UnimodalModel], data: SplitTensors, task: str, batch_size: int, precision: Precision
) -> Scored:
    """Each teacher's outputs on every row of `data` (as its crops, if any, make them) and its metrics; the
    forward passes at `precision`, what the cache holds in float32."""
    scores, metrics = {}, {}
    for m, model in teachers.items():
        feats, logits = predict_unimodal(model, data, m, batch_size, precision)
        t_logits = torch.from_numpy(logits)
        conf = sample_confidence(t_logits, data.target, task).numpy()
        sq = sample_sq_error(t_logits, data.target).numpy() if task == "regression" else None
        scores[m] = TeacherScores(features=feats, logits=logits, confidence=conf, sq_error=sq)
        metrics[m] = {**task_summary(task, logits, data.split.labels, data.norm), "confidence": float(np.mean(conf))}
    return scores, metrics


def score_views(
    teachers: Mapping[str, UnimodalModel],
    train: SplitReader,
    bank: ViewBank,
    norm: Normalizer,
    task: str,
    params: Params,
    precision: Precision,
    workers: int,
) -> Scored:
    """The teachers' outputs on every view of the bank, stacked (K, N, ...); metrics over all K x N."""
    per_view = []
    for view in tqdm(range(bank.views), desc="score: bank views", unit="view", file=sys.stderr):
        data = SplitTensors(train, norm, precision.device, workers=workers, augment=FixedView(bank, view))
        per_view.append(score_split(teachers, data, task, params.eval_batch_size, precision)[0])
    stacked = {
        m: TeacherScores(
            **{  # type: ignore[arg-type]  # optional fields stay None
                f.name: None
                if getattr(per_view[0][m], f.name) is None
                else np.stack([getattr(s[m], f.name) for s in per_view])
                for f in dataclasses.fields(TeacherScores)
            }
        )
        for m in teachers
    }
    labels = np.tile(train.labels, bank.views)
    metrics = {
        m: {
            **task_summary(task, s.logits.reshape(-1, s.logits.shape[-1]), labels, norm),
            "confidence": float(np.mean(s.confidence)),
        }
        for m, s in stacked.items()
    }
    return stacked, metrics
