"""Which crop each training row gets in an epoch: fresh ones, one view of a stored bank, or a fixed view.

Each source turns an epoch's seed into `Crops` for every row of the training split, with a generator
seeded by that seed alone, so a resumed run draws exactly what an uninterrupted one draws (the seed
is the one that shuffles the epoch; a separate stream, so the shuffle itself is unchanged). Batches
take their rows' part of it (`Crops.take`) and apply it to the stored arrays before standardisation.

  - `FreshCrops`: a new box and flip per row every epoch (`augment.kind: online`; teacher training in
    both augmenting kinds, as the reference's teachers train);
  - `BankViews`: one of the bank's K views per row, drawn per epoch (`kind: views`): the row's
    teacher outputs are then those the score stage cached for that view;
  - `FixedView`: view k for every row (the score stage running the teachers over the bank).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from g2d.config.params import AugmentParams
from g2d.io.dataset_file import SplitReader
from g2d.io.score_cache import ViewBank
from g2d.transforms.augment import crop_resize, draw_boxes, draw_flips, frame_size

FRESH_STREAM = 0x6A09E667  # generator streams: crops and view choices never share numbers with the shuffle
VIEW_STREAM = 0xBB67AE85


@dataclass(frozen=True)
class Crops:
    """Crop boxes (n, 4) and flips (n,) per augmented modality for n rows, and, when they come from
    a view bank, each row's view (n,)."""

    boxes: Mapping[str, np.ndarray]
    flip: Mapping[str, np.ndarray]
    view: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> Crops:
        """The crops of `rows` (positions in the split), in that order."""
        return Crops(
            boxes={m: b[rows] for m, b in self.boxes.items()},
            flip={m: f[rows] for m, f in self.flip.items()},
            view=None if self.view is None else self.view[rows],
        )

    def apply(self, modality: str, samples: np.ndarray) -> np.ndarray:
        """`samples` (the rows these crops belong to) cropped and flipped; unchanged if `modality` is not augmented."""
        if modality not in self.boxes:
            return samples
        return crop_resize(samples, self.boxes[modality], self.flip[modality])


class CropSource(Protocol):
    """Anything that gives every row of the training split its crop for an epoch."""

    def crops(self, epoch_seed: int | None) -> Crops: ...


def _epoch_rng(epoch_seed: int | None, stream: int, what: str) -> np.random.Generator:
    if epoch_seed is None:
        raise ValueError(f"{what} are drawn per epoch: pass the epoch's shuffle seed")
    return np.random.default_rng([epoch_seed, stream])


def frame_sizes(spec: AugmentParams, shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, int]]:
    """(height, width) of each augmented modality, from its sample shape."""
    return {m: frame_size(shapes[m]) for m in spec.modalities or ()}


def draw_crops(
    rng: np.random.Generator, spec: AugmentParams, sizes: Mapping[str, tuple[int, int]], n: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """`n` boxes and flips per modality of `sizes`, drawn in modality order from `rng`."""
    boxes, flip = {}, {}
    for m, (height, width) in sizes.items():
        boxes[m] = draw_boxes(rng, n, height, width, spec.scale, spec.ratio)
        flip[m] = draw_flips(rng, n, spec.flip)
    return boxes, flip


@dataclass(frozen=True)
class FreshCrops:
    """A new crop per row and epoch, from the epoch's seed."""

    spec: AugmentParams
    sizes: Mapping[str, tuple[int, int]]
    rows: int

    def crops(self, epoch_seed: int | None) -> Crops:
        rng = _epoch_rng(epoch_seed, FRESH_STREAM, "fresh crops")
        boxes, flip = draw_crops(rng, self.spec, self.sizes, self.rows)
        return Crops(boxes=boxes, flip=flip)


def fresh_crops(spec: AugmentParams, split: SplitReader) -> FreshCrops | None:
    """Fresh crops for every row of `split` (a training split), or None when `spec` augments nothing."""
    if not spec.active:
        return None
    return FreshCrops(spec, frame_sizes(spec, {m: split.sample_shape(m) for m in spec.modalities or ()}), len(split))


def draw_bank(spec: AugmentParams, sizes: Mapping[str, tuple[int, int]], rows: int, seed: int) -> ViewBank:
    """`spec.views` crops of each of `rows` training rows per modality, from `seed` (the run's seed)
    and the modality's name, so a bank is reproducible from its run alone and modalities differ."""
    boxes, flip = {}, {}
    for m, size in sizes.items():
        rng = np.random.default_rng([seed, zlib.crc32(m.encode())])
        b, f = draw_crops(rng, spec, {m: size}, spec.views * rows)
        boxes[m], flip[m] = b[m].reshape(spec.views, rows, 4), f[m].reshape(spec.views, rows)
    return ViewBank(boxes=boxes, flip=flip)


def bank_crops(bank: ViewBank, view: np.ndarray) -> Crops:
    """Row i through view `view[i]` of the bank."""
    rows = np.arange(bank.rows)
    return Crops(
        boxes={m: b[view, rows] for m, b in bank.boxes.items()},
        flip={m: f[view, rows] for m, f in bank.flip.items()},
        view=view,
    )


@dataclass(frozen=True)
class BankViews:
    """One of the bank's views per row, drawn uniformly per epoch from the epoch's seed."""

    bank: ViewBank

    def crops(self, epoch_seed: int | None) -> Crops:
        rng = _epoch_rng(epoch_seed, VIEW_STREAM, "bank views")
        return bank_crops(self.bank, rng.integers(self.bank.views, size=self.bank.rows))


@dataclass(frozen=True)
class FixedView:
    """View `view` of the bank for every row, whatever the epoch."""

    bank: ViewBank
    view: int

    def crops(self, epoch_seed: int | None) -> Crops:
        return bank_crops(self.bank, np.full(self.bank.rows, self.view))
