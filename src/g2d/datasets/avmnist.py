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
Differences from the original generator are listed in the README ("AV-MNIST").
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from g2d.config.schema import require
from g2d.datasets import RawDataError
from g2d.datasets.parallel import ordered_map
from g2d.datasets.skips import Skipped, check_skipped, reason
from g2d.io.atomic import write_json
from g2d.io.dataset_file import SPLITS, DatasetMeta, DatasetWriter
from g2d.transforms.audio import centre_fit, load_audio, log_mel_spectrogram
from g2d.transforms.degrade import fit_pca, pink_noise, scale_to_snr, white_noise

SOURCE = "avmnist"
MODALITIES: tuple[str, ...] = ("audio", "image")
IMAGE_MODALITIES: tuple[str, ...] = ("image",)  # what `augment` may crop and flip
CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))
IMAGE_SIDE = 28
MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
               "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
FSDD_NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z]+)_(?P<take>[0-9]+)$")
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


@dataclass(frozen=True)
class PCAParams:
    """How much of the MNIST images survives: the original keeps 25%."""

    keep: float = 0.25
    by: Literal["components", "energy"] = "components"

    def validate(self, where: str) -> None:
        require(0 < self.keep <= 1, f"{where}.keep", f"must be in (0, 1], got {self.keep}")


@dataclass(frozen=True)
class NoiseParams:
    """Noise mixed into every recording: white, pink (1/f), or wav files from `folder`."""

    kind: Literal["white", "pink", "folder"] = "white"
    snr_db: float = 0.0
    folder: str | None = None

    def validate(self, where: str) -> None:
        if self.kind == "folder":
            require(bool(self.folder), f"{where}.folder", "a folder of noise .wav files is needed when kind is folder")


@dataclass(frozen=True)
class AudioParams:
    """Recording -> log-mel spectrogram of n_mels x frames."""

    sample_rate: int = 8000
    duration: float = 1.0
    n_fft: int = 512
    n_mels: int = 112
    frames: int = 112

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    def validate(self, where: str) -> None:
        require(self.sample_rate > 0, f"{where}.sample_rate", "must be a positive rate in Hz")
        require(self.duration > 0, f"{where}.duration", "must be a positive number of seconds")
        require(self.n_fft > 0, f"{where}.n_fft", "must be a positive window length")
        require(self.n_mels > 0, f"{where}.n_mels", "must be a positive number of mel bands")
        require(2 <= self.frames <= self.n_samples, f"{where}.frames",
                f"must be between 2 and the clip's {self.n_samples} samples")


@dataclass(frozen=True)
class SplitParams:
    """Validation held out of MNIST's training images; FSDD speakers per split (train: the rest)."""

    val_fraction: float = 0.1
    seed: int = 0
    train_speakers: tuple[str, ...] | None = None
    val_speakers: tuple[str, ...] = ("george",)
    test_speakers: tuple[str, ...] = ("yweweler",)

    def validate(self, where: str) -> None:
        require(0 < self.val_fraction < 1, f"{where}.val_fraction", f"must be in (0, 1), got {self.val_fraction}")
        require(self.seed >= 0, f"{where}.seed", "must be a non-negative integer")
        named = [*(self.train_speakers or ()), *self.val_speakers, *self.test_speakers]
        twice = sorted({s for s in named if named.count(s) > 1})
        require(not twice, f"{where}.test_speakers", f"speakers {twice} are in more than one split; "
                "audio splits must be speaker-disjoint")
        require(bool(self.val_speakers), f"{where}.val_speakers", "name at least one speaker")
        require(bool(self.test_speakers), f"{where}.test_speakers", "name at least one speaker")


@dataclass(frozen=True)
class LimitParams:
    """At most this many samples per split (null: all): CPU profiles train on subsets."""

    train: int | None = None
    val: int | None = None
    test: int | None = None

    def validate(self, where: str) -> None:
        for split in SPLITS:
            n = getattr(self, split)
            require(n is None or n >= 1, f"{where}.{split}", f"must be a positive count or null, got {n}")


