"""Data-parallel training over processes started by `torchrun` (one per GPU, or gloo processes on CPU).

Each process takes its share of every global batch (rows rank, rank + W, ...). After each backward
pass, every parameter's gradient is replaced by the global one: the processes' gradients weighted by
their share of the batch's rows and summed (one all-reduce per parameter, as the gradient is ready).
So every rule that acts on gradients between backward and the optimizer step (SMP's gating, OGM-GE's
coefficients and noise, AGM, MMPareto) sees the gradient a single process would see on the whole
batch, and every process applies the same rule. The per-batch statistics those rules read (SMP's
batch confidence, OGM-GE's scores) are reduced over the global batch too (`global_mean`,
`global_sum`), so that every process gates the same encoder. Model selection, evaluation and
checkpoints use the full validation split on every process; only rank 0 writes files.

Outside torchrun (no process group), every helper here is the identity: one process, as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from g2d.errors import RunError
from g2d.types import Batch, TeacherBatch


def active() -> bool:
    """Whether this process is one of several (a process group is up)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Whether this process writes the outputs (rank 0, or the only process)."""
    return rank() == 0


def launched() -> bool:
    """Whether torchrun started this process (its environment names a world of several processes)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup() -> None:
    """Join torchrun's process group: NCCL with one GPU per process when CUDA is present, else gloo."""
    if not launched() or dist.is_initialized():
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)


def barrier() -> None:
    if active():
        dist.barrier()


def _reduced(values: torch.Tensor) -> torch.Tensor:
    """The sum of `values` over the processes (float64 on the processes' device)."""
    out = values.detach().to(torch.float64).clone()
    if active():
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        out = out.to(device)
        dist.all_reduce(out)
    return out.cpu()


def global_sum(values: torch.Tensor) -> float:
    """The sum of `values` over this process's rows and every other process's."""
    return float(_reduced(values.sum().reshape(1))[0])


def global_mean(values: torch.Tensor) -> float:
    """The mean of `values` over the global batch (every process's rows)."""
    total = _reduced(torch.stack([values.detach().to(torch.float64).sum().cpu(), torch.tensor(values.numel())]))
    return float(total[0] / total[1])


def reduce_sums(sums: dict[str, float], count: int) -> tuple[dict[str, float], int]:
    """An epoch's row-weighted sums of logged values, and its rows, over every process."""
    if not active():
        return sums, count
    keys = sorted(sums)
    total = _reduced(torch.tensor([*(sums[k] for k in keys), float(count)], dtype=torch.float64))
    return {k: float(v) for k, v in zip(keys, total[:-1])}, int(round(float(total[-1])))


def shard(batch: Batch) -> Batch:
    """This process's rows of a global batch (rank, rank + W, ...); refused if some process would get none."""
    if not active():
        return batch
    n, w, r = len(batch.index), world(), rank()
    if n < w:
        raise RunError(
            f"a training batch of {n} rows cannot be shared by {w} processes; raise batch_size, or change the "
            "split so that the last batch holds at least one row per process, or run fewer processes"
        )
    rows = torch.arange(r, n, w)

    def take(t: torch.Tensor) -> torch.Tensor:
        return t[rows.to(t.device)]

    teacher = None
    if batch.teacher is not None:
        t = batch.teacher
        teacher = TeacherBatch(
            features={m: take(v) for m, v in t.features.items()},
            logits={m: take(v) for m, v in t.logits.items()},
            confidence={m: take(v) for m, v in t.confidence.items()},
            sq_error=None if t.sq_error is None else {m: take(v) for m, v in t.sq_error.items()},
        )
    return Batch(
        index=take(batch.index),
        inputs={m: take(v) for m, v in batch.inputs.items()},
        target=take(batch.target),
        teacher=teacher,
    )


@dataclass
class GradientAverage:
    """Replaces each parameter's gradient by the global batch's as soon as backward has accumulated it:
    this process's gradient times its share of the batch's rows, summed over the processes."""

    share: float = 1.0

    def attach(self, model: torch.nn.Module) -> None:
        if not active():
            return
        for p in model.parameters():
            if p.requires_grad:
                p.register_post_accumulate_grad_hook(self._reduce)

    def _reduce(self, p: torch.Tensor) -> None:
        assert p.grad is not None
        p.grad.mul_(self.share)
        dist.all_reduce(p.grad)
