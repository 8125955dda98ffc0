"""The epoch loop shared by teachers and students: logging, model selection, checkpoint and resume.

A run saves its full state (model, optimizer, scheduler, method state, RNG, history, best model)
atomically after every epoch in its resume folder. Started again with the same fingerprint, it
continues after the last finished epoch and ends with the same result as an uninterrupted run
(batch order is seeded per epoch, RNG states are restored).
"""

from __future__ import annotations

import copy
import math
import random
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from g2d.errors import RunError
from g2d.training import checkpoint, distributed
from g2d.training.data import SplitTensors
from g2d.training.precision import FP32, Precision
from g2d.types import Batch, EpochBatches


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)


StepFn = Callable[[Batch, int], dict[str, float]]
EvalFn = Callable[[], dict[str, float]]
# Per-epoch callbacks: before an epoch's steps (given that epoch's batches, e.g. for prototypes) and after its
# validation and model selection (given the epoch's record, e.g. to stop a modality or change its learning rate).
# What they return is logged in the epoch's record.
BeginEpochFn = Callable[[int, EpochBatches], dict[str, float]]
EndEpochFn = Callable[[int, dict[str, Any]], dict[str, float]]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]  # the keys come back as a tensor (checkpoints hold no numpy arrays)
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])


def check_finite_loss(logs: dict[str, float], desc: str, epoch: int, batch: int, resume_file: Path) -> None:
    """Stop a run whose loss turned NaN or infinite: it would train on to the end and select garbage."""
    bad = {k: v for k, v in logs.items() if "loss" in k and not math.isfinite(v)}
    if not bad:
        return
    terms = ", ".join(f"{k} = {v}" for k, v in sorted(bad.items()))
    kept = f"; the state after epoch {epoch - 1} is kept in {resume_file}" if epoch > 1 else ""
    raise RunError(
        f"{desc}: the loss became non-finite at epoch {epoch}, batch {batch} ({terms}). Lower lr, check the "
        f"dataset file for extreme values, or lower the weight of that term{kept}"
    )


def fit(
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    train: SplitTensors,
    step: StepFn,
    evaluate: EvalFn,
    epochs: int,
    batch_size: int,
    seed: int,
    select_key: str,
    select_mode: str,
    resume_dir: Path,
    fingerprint: str,
    desc: str,
    method_state: Stateful | None = None,
    begin_epoch: BeginEpochFn | None = None,
    end_epoch: EndEpochFn | None = None,
    precision: Precision = FP32,
) -> FitResult:
    """Train for `epochs`, keeping the state with the best `select_key` on validation; `begin_epoch` and
    `end_epoch` are the per-epoch callbacks of methods that act between epochs (their state is `method_state`);
    `precision`'s loss scale (fp16) is resumed with the rest."""
    resume_file = resume_dir / "last.pt"
    history: list[dict[str, Any]] = []
    best_state = copy.deepcopy(model.state_dict())
    best_epoch, best_value = 0, None
    start = 1
    if resume_file.is_file():
        state = checkpoint.load(resume_file)
        code = checkpoint.code_version()
        if state.get("fingerprint") == fingerprint and state.get("code") != code:
            print(
                f"{desc}: ignoring {resume_file}: it was written by g2d code "
                f"{state.get('code', 'of unknown version')}, and this is {code}; training starts over from epoch 1",
                file=sys.stderr,
            )
        elif state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            if method_state is not None:
                method_state.load_state_dict(state["method"])
            _set_rng_state(state["rng"])
            precision.load_state_dict(state.get("precision", {}))
            history, best_state = state["history"], state["best_state"]
            best_epoch, best_value = state["best_epoch"], state["best_value"]
            start = state["epoch"] + 1
            print(f"{desc}: resuming after epoch {state['epoch']} from {resume_file}", file=sys.stderr)
        else:
            print(f"{desc}: ignoring {resume_file}: it belongs to other settings or inputs", file=sys.stderr)
    averager = distributed.GradientAverage()
    averager.attach(model)
    bar = tqdm(
        range(start, epochs + 1),
        disable=not distributed.is_main(),
        desc=desc,
        initial=start - 1,
        total=epochs,
        unit="epoch",
        file=sys.stderr,
        dynamic_ncols=True,
    )
    for epoch in bar:

        def ordered(epoch: int = epoch) -> Iterator[Batch]:
            return train.batches(batch_size, shuffle_seed=seed * 100_003 + epoch)

        batches = EpochBatches(count=math.ceil(len(train) / batch_size), make=ordered)
        before = begin_epoch(epoch, batches) if begin_epoch is not None else {}
        model.train()
        sums: dict[str, float] = {}
        seen = 0
        for number, batch in enumerate(batches(), start=1):
            local = distributed.shard(batch)  # the whole batch in a single process
            n = len(local.index)
            averager.share = n / len(batch.index)
            logs = step(local, epoch)
            check_finite_loss(logs, desc, epoch, number, resume_file)
            seen += n
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value * n
        sums, seen = distributed.reduce_sums(sums, seen)
        record: dict[str, Any] = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
        record.update({k: v / seen for k, v in sums.items()})
        record.update(before)
        model.eval()
        with torch.no_grad():
            record.update(evaluate())
        value = record[select_key]
        better = best_value is None or (value > best_value if select_mode == "max" else value < best_value)
        if better:
            best_value, best_epoch = value, epoch
            best_state = copy.deepcopy(model.state_dict())
        record["best_epoch"] = best_epoch
        if end_epoch is not None:
            record.update(end_epoch(epoch, record))
        history.append(record)
        if scheduler is not None:
            scheduler.step()
        save_resume = checkpoint.save if distributed.is_main() else _no_save
        save_resume(
            resume_file,
            {
                "fingerprint": fingerprint,
                "code": checkpoint.code_version(),
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler else None,
                "method": method_state.state_dict() if method_state is not None else None,
                "rng": _rng_state(),
                "precision": precision.state_dict(),
                "history": history,
                "best_state": best_state,
                "best_epoch": best_epoch,
                "best_value": best_value,
            },
        )
        distributed.barrier()  # no process starts the next epoch before the resume state is written
        bar.set_postfix({select_key: f"{value:.3f}", "best": f"{best_value:.3f}@{best_epoch}"})
    bar.close()
    return FitResult(best_state=best_state, best_epoch=best_epoch, history=history)


def _no_save(path: Path, state: dict[str, Any]) -> None:
    """What a process other than rank 0 writes: nothing (rank 0 saves the state every process shares)."""


def finish(resume_dir: Path) -> None:
    """Drop the resume state once a run's outputs are safely written (by rank 0, after every process is done)."""
    distributed.barrier()
    if distributed.is_main():
        shutil.rmtree(resume_dir, ignore_errors=True)