@dataclass(frozen=True)
class Params:
    """The `datasets.<name>.preprocess` section for source `avmnist`."""

    format: Literal["auto", "npy", "build"] = "auto"
    mnist_dir: str = "mnist"
    recordings_dir: str = "fsdd/recordings"
    pca: PCAParams = field(default_factory=PCAParams)
    noise: NoiseParams = field(default_factory=NoiseParams)
    audio: AudioParams = field(default_factory=AudioParams)
    split: SplitParams = field(default_factory=SplitParams)
    limit: LimitParams = field(default_factory=LimitParams)
    max_skipped_fraction: float = 0.05
    workers: int = 1

    def validate(self, where: str) -> None:
        require(0 <= self.max_skipped_fraction <= 1, f"{where}.max_skipped_fraction",
                f"must be in [0, 1], got {self.max_skipped_fraction}")
        require(self.workers >= 1, f"{where}.workers", "must be at least 1")


@dataclass(frozen=True)
class Recording:
    name: str
    digit: int
    speaker: str
    path: Path


@dataclass(frozen=True)
class AudioJob:
    """One sample's audio: the speech, the noise to add (already the window's length), and the SNR."""

    speech: np.ndarray
    noise: np.ndarray
    snr_db: float
    audio: AudioParams


# ---------------------------------------------------------------------------------------------
# layout


def _layout(raw_dir: Path, params: Params) -> str:
    return LAYOUT.format(raw_dir=raw_dir, mnist_dir=params.mnist_dir, recordings_dir=params.recordings_dir)


def _npy_files(root: Path) -> list[Path]:
    return [root / f"{m}/{s}_data.npy" for m in ("image", "audio") for s in ("train", "test")] + \
           [root / f"{s}_labels.npy" for s in ("train", "test")]


def _build_files(root: Path, params: Params) -> list[Path]:
    return [root / params.mnist_dir / name for pair in MNIST_FILES.values() for name in pair]


def detect_format(raw_dir: str | Path, params: Params | None = None) -> str:
    """`npy` or `build` as params say, or, for `auto`, whichever layout is complete on disk."""
    params = params or Params()
    root = Path(raw_dir)
    if not root.is_dir():
        raise RawDataError(f"{root}: raw AV-MNIST folder not found\n{_layout(root, params)}")
    if params.format != "auto":
        return params.format
    if all(p.is_file() for p in _npy_files(root)):
        return "npy"
    if all(p.is_file() for p in _build_files(root, params)) and (root / params.recordings_dir).is_dir():
        return "build"
    missing = [str(p) for p in _npy_files(root) if not p.is_file()][:2] + \
              [str(p) for p in _build_files(root, params) if not p.is_file()][:2]
    raise RawDataError(f"{root}: neither AV-MNIST layout is complete (missing e.g. {', '.join(missing)})\n"
                       f"{_layout(root, params)}")


def check_raw(raw_dir: str | Path, params: Params | None = None) -> None:
    """Raise RawDataError showing the expected layouts unless one of them is complete."""
    params = params or Params()
    root = Path(raw_dir)
    fmt = detect_format(root, params)
    needed = _npy_files(root) if fmt == "npy" else _build_files(root, params)
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise RawDataError(f"{missing[0]}: missing ({len(missing)} files of the {fmt} layout are)\n"
                           f"{_layout(root, params)}")
    if fmt == "build":
        recordings = root / params.recordings_dir
        if not recordings.is_dir() or not any(recordings.glob("*.wav")):
            raise RawDataError(f"{recordings}: missing or holds no .wav file\n{_layout(root, params)}")
        if params.noise.kind == "folder":
            folder = Path(str(params.noise.folder))
            if not folder.is_dir() or not any(folder.glob("*.wav")):
                raise RawDataError(f"{folder}: noise folder (noise.folder) missing or holds no .wav file")


