"""The batch types that the data pipeline builds and the training methods read.

A leaf module (annotations only, no torch import at run time) so that methods and training both
import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class TeacherBatch:
    """Teacher outputs for the samples of one batch (cached or computed online)."""

    features: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]
    confidence: dict[str, torch.Tensor]
    sq_error: dict[str, torch.Tensor] | None = None


@dataclass
class Batch:
    """One batch: row indices into the split, standardised inputs per modality, targets, and the
    teachers' outputs on these rows when the method uses them."""

    index: torch.Tensor
    inputs: dict[str, torch.Tensor]
    target: torch.Tensor
    teacher: TeacherBatch | None = None


@dataclass
class EpochBatches:
    """One epoch's training batches in that epoch's order: `count` of them, produced anew by each call, so
    a method can look at some of them before the epoch's steps (e.g. PMR's prototypes)."""

    count: int
    make: Callable[[], Iterator[Batch]]

    def __call__(self) -> Iterator[Batch]:
        return self.make()
