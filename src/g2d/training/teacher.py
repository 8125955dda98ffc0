"""Training one unimodal teacher: the task loss on one modality, checkpoint chosen on validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from g2d.config.params import Params
from g2d.io.dataset_file import DatasetMeta
from g2d.methods.confidence import sample_confidence
from g2d.methods.losses import task_loss
from g2d.models import EncoderSpec, resolve_encoder
from g2d.models.student import UnimodalModel, initialise
from g2d.training import checkpoint
from g2d.training.data import SplitTensors
from g2d.training.engine import FitResult, fit, seed_everything
from g2d.training.optim import build_optimizer, build_scheduler
from g2d.training.precision import Precision
from g2d.types import Batch


def selection(task: str) -> tuple[str, str]:
    """The validation metric a checkpoint is chosen on, and whether higher is better."""
    return ("val_acc", "max") if task == "classification" else ("val_mse", "min")


def output_metrics(task: str, logits: torch.Tensor, target: torch.Tensor, prefix: str) -> dict[str, float]:
    """Accuracy and mean confidence (classification) or MSE on the [0, 1] scale (regression)."""
    conf = sample_confidence(logits, target, task)
    if task == "classification":
        acc = (logits.argmax(dim=1) == target).float().mean()
        return {f"{prefix}acc": float(acc), f"{prefix}confidence": float(conf.mean())}
    mse = ((torch.sigmoid(logits.view(-1)) - target.view(-1)) ** 2).mean()
    return {f"{prefix}mse": float(mse), f"{prefix}confidence": float(conf.mean())}


def build_teacher(state: dict[str, Any], device: torch.device) -> UnimodalModel:
    """Rebuild a frozen teacher from its checkpoint (architecture is stored with the weights)."""
    model = UnimodalModel(state["encoder"], tuple(state["input_shape"]), state["num_outputs"])
    model.load_state_dict(state["state_dict"])
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def train_teacher(
    params: Params,
    meta: DatasetMeta,
    modality: str,
    encoder: EncoderSpec,
    seed: int,
    train: SplitTensors,
    val: SplitTensors,
    resume_dir: Path,
    fingerprint: str,
) -> tuple[dict, FitResult]:
    """Train the teacher of `modality`; return its checkpoint dict and training history."""
    seed_everything(seed)
    encoder = resolve_encoder(encoder, modality, meta.tokens, f"datasets.{meta.dataset}.encoders.{modality}")
    shape = train.split.sample_shape(modality)
    model = initialise(UnimodalModel(encoder, shape, meta.num_outputs), params.init).to(train.device)
    optimizer = build_optimizer(params, model.parameters())
    scheduler = build_scheduler(params, optimizer)
    precision = Precision(params.precision, train.device)
    task = meta.task

    def step(batch: Batch, epoch: int) -> dict[str, float]:
        _, logits = precision.run(model, batch.inputs[modality])
        loss = task_loss(logits, batch.target, task)
        optimizer.zero_grad(set_to_none=True)
        precision.backward(loss)
        precision.step(optimizer)
        return {"loss": loss.item(), **output_metrics(task, logits.detach(), batch.target, "train_")}

    def evaluate() -> dict[str, float]:
        logits = torch.cat([precision.run(model, b.inputs[modality])[1] for b in val.batches(params.eval_batch_size)])
        return output_metrics(task, logits, val.target.to(logits.device), "val_")

    key, mode = selection(task)
    result = fit(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        train=train,
        step=step,
        evaluate=evaluate,
        epochs=params.teacher.epochs,
        batch_size=params.batch_size,
        seed=seed,
        select_key=key,
        select_mode=mode,
        resume_dir=resume_dir,
        fingerprint=fingerprint,
        desc=f"teacher {modality}",
        precision=precision,
    )
    state = {
        "kind": "teacher",
        "modality": modality,
        "encoder": encoder,
        "input_shape": list(shape),
        "num_outputs": meta.num_outputs,
        "task": task,
        "normalizer": train.norm.to_dict(),
        "state_dict": result.best_state,
        "best_epoch": result.best_epoch,
        "seed": seed,
    }
    return state, result


def teacher_path(teachers_dir: Path, modality: str) -> Path:
    return teachers_dir / f"{modality}.pt"


def load_teachers(teachers_dir: Path, modalities: list[str], device: torch.device) -> dict[str, UnimodalModel]:
    return {m: build_teacher(checkpoint.load(teacher_path(teachers_dir, m), device), device) for m in modalities}
