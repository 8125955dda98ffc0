"""Stage score: run each frozen teacher once over every split and cache what the student needs.

The cache holds, per split and modality, the teacher's features, logits and per-sample confidence
(Eq. 5 before the batch mean), so student training runs no teacher forward pass. It also writes the
teachers' own metrics and the plot of teacher confidence over training epochs (paper, Figure 3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from g2d.config.params import Params
from g2d.io.atomic import read_json, write_json
from g2d.io.hdf5 import SPLITS, TeacherScores, read_meta, write_scores
from g2d.methods.confidence import sample_confidence, sample_sq_error
from g2d.plots import plot_teacher_confidence
from g2d.training.data import Normalizer, SplitTensors, open_splits
from g2d.training.metrics import task_summary
from g2d.training.optim import resolve_device
from g2d.training.predict import predict_unimodal
from g2d.training.teacher import load_teachers


def run(params: Params, data_path: Path, teachers_dir: Path, out_path: Path, metrics_path: Path,
        plot_path: Path) -> None:
    meta = read_meta(data_path)
    device = resolve_device(params.device)
    teachers = load_teachers(teachers_dir, list(meta.modalities), device)
    norm = Normalizer.fit(open_splits(params.data, data_path, ("train",))["train"], meta.task)
    scores: dict[str, dict[str, TeacherScores]] = {}
    metrics: dict[str, dict] = {}
    for split in SPLITS:
        data = SplitTensors(open_splits(params.data, data_path, (split,))[split], norm, device,
                            workers=params.data.workers)
        scores[split], metrics[split] = {}, {}
        for m, model in teachers.items():
            feats, logits = predict_unimodal(model, data, m, params.eval_batch_size)
            target = data.target
            t_logits = torch.from_numpy(logits)
            conf = sample_confidence(t_logits, target, meta.task).numpy()
            sq = sample_sq_error(t_logits, target).numpy() if meta.task == "regression" else None
            scores[split][m] = TeacherScores(features=feats, logits=logits, confidence=conf, sq_error=sq)
            summary = task_summary(meta.task, logits, data.split.labels, norm)
            metrics[split][m] = {**summary, "confidence": float(np.mean(conf))}
    write_scores(out_path, scores, {"dataset": meta.dataset, "modalities": list(meta.modalities),
                                    "teachers_dir": str(teachers_dir)})
    write_json(metrics_path, metrics)
    logs = {m: read_json(teachers_dir / f"{m}.log.json") for m in meta.modalities}
    plot_teacher_confidence(logs, plot_path, title=f"{meta.dataset}: teacher confidence during training")
