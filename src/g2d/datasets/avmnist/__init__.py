"""AV-MNIST source: degraded MNIST digits paired by label with noisy spoken digits, in two raw formats.

`format: npy` reads the files researchers download (MultiBench / the AV-MNIST generator)::

    {raw_dir}/image/train_data.npy   (N, 784) MNIST pixels          image/test_data.npy
    {raw_dir}/audio/train_data.npy   (N, 112, 112) spectrograms     audio/test_data.npy
    {raw_dir}/train_labels.npy       (N,) digits 0-9                test_labels.npy

`format: build` makes AV-MNIST from its raw material, the four MNIST IDX files and the Free Spoken
Digit Dataset's `recordings/` folder (`{digit}_{speaker}_{take}.wav`):
  - images are reconstructed from a truncated PCA basis fitted on the training split only
    (`pca.keep` of the components, or of the variance with `pca.by: energy`);
  - each image is paired with a recording of the same digit from its split's speakers; the
    recording is centred in `audio.duration` seconds, mixed with white, pink or recorded noise at
    `noise.snr_db` (speech power over the speech itself), and turned into a log-mel spectrogram of
    `n_mels` x `frames` (112 x 112 by default);
  - splits are speaker-disjoint for audio (default: test yweweler, as in the original; val george;
    train the rest) and follow MNIST's train/test files for images, with `split.val_fraction` of
    MNIST's training images held out for validation.
Differences from the original generator are listed in docs/data.md ("AV-MNIST").

The package: `params` (the preprocess section), `layout` (names, the two layouts, the split of
MNIST's rows), `build` and `npy` (one per format), and here the source interface of g2d.datasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from g2d.datasets.avmnist.build import build
from g2d.datasets.avmnist.layout import CLASS_NAMES, IMAGE_MODALITIES, MODALITIES, SOURCE, check_raw, detect_format
from g2d.datasets.avmnist.npy import from_npy
from g2d.datasets.avmnist.params import Params

__all__ = [
    "CLASS_NAMES",
    "IMAGE_MODALITIES",
    "MODALITIES",
    "SOURCE",
    "Params",
    "check_raw",
    "detect_format",
    "preprocess",
]


def preprocess(
    dataset: str,
    raw_dir: str | Path,
    params: Params,
    out_path: str | Path,
    report_path: str | Path,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write the dataset file and the report; return the report.

    `workers` processes compute spectrograms (format build); the output does not depend on it.
    """
    root = Path(raw_dir)
    check_raw(root, params)
    fmt = detect_format(root, params)
    if fmt == "npy":
        return from_npy(dataset, root, params, Path(out_path), Path(report_path))
    return build(dataset, root, params, Path(out_path), Path(report_path), workers or params.workers)
