"""Training the multimodal student with any method, from cached or online teacher outputs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from g2d.config.params import Params
from g2d.io.dataset_file import DatasetMeta
from g2d.methods import get_method
from g2d.methods.base import Method
from g2d.methods.confidence import sample_confidence, sample_sq_error
from g2d.methods.losses import task_loss
from g2d.methods.smp import total_epochs
from g2d.models import EncoderSpec, resolve_encoder
from g2d.models.student import MultimodalStudent, StudentOutput, UnimodalModel, initialise
from g2d.training.data import SplitTensors
from g2d.training.engine import FitResult, StepFn, fit, seed_everything
from g2d.training.optim import build_optimizer, build_scheduler
from g2d.training.precision import FP32, Precision
from g2d.training.predict import predict_student
from g2d.training.teacher import output_metrics, selection
from g2d.types import Batch, TeacherBatch


@torch.no_grad()
def online_teacher_batch(
    teachers: Mapping[str, UnimodalModel], batch: Batch, task: str, precision: Precision = FP32
) -> TeacherBatch:
    """Teacher outputs computed now, for when the cache is off (e.g. under random augmentation)."""
    feats, logits = {}, {}
    for m, model in teachers.items():
        feats[m], logits[m] = precision.run(model, batch.inputs[m])
    conf = {m: sample_confidence(lg, batch.target, task) for m, lg in logits.items()}
    sq = {m: sample_sq_error(lg, batch.target) for m, lg in logits.items()} if task == "regression" else None
    return TeacherBatch(features=feats, logits=logits, confidence=conf, sq_error=sq)


def build_student(state: Mapping, device: torch.device) -> MultimodalStudent:
    """Rebuild a student from its checkpoint (architecture is stored with the weights; checkpoints
    written before fusion options were recorded used FiLM's first-modality direction)."""
    legacy = {"modulated": "first"} if state["fusion"] == "film" else {}
    model = MultimodalStudent(
        state["modalities"],
        state["encoders"],
        {m: tuple(s) for m, s in state["input_shapes"].items()},
        state["fusion"],
        state["num_outputs"],
        state.get("fusion_options", legacy),
    )
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval()


def make_method(params: Params, name: str, meta: DatasetMeta) -> Method:
    """The method `name`, given the shared settings and, if it has one, its own params section."""
    return get_method(name)(
        modalities=meta.modalities,
        task=meta.task,
        taus=params.taus(len(meta.modalities)),
        alpha=params.alpha,
        beta=params.beta,
        temperature=params.temperature,
        smp=params.smp,
        options=params.method_options(name),
    )


def modality_metrics(task: str, out: StudentOutput, target: torch.Tensor, prefix: str) -> dict[str, float]:
    """Fused and per-modality accuracy (or MSE) and confidence for logging."""
    logs = output_metrics(task, out.fused, target, prefix)
    for m, logits in out.logits.items():
        logs.update({f"{k}_{m}": v for k, v in output_metrics(task, logits, target, prefix).items()})
    return logs


def student_step(
    model: MultimodalStudent,
    method: Method,
    optimizer: torch.optim.Optimizer,
    task: str,
    teachers: Mapping[str, UnimodalModel] | None,
) -> StepFn:
    """One training step on a batch: teacher outputs if run online, the method's update, logged metrics."""

    def step(batch: Batch, epoch: int) -> dict[str, float]:
        if teachers is not None:
            batch.teacher = online_teacher_batch(teachers, batch, task, method.precision)
        logs, out = method.train_step(model, batch, optimizer, epoch)
        with torch.no_grad():
            logs.update(
                modality_metrics(
                    task,
                    StudentOutput(
                        features={}, logits={m: v.detach() for m, v in out.logits.items()}, fused=out.fused.detach()
                    ),
                    batch.target,
                    "train_",
                )
            )
        return logs

    return step


def train_student(
    params: Params,
    meta: DatasetMeta,
    encoders: Mapping[str, EncoderSpec],
    method_name: str,
    seed: int,
    train: SplitTensors,
    val: SplitTensors,
    teachers: Mapping[str, UnimodalModel] | None,
    train_confidence: Mapping[str, float] | None,
    resume_dir: Path,
    fingerprint: str,
    teacher_models: Mapping[str, UnimodalModel] | None = None,
) -> tuple[dict, FitResult]:
    """Train the student with `method_name`; return its checkpoint dict and history. `teachers` run online
    (no score cache); `teacher_models` are given to a method that starts from the teachers' weights."""
    method = make_method(params, method_name, meta)
    method.precision = Precision(params.precision, train.device)
    method.setup(train_confidence)
    seed_everything(seed)
    encoders = {
        m: resolve_encoder(encoders[m], m, meta.tokens, f"datasets.{meta.dataset}.encoders.{m}")
        for m in meta.modalities
    }
    shapes = {m: train.split.sample_shape(m) for m in meta.modalities}
    fusion = method.student_fusion(params.fusion)
    fusion_options = params.fusion_options(fusion)
    model = initialise(
        MultimodalStudent(meta.modalities, encoders, shapes, fusion, meta.num_outputs, fusion_options), params.init
    ).to(train.device)
    method.initialise(model, teacher_models)
    optimizer = build_optimizer(params, method.param_groups(model))
    scheduler = build_scheduler(params, optimizer)
    task = meta.task
    step = student_step(model, method, optimizer, task, teachers)

    def evaluate() -> dict[str, float]:
        pred = predict_student(model, val, params.eval_batch_size, method.precision)
        out = StudentOutput(
            features={},
            logits={m: torch.from_numpy(v) for m, v in pred.logits.items()},
            fused=torch.from_numpy(pred.fused),
        )
        target = val.target.cpu()
        logs = modality_metrics(task, out, target, "val_")
        logs["val_loss"] = float(task_loss(out.fused, target, task))
        logs.update({f"val_loss_{m}": float(task_loss(lg, target, task)) for m, lg in out.logits.items()})
        return logs

    key, mode = selection(task)
    taus = params.taus(len(meta.modalities))
    result = fit(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        train=train,
        step=step,
        evaluate=evaluate,
        epochs=method.epochs(total_epochs(taus)),
        batch_size=params.batch_size,
        seed=seed,
        select_key=key,
        select_mode=mode,
        resume_dir=resume_dir,
        fingerprint=fingerprint,
        desc=f"student {method_name}",
        method_state=method,
        begin_epoch=lambda epoch, batches: method.begin_epoch(model, epoch, batches),
        end_epoch=lambda epoch, record: method.end_epoch(model, optimizer, epoch, record),
        precision=method.precision,
    )
    state = {
        "kind": "student",
        "method": method_name,
        "modalities": list(meta.modalities),
        "encoders": dict(encoders),
        "input_shapes": {m: list(s) for m, s in shapes.items()},
        "fusion": fusion,
        "fusion_options": fusion_options,
        "num_outputs": meta.num_outputs,
        "task": task,
        "normalizer": train.norm.to_dict(),
        "taus": list(taus),
        "state_dict": result.best_state,
        "best_epoch": result.best_epoch,
        "seed": seed,
    }
    return state, result