# ---------------------------------------------------------------------------------------------
# readers


def read_idx(path: str | Path) -> np.ndarray:
    """Read an MNIST IDX file (gzip or plain) into a uint8 array of its stated shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise RawDataError(f"{path}: cannot read this IDX file ({exc}); re-download it") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise RawDataError(f"{path}: not an unsigned-byte IDX file (bad magic number); re-download it")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise RawDataError(f"{path}: header says {dims} = {expected} bytes of data, the file holds "
                           f"{len(data) - header}; the file is truncated, re-download it")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_mnist(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train"|"test": (images (N, 28, 28) uint8, labels (N,) int64)} from the four IDX files."""
    out = {}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        images, labels = read_idx(root / images_name), read_idx(root / labels_name)
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise RawDataError(f"{root / images_name}: expected (N, 28, 28) images, got {images.shape}")
        if labels.shape != (images.shape[0],):
            raise RawDataError(f"{root / labels_name}: {labels.shape[0]} labels for {images.shape[0]} images in "
                               f"{images_name}; the two files must come from the same MNIST release")
        out[split] = (images, labels.astype(np.int64))
    return out


def find_recordings(folder: Path) -> tuple[list[Recording], list[Skipped]]:
    """FSDD recordings by name; files not named `<digit>_<speaker>_<take>.wav` are skipped."""
    found: list[Recording] = []
    skipped: list[Skipped] = []
    for path in sorted(folder.glob("*.wav")):
        match = FSDD_NAME.match(path.stem)
        if match is None:
            skipped.append(Skipped(path.stem, str(path),
                                   "name is not <digit>_<speaker>_<take>.wav (e.g. 3_theo_12.wav)"))
            continue
        found.append(Recording(path.stem, int(match["digit"]), match["speaker"], path))
    return found, skipped


def speaker_splits(speakers: Sequence[str], split: SplitParams) -> dict[str, str]:
    """{speaker: split}; speakers not named anywhere train unless train_speakers is given."""
    available = sorted(set(speakers))
    named = {"val": split.val_speakers, "test": split.test_speakers}
    if split.train_speakers is not None:
        named["train"] = split.train_speakers
    out: dict[str, str] = {}
    for name, group in named.items():
        unknown = [s for s in group if s not in available]
        if unknown:
            raise RawDataError(f"split.{name}_speakers names {unknown}, not among the recordings' speakers "
                               f"{available}; fix the speaker names in params.yaml")
        out.update({s: name for s in group})
    if split.train_speakers is None:
        out.update({s: "train" for s in available if s not in out})
    if "train" not in out.values():
        raise RawDataError(f"no speaker is left for training (speakers: {available}); free one from val/test")
    return out


# ---------------------------------------------------------------------------------------------
# build


def image_indices(n_train_pool: int, n_test_pool: int, split: SplitParams,
                  limit: LimitParams) -> dict[str, np.ndarray]:
    """MNIST rows per split: val is a seeded part of MNIST's training file, test is its test file."""
    rng = np.random.default_rng(split.seed)
    order = rng.permutation(n_train_pool)
    n_val = max(1, int(np.floor(split.val_fraction * n_train_pool + 0.5)))
    picks = {"train": order[n_val:], "val": order[:n_val], "test": rng.permutation(n_test_pool)}
    return {s: np.sort(idx[:getattr(limit, s)] if getattr(limit, s) else idx) for s, idx in picks.items()}


def pair_recordings(digits: np.ndarray, pools: Mapping[tuple[str, int], Sequence[str]], split: str,
                    seed: int) -> list[str]:
    """For each image's digit, a recording of that digit drawn (with replacement) from the split's pool."""
    out = []
    for i, digit in enumerate(digits):
        pool = pools[(split, int(digit))]
        out.append(pool[int(np.random.default_rng([seed, SPLITS.index(split), i, 0]).integers(len(pool)))])
    return out


