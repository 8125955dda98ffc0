"""AV-MNIST's names and its two raw layouts: which one a folder holds, and what is missing from it.

Also the MNIST rows of each split, which both formats share: validation is a seeded part of MNIST's
training file, test is its test file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from g2d.datasets import RawDataError
from g2d.datasets.avmnist.params import LimitParams, Params, SplitParams
from g2d.datasets.common import preprocessing_record
from g2d.io.dataset_file import DatasetMeta

SOURCE = "avmnist"
MODALITIES: tuple[str, ...] = ("audio", "image")
IMAGE_MODALITIES: tuple[str, ...] = ("image",)  # what `augment` may crop and flip
CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))
IMAGE_SIDE = 28
IMAGE_SHAPE = ((1, IMAGE_SIDE, IMAGE_SIDE), "float32")  # a stored image and its dtype, in both formats
POOL = {"train": "train", "val": "train", "test": "test"}  # the MNIST file (train or test) of each split's rows
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
LAYOUT = """expected one of the two AV-MNIST layouts:
  format npy (MultiBench / the AV-MNIST generator):
    {raw_dir}/image/train_data.npy  image/test_data.npy    (N, 784) pixels
    {raw_dir}/audio/train_data.npy  audio/test_data.npy    (N, 112, 112) spectrograms
    {raw_dir}/train_labels.npy      test_labels.npy        (N,) digits 0-9
  format build (raw material):
    {raw_dir}/{mnist_dir}/train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
        t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz           (MNIST, yann.lecun.com)
    {raw_dir}/{recordings_dir}/<digit>_<speaker>_<take>.wav           (Free Spoken Digit Dataset,
        github.com/Jakobovski/free-spoken-digit-dataset)"""


def layout_text(raw_dir: Path, params: Params) -> str:
    """Both expected layouts, with this dataset's folders filled in (shown with every layout error)."""
    return LAYOUT.format(raw_dir=raw_dir, mnist_dir=params.mnist_dir, recordings_dir=params.recordings_dir)


def npy_files(root: Path) -> list[Path]:
    """The six arrays of format npy."""
    return [root / f"{m}/{s}_data.npy" for m in ("image", "audio") for s in ("train", "test")] + [
        root / f"{s}_labels.npy" for s in ("train", "test")
    ]


def build_files(root: Path, params: Params) -> list[Path]:
    """The four MNIST IDX files of format build (the FSDD recordings are a folder, checked apart)."""
    return [root / params.mnist_dir / name for pair in MNIST_FILES.values() for name in pair]


def detect_format(raw_dir: str | Path, params: Params | None = None) -> str:
    """`npy` or `build` as params say, or, for `auto`, whichever layout is complete on disk."""
    params = params or Params()
    root = Path(raw_dir)
    if not root.is_dir():
        raise RawDataError(f"{root}: raw AV-MNIST folder not found\n{layout_text(root, params)}")
    if params.format != "auto":
        return params.format
    if all(p.is_file() for p in npy_files(root)):
        return "npy"
    if all(p.is_file() for p in build_files(root, params)) and (root / params.recordings_dir).is_dir():
        return "build"
    missing = [str(p) for p in npy_files(root) if not p.is_file()][:2] + [
        str(p) for p in build_files(root, params) if not p.is_file()
    ][:2]
    raise RawDataError(
        f"{root}: neither AV-MNIST layout is complete (missing e.g. {', '.join(missing)})\n{layout_text(root, params)}"
    )


def check_raw(raw_dir: str | Path, params: Params | None = None) -> None:
    """Raise RawDataError showing the expected layouts unless one of them is complete."""
    params = params or Params()
    root = Path(raw_dir)
    fmt = detect_format(root, params)
    needed = npy_files(root) if fmt == "npy" else build_files(root, params)
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise RawDataError(
            f"{missing[0]}: missing ({len(missing)} files of the {fmt} layout are)\n{layout_text(root, params)}"
        )
    if fmt == "build":
        recordings = root / params.recordings_dir
        if not recordings.is_dir() or not any(recordings.glob("*.wav")):
            raise RawDataError(f"{recordings}: missing or holds no .wav file\n{layout_text(root, params)}")
        if params.noise.kind == "folder":
            folder = Path(str(params.noise.folder))
            if not folder.is_dir() or not any(folder.glob("*.wav")):
                raise RawDataError(f"{folder}: noise folder (noise.folder) missing or holds no .wav file")


def image_indices(n_train_pool: int, n_test_pool: int, split: SplitParams, limit: LimitParams) -> dict[str, np.ndarray]:
    """MNIST rows per split: val is a seeded part of MNIST's training file, test is its test file."""
    rng = np.random.default_rng(split.seed)
    order = rng.permutation(n_train_pool)
    n_val = max(1, int(np.floor(split.val_fraction * n_train_pool + 0.5)))
    picks = {"train": order[n_val:], "val": order[:n_val], "test": rng.permutation(n_test_pool)}
    return {s: np.sort(idx[: getattr(limit, s)] if getattr(limit, s) else idx) for s, idx in picks.items()}


def dataset_meta(dataset: str, params: Params, fmt: str) -> DatasetMeta:
    """The dataset file's attributes; `preprocessing` records the params and the format read."""
    return DatasetMeta(
        dataset=dataset,
        source=SOURCE,
        task="classification",
        modalities=MODALITIES,
        class_names=CLASS_NAMES,
        preprocessing=preprocessing_record(SOURCE, params, format=fmt),
    )
