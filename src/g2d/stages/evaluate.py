"""Stage evaluate: the validation-chosen student on the test split, once.

Reports fused and per-modality accuracy and macro-F1 (regression: MAPE and R^2), the confidence
ratio of each modality against its teacher (paper, Figure 6; the report picks which modality's
ratio to show, see g2d.stages.report.weak_modality), the modality whose teacher is least confident
on the train split (SMP's first choice), the cosine alignment of student and teacher features
(paper, Figure 5), the modality gap between the students' per-modality features (Figure 4,
g2d.training.gap), and each encoder's linear-probe metrics (g2d.training.probe: the encoder alone,
whatever split of class offsets the late-fusion heads drifted into). The test split is never used
to choose anything: probes are fitted on train with their L2 weight chosen on validation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from g2d.config.params import Params
from g2d.io.atomic import write_json
from g2d.io.dataset_file import read_meta, restrict
from g2d.io.score_cache import read_scores
from g2d.methods.confidence import batch_confidence, cached_confidence, sample_confidence, sample_sq_error
from g2d.training import checkpoint
from g2d.training.data import Normalizer, SplitTensors, open_splits, resolve_workers
from g2d.training.gap import modality_gap, projection
from g2d.training.metrics import task_summary
from g2d.training.optim import resolve_device
from g2d.training.precision import Precision
from g2d.training.predict import predict_student
from g2d.training.probe import fit_probe
from g2d.training.student import build_student


def split_confidence(logits: np.ndarray, target: torch.Tensor, task: str) -> float:
    """rho over a whole split (Eq. 5 with the split as the batch)."""
    t = torch.from_numpy(logits)
    sq = sample_sq_error(t, target) if task == "regression" else None
    return batch_confidence(sample_confidence(t, target, task), sq, task)


def cosine_alignment(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over samples of the cosine similarity between two feature matrices."""
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12
    return float(np.mean(num / den))


def run(
    params: Params, data_path: Path, scores_path: Path, student_path: Path, out_path: Path, gap_path: Path | None = None
) -> dict:
    """Test metrics to `out_path`; the modality gap's 2-D projection (Figure 4) to `gap_path` if given."""
    device = resolve_device(params.device)
    state = checkpoint.load(student_path, device)
    meta = restrict(read_meta(data_path), state["modalities"])  # the modalities this student was trained on
    model = build_student(state, device)
    norm = Normalizer.from_dict(state["normalizer"])
    workers, precision = resolve_workers(params.data), Precision(params.precision, device)
    data = {
        split: SplitTensors(s, norm, device, workers=workers)
        for split, s in open_splits(params.data, data_path, ("train", "val", "test"), meta.modalities).items()
    }
    preds = {split: predict_student(model, d, params.eval_batch_size, precision) for split, d in data.items()}
    test, pred = data["test"], preds["test"]
    labels = test.split.labels
    target = test.target.cpu()
    teacher_test = read_scores(scores_path, "test")
    teacher_train = read_scores(scores_path, "train")
    teacher_rho = {
        m: cached_confidence(teacher_train[m].confidence, teacher_train[m].sq_error, meta.task) for m in meta.modalities
    }
    least_confident = min(meta.modalities, key=lambda m: teacher_rho[m])
    result: dict = {
        "method": state["method"],
        "seed": state["seed"],
        "best_epoch": state["best_epoch"],
        "least_confident_teacher": least_confident,
        "test": {"fused": task_summary(meta.task, pred.fused, labels, norm)},
        "teacher": {},
        "confidence_ratio": {},
        "feature_alignment": {},
        "probe": {},
        "modality_gap": modality_gap(pred.features),
    }
    targets = {split: d.target.cpu().numpy() for split, d in data.items()}
    for m in meta.modalities:
        result["test"][m] = task_summary(meta.task, pred.logits[m], labels, norm)
        result["teacher"][m] = task_summary(meta.task, teacher_test[m].logits, labels, norm)
        student_rho = split_confidence(pred.logits[m], target, meta.task)
        teacher_rho_test = cached_confidence(teacher_test[m].confidence, teacher_test[m].sq_error, meta.task)
        result["confidence_ratio"][m] = student_rho / teacher_rho_test if teacher_rho_test > 0 else 0.0
        result["feature_alignment"][m] = cosine_alignment(pred.features[m], teacher_test[m].features)
        probe = fit_probe(
            preds["train"].features[m],
            targets["train"],
            preds["val"].features[m],
            targets["val"],
            meta.task,
            meta.num_outputs,
            seed=state["seed"],
        )
        result["probe"][m] = task_summary(meta.task, probe.logits(pred.features[m]), labels, norm)
    if gap_path is not None:
        write_json(gap_path, {**result["modality_gap"], **projection(pred.features, seed=state["seed"])})
    write_json(out_path, result)
    return result