def make_noise(kind: str, rng: np.random.Generator, n: int, bank: Sequence[np.ndarray] = ()) -> np.ndarray:
    """`n` samples of noise: white, pink, or a random stretch of a random file of `bank` (tiled if short)."""
    if kind == "white":
        return white_noise(rng, n)
    if kind == "pink":
        return pink_noise(rng, n)
    clip = bank[int(rng.integers(len(bank)))]
    start = int(rng.integers(len(clip)))
    return np.tile(np.roll(clip, -start), -(-n // len(clip)))[:n].astype(np.float64)


def audio_features(job: AudioJob) -> dict[str, Any]:
    """The noisy log-mel spectrogram of one recording: {"audio": (1, n_mels, frames)}."""
    window, where = centre_fit(job.speech.astype(np.float64), job.audio.n_samples)
    noise = scale_to_snr(window[where], job.noise, job.snr_db)
    mixed = np.clip(window + noise, -1.0, 1.0)
    spectrogram = log_mel_spectrogram(mixed, job.audio.sample_rate, job.audio.n_fft, job.audio.n_mels,
                                      job.audio.frames)
    return {"audio": spectrogram[np.newaxis]}


def decode_recordings(recordings: Sequence[Recording], sample_rate: int) -> tuple[dict[str, np.ndarray],
                                                                                  list[Skipped]]:
    """Decode every recording once; unreadable files become skip records naming the file."""
    waves: dict[str, np.ndarray] = {}
    skipped: list[Skipped] = []
    for rec in tqdm(recordings, desc="FSDD: decoding", unit="file", file=sys.stderr, leave=False):
        try:
            waves[rec.name] = load_audio(rec.path, sample_rate)
        except Exception as exc:
            skipped.append(Skipped(rec.name, str(rec.path), reason(exc, rec.path)))
    return waves, skipped


def _build(dataset: str, root: Path, params: Params, writer_path: Path, report_path: Path,
           workers: int) -> dict[str, Any]:
    mnist = read_mnist(root / params.mnist_dir)
    picks = image_indices(len(mnist["train"][0]), len(mnist["test"][0]), params.split, params.limit)
    pool_of = {"train": "train", "val": "train", "test": "test"}
    images = {s: mnist[pool_of[s]][0][idx].reshape(len(idx), -1) for s, idx in picks.items()}
    labels = {s: mnist[pool_of[s]][1][idx] for s, idx in picks.items()}
    pca = fit_pca(images["train"], params.pca.keep, params.pca.by)

    recordings, misnamed = find_recordings(root / params.recordings_dir)
    split_of_speaker = speaker_splits([r.speaker for r in recordings], params.split)
    used = [r for r in recordings if r.speaker in split_of_speaker]
    waves, undecodable = decode_recordings(used, params.audio.sample_rate)
    skipped = misnamed + undecodable
    found = len(recordings) + len(misnamed)
    fail_on_skips(dataset, found, skipped, params.max_skipped_fraction, report_path)
    pools: dict[tuple[str, int], list[str]] = {}
    for r in used:
        if r.name in waves:
            pools.setdefault((split_of_speaker[r.speaker], r.digit), []).append(r.name)
    for s in SPLITS:
        lacking = sorted({int(d) for d in labels[s]} - {d for (ps, d) in pools if ps == s})
        if lacking:
            speakers = sorted(sp for sp, x in split_of_speaker.items() if x == s)
            raise RawDataError(f"{root / params.recordings_dir}: the {s} speakers {speakers} have no usable "
                               f"recording of digits {lacking}; add recordings or change split.{s}_speakers")
    bank = load_noise_bank(params) if params.noise.kind == "folder" else []
    names = {s: pair_recordings(labels[s], pools, s, params.split.seed) for s in SPLITS}

    def jobs(split: str) -> Iterator[AudioJob]:
        """Built lazily: each job holds a window of noise, so a split's worth would not fit in memory."""
        for i, name in enumerate(names[split]):
            rng = np.random.default_rng([params.split.seed, SPLITS.index(split), i, 1])
            noise = make_noise(params.noise.kind, rng, params.audio.n_samples, bank)
            yield AudioJob(waves[name], noise, params.noise.snr_db, params.audio)

    meta = DatasetMeta(dataset=dataset, source=SOURCE, task="classification", modalities=MODALITIES,
                       class_names=CLASS_NAMES, preprocessing=preprocessing_record(params, "build"))
    shapes = {"audio": ((1, params.audio.n_mels, params.audio.frames), "float32"),
              "image": ((1, IMAGE_SIDE, IMAGE_SIDE), "float32")}
    with DatasetWriter(writer_path, meta, shapes) as writer:
        for split in SPLITS:
            degraded = pca.degrade(images[split]).reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
            with contextlib.closing(ordered_map(audio_features, jobs(split), workers)) as results:
                progress = tqdm(results, total=len(names[split]), desc=f"{dataset}: {split}", unit="sample",
                                file=sys.stderr)
                for i, sample in enumerate(progress):
                    sample_id = f"{pool_of[split]}{int(picks[split][i]):05d}+{names[split][i]}"
                    writer.append(split, {**sample, "image": degraded[i]}, int(labels[split][i]), sample_id)
        counts = writer.counts()
        report = {
            "dataset": dataset, "source": SOURCE, "format": "build", "raw_dir": str(root),
            "counts": counts, "recordings_found": found, "skipped": [dataclasses.asdict(s) for s in skipped],
            "skipped_fraction": len(skipped) / found if found else 0.0,
            "max_skipped_fraction": params.max_skipped_fraction,
            "pca": {"fitted_on": "train", "fit_samples": int(len(images["train"])), "dims": pca.dims,
                    "components_kept": pca.n_components, "energy_kept": round(pca.energy_kept, 6)},
            "speakers": {s: sorted(sp for sp, x in split_of_speaker.items() if x == s) for s in SPLITS},
            "mnist_rows": {s: f"{pool_of[s]} file, {len(idx)} rows" for s, idx in picks.items()},
            "params": dataclasses.asdict(params),
        }
        write_json(report_path, report)
    return report


def load_noise_bank(params: Params) -> list[np.ndarray]:
    """Every .wav in noise.folder, decoded at the audio rate (sorted by name, so choices are reproducible)."""
    folder = Path(str(params.noise.folder))
    bank = []
    for path in sorted(folder.glob("*.wav")):
        wave = load_audio(path, params.audio.sample_rate)
        if np.mean(np.square(wave)) == 0:
            raise RawDataError(f"{path}: noise file is silent; remove it from noise.folder")
        bank.append(wave.astype(np.float64))
    if not bank:
        raise RawDataError(f"{folder}: noise.folder holds no .wav file")
    return bank


# ---------------------------------------------------------------------------------------------
# npy


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RawDataError(f"{path}: not a readable .npy array ({exc}); re-download it") from exc


def _npy(dataset: str, root: Path, params: Params, writer_path: Path, report_path: Path) -> dict[str, Any]:
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for part in ("train", "test"):
        image, audio = _load_npy(root / f"image/{part}_data.npy"), _load_npy(root / f"audio/{part}_data.npy")
        labels = _load_npy(root / f"{part}_labels.npy")
        if image.ndim != 2 or image.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
            raise RawDataError(f"{root / f'image/{part}_data.npy'}: expected (N, 784) pixels, got {image.shape}")
        if audio.ndim not in (3, 4) or (audio.ndim == 4 and audio.shape[1] != 1):
            raise RawDataError(f"{root / f'audio/{part}_data.npy'}: expected (N, H, W) spectrograms, got {audio.shape}")
        if labels.ndim != 1 or not len(labels) == len(image) == len(audio):
            raise RawDataError(f"{root / f'{part}_labels.npy'}: {labels.shape} labels for {len(image)} images and "
                               f"{len(audio)} spectrograms; the three {part} files must have the same N")
        bad = np.setdiff1d(np.unique(labels), np.arange(10))
        if bad.size:
            raise RawDataError(f"{root / f'{part}_labels.npy'}: labels {bad[:5].tolist()} are not digits 0-9")
        arrays[part] = {"image": image, "audio": audio.reshape(len(audio), 1, *audio.shape[-2:]), "labels": labels}
    if arrays["train"]["audio"].shape[1:] != arrays["test"]["audio"].shape[1:]:
        raise RawDataError(f"{root / 'audio'}: train and test spectrograms differ in shape "
                           f"({arrays['train']['audio'].shape[1:]} vs {arrays['test']['audio'].shape[1:]})")
    picks = image_indices(len(arrays["train"]["labels"]), len(arrays["test"]["labels"]), params.split, params.limit)
    pool_of = {"train": "train", "val": "train", "test": "test"}
    meta = DatasetMeta(dataset=dataset, source=SOURCE, task="classification", modalities=MODALITIES,
                       class_names=CLASS_NAMES, preprocessing=preprocessing_record(params, "npy"))
    shapes = {"audio": (tuple(arrays["train"]["audio"].shape[1:]), "float32"),
              "image": ((1, IMAGE_SIDE, IMAGE_SIDE), "float32")}
    with DatasetWriter(writer_path, meta, shapes) as writer:
        for split in SPLITS:
            part = arrays[pool_of[split]]
            for row in tqdm(picks[split], desc=f"{dataset}: {split}", unit="sample", file=sys.stderr):
                sample = {"audio": np.asarray(part["audio"][row], dtype=np.float32),
                          "image": np.asarray(part["image"][row], dtype=np.float32).reshape(1, IMAGE_SIDE, IMAGE_SIDE)}
                writer.append(split, sample, int(part["labels"][row]), f"{pool_of[split]}{int(row):05d}")
        report = {"dataset": dataset, "source": SOURCE, "format": "npy", "raw_dir": str(root),
                  "counts": writer.counts(), "skipped": [], "skipped_fraction": 0.0,
                  "params": dataclasses.asdict(params)}
        write_json(report_path, report)
    return report


# ---------------------------------------------------------------------------------------------
# entry point


def preprocess(dataset: str, raw_dir: str | Path, params: Params, out_path: str | Path,
               report_path: str | Path, workers: int | None = None) -> dict[str, Any]:
    """Write the dataset file and the report; return the report.

    `workers` processes compute spectrograms (format build); the output does not depend on it.
    """
    root = Path(raw_dir)
    check_raw(root, params)
    fmt = detect_format(root, params)
    if fmt == "npy":
        return _npy(dataset, root, params, Path(out_path), Path(report_path))
    return _build(dataset, root, params, Path(out_path), Path(report_path), workers or params.workers)


def fail_on_skips(dataset: str, found: int, skipped: Sequence[Skipped], limit: float,
                  report_path: str | Path) -> None:
    """Above the limit, write the report of what was skipped, then stop without a dataset file."""
    if found and len(skipped) / found > limit:
        write_json(report_path, {"dataset": dataset, "source": SOURCE, "recordings_found": found,
                                 "skipped": [dataclasses.asdict(s) for s in skipped],
                                 "skipped_fraction": len(skipped) / found, "max_skipped_fraction": limit})
    check_skipped(dataset, "FSDD recordings", found, skipped, limit, report_path)


def preprocessing_record(params: Params, fmt: str) -> dict[str, Any]:
    """What made the file, minus `workers`, which never changes the output."""
    record = dataclasses.asdict(params)
    del record["workers"]
    return {"source": SOURCE, **record, "format": fmt}

