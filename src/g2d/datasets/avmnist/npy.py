"""AV-MNIST in the layout researchers download (MultiBench / the AV-MNIST generator)::

    {raw_dir}/image/train_data.npy   (N, 784) MNIST pixels          image/test_data.npy
    {raw_dir}/audio/train_data.npy   (N, 112, 112) spectrograms     audio/test_data.npy
    {raw_dir}/train_labels.npy       (N,) digits 0-9                test_labels.npy

Validation is held out of the training rows as in the build (g2d.datasets.avmnist.layout.image_indices).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from g2d.datasets import RawDataError
from g2d.datasets.avmnist.layout import IMAGE_SHAPE, IMAGE_SIDE, POOL, SOURCE, dataset_meta, image_indices
from g2d.datasets.avmnist.params import Params
from g2d.datasets.common import Sample, Skipped, report_header, write_dataset
from g2d.io.dataset_file import SPLITS


def _load_npy(path: Path) -> np.ndarray:
    """One raw array, memory-mapped; an unreadable file is named with the fix."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RawDataError(f"{path}: not a readable .npy array ({exc}); re-download it") from exc


def from_npy(dataset: str, root: Path, params: Params, out_path: Path, report_path: Path) -> dict[str, Any]:
    """Write the dataset file and the report from the npy arrays (checked first); return the report."""
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for part in ("train", "test"):
        image, audio = _load_npy(root / f"image/{part}_data.npy"), _load_npy(root / f"audio/{part}_data.npy")
        labels = _load_npy(root / f"{part}_labels.npy")
        if image.ndim != 2 or image.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
            raise RawDataError(f"{root / f'image/{part}_data.npy'}: expected (N, 784) pixels, got {image.shape}")
        if audio.ndim not in (3, 4) or (audio.ndim == 4 and audio.shape[1] != 1):
            raise RawDataError(f"{root / f'audio/{part}_data.npy'}: expected (N, H, W) spectrograms, got {audio.shape}")
        if labels.ndim != 1 or not len(labels) == len(image) == len(audio):
            raise RawDataError(
                f"{root / f'{part}_labels.npy'}: {labels.shape} labels for {len(image)} images and "
                f"{len(audio)} spectrograms; the three {part} files must have the same N"
            )
        bad = np.setdiff1d(np.unique(labels), np.arange(10))
        if bad.size:
            raise RawDataError(f"{root / f'{part}_labels.npy'}: labels {bad[:5].tolist()} are not digits 0-9")
        arrays[part] = {"image": image, "audio": audio.reshape(len(audio), 1, *audio.shape[-2:]), "labels": labels}
    if arrays["train"]["audio"].shape[1:] != arrays["test"]["audio"].shape[1:]:
        raise RawDataError(
            f"{root / 'audio'}: train and test spectrograms differ in shape "
            f"({arrays['train']['audio'].shape[1:]} vs {arrays['test']['audio'].shape[1:]})"
        )
    picks = image_indices(len(arrays["train"]["labels"]), len(arrays["test"]["labels"]), params.split, params.limit)

    def samples() -> Iterator[Sample]:
        for split in SPLITS:
            part = arrays[POOL[split]]
            for row in picks[split]:
                yield Sample(
                    split,
                    {
                        "audio": np.asarray(part["audio"][row], dtype=np.float32),
                        "image": np.asarray(part["image"][row], dtype=np.float32).reshape(IMAGE_SHAPE[0]),
                    },
                    int(part["labels"][row]),
                    f"{POOL[split]}{int(row):05d}",
                    origin={
                        "audio": f"{root / 'audio' / f'{POOL[split]}_data.npy'} row {int(row)}",
                        "image": f"{root / 'image' / f'{POOL[split]}_data.npy'} row {int(row)}",
                    },
                )

    def report(counts: Mapping[str, int], lost: Sequence[Skipped]) -> dict[str, Any]:
        return {
            **report_header(dataset, SOURCE, root, counts, total, lost, params),
            "format": "npy",
        }

    total = sum(len(rows) for rows in picks.values())
    shapes = {"audio": (tuple(arrays["train"]["audio"].shape[1:]), "float32"), "image": IMAGE_SHAPE}
    return write_dataset(
        dataset_meta(dataset, params, "npy"),
        shapes,
        samples(),
        total=total,
        unit="sample",
        out_path=out_path,
        report_path=report_path,
        report=report,
        found=total,
        what="samples",
        max_skipped_fraction=params.max_skipped_fraction,
    )
