"""AV-MNIST built from its raw material: the four MNIST IDX files and the Free Spoken Digit Dataset.

Images are reconstructed from a truncated PCA basis fitted on the training split only; each is
paired with a recording of the same digit from its split's speakers, mixed with noise at
`noise.snr_db` and turned into a log-mel spectrogram (g2d.datasets.avmnist describes the whole build).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from g2d.datasets import RawDataError
from g2d.datasets.avmnist.layout import IMAGE_SHAPE, IMAGE_SIDE, MNIST_FILES, POOL, SOURCE, dataset_meta, image_indices
from g2d.datasets.avmnist.params import AudioParams, Params, SplitParams
from g2d.datasets.common import (
    Sample,
    Skipped,
    check_skipped,
    failed_report_path,
    reason,
    report_header,
    skip_fields,
    write_dataset,
)
from g2d.datasets.parallel import ordered_map
from g2d.io.atomic import write_json
from g2d.io.dataset_file import SPLITS
from g2d.transforms.audio import centre_fit, load_audio, log_mel_spectrogram
from g2d.transforms.degrade import fit_pca, pink_noise, scale_to_snr, white_noise

FSDD_NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z]+)_(?P<take>[0-9]+)$")


@dataclass(frozen=True)
class Recording:
    """One FSDD file, `<digit>_<speaker>_<take>.wav`, by its parts."""

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
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise RawDataError(
            f"{path}: header says {dims} = {expected} bytes of data, the file holds "
            f"{len(data) - header}; the file is truncated, re-download it"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_mnist(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train"|"test": (images (N, 28, 28) uint8, labels (N,) int64)} from the four IDX files."""
    out = {}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        images, labels = read_idx(root / images_name), read_idx(root / labels_name)
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise RawDataError(f"{root / images_name}: expected (N, 28, 28) images, got {images.shape}")
        if labels.shape != (images.shape[0],):
            raise RawDataError(
                f"{root / labels_name}: {labels.shape[0]} labels for {images.shape[0]} images in "
                f"{images_name}; the two files must come from the same MNIST release"
            )
        out[split] = (images, labels.astype(np.int64))
    return out


def find_recordings(folder: Path) -> tuple[list[Recording], list[Skipped]]:
    """FSDD recordings by name; files not named `<digit>_<speaker>_<take>.wav` are skipped."""
    found: list[Recording] = []
    skipped: list[Skipped] = []
    for path in sorted(folder.glob("*.wav")):
        match = FSDD_NAME.match(path.stem)
        if match is None:
            skipped.append(
                Skipped(path.stem, str(path), "name is not <digit>_<speaker>_<take>.wav (e.g. 3_theo_12.wav)")
            )
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
            raise RawDataError(
                f"split.{name}_speakers names {unknown}, not among the recordings' speakers "
                f"{available}; fix the speaker names in params.yaml"
            )
        out.update({s: name for s in group})
    if split.train_speakers is None:
        out.update({s: "train" for s in available if s not in out})
    if "train" not in out.values():
        raise RawDataError(f"no speaker is left for training (speakers: {available}); free one from val/test")
    return out


def pair_recordings(
    digits: np.ndarray, pools: Mapping[tuple[str, int], Sequence[str]], split: str, seed: int
) -> list[str]:
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
    spectrogram = log_mel_spectrogram(mixed, job.audio.sample_rate, job.audio.n_fft, job.audio.n_mels, job.audio.frames)
    return {"audio": spectrogram[np.newaxis]}


def decode_recordings(recordings: Sequence[Recording], sample_rate: int) -> tuple[dict[str, np.ndarray], list[Skipped]]:
    """Decode every recording once; unreadable files become skip records naming the file."""
    waves: dict[str, np.ndarray] = {}
    skipped: list[Skipped] = []
    for rec in tqdm(recordings, desc="FSDD: decoding", unit="file", file=sys.stderr, leave=False):
        try:
            waves[rec.name] = load_audio(rec.path, sample_rate)
        except Exception as exc:
            skipped.append(Skipped(rec.name, str(rec.path), reason(exc, rec.path)))
    return waves, skipped


def build(dataset: str, root: Path, params: Params, out_path: Path, report_path: Path, workers: int) -> dict[str, Any]:
    """Write the dataset file and the report from MNIST and FSDD; return the report. Unusable
    recordings beyond max_skipped_fraction stop it before any sample is made."""
    mnist = read_mnist(root / params.mnist_dir)
    picks = image_indices(len(mnist["train"][0]), len(mnist["test"][0]), params.split, params.limit)
    images = {s: mnist[POOL[s]][0][idx].reshape(len(idx), -1) for s, idx in picks.items()}
    labels = {s: mnist[POOL[s]][1][idx] for s, idx in picks.items()}
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
            raise RawDataError(
                f"{root / params.recordings_dir}: the {s} speakers {speakers} have no usable "
                f"recording of digits {lacking}; add recordings or change split.{s}_speakers"
            )
    bank = load_noise_bank(params) if params.noise.kind == "folder" else []
    names = {s: pair_recordings(labels[s], pools, s, params.split.seed) for s in SPLITS}

    def jobs(split: str) -> Iterator[AudioJob]:
        """Built lazily: each job holds a window of noise, so a split's worth would not fit in memory."""
        for i, name in enumerate(names[split]):
            rng = np.random.default_rng([params.split.seed, SPLITS.index(split), i, 1])
            noise = make_noise(params.noise.kind, rng, params.audio.n_samples, bank)
            yield AudioJob(waves[name], noise, params.noise.snr_db, params.audio)

    def samples() -> Iterator[Sample]:
        """Split by split: one split's degraded images in memory, its spectrograms from `workers` processes."""
        for split in SPLITS:
            degraded = pca.degrade(images[split]).reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
            with contextlib.closing(ordered_map(audio_features, jobs(split), workers)) as results:
                for i, audio in enumerate(results):
                    yield Sample(
                        split,
                        {**audio, "image": degraded[i]},
                        int(labels[split][i]),
                        f"{POOL[split]}{int(picks[split][i]):05d}+{names[split][i]}",
                    )

    def report(counts: Mapping[str, int], lost: Sequence[Skipped]) -> dict[str, Any]:
        return {
            **report_header(dataset, SOURCE, root, counts, found, lost, params),
            "format": "build",
            "recordings_found": found,
            "pca": {
                "fitted_on": "train",
                "fit_samples": int(len(images["train"])),
                "dims": pca.dims,
                "components_kept": pca.n_components,
                "energy_kept": round(pca.energy_kept, 6),
            },
            "speakers": {s: sorted(sp for sp, x in split_of_speaker.items() if x == s) for s in SPLITS},
            "mnist_rows": {s: f"{POOL[s]} file, {len(idx)} rows" for s, idx in picks.items()},
            "params": dataclasses.asdict(params),
        }

    shapes = {"audio": ((1, params.audio.n_mels, params.audio.frames), "float32"), "image": IMAGE_SHAPE}
    return write_dataset(
        dataset_meta(dataset, params, "build"),
        shapes,
        samples(),
        total=sum(len(n) for n in names.values()),
        unit="sample",
        out_path=out_path,
        report_path=report_path,
        report=report,
        found=found,
        what="FSDD recordings",
        max_skipped_fraction=params.max_skipped_fraction,
        skipped=skipped,
    )


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


def fail_on_skips(dataset: str, found: int, skipped: Sequence[Skipped], limit: float, report_path: str | Path) -> None:
    """Above the limit, write the report of what was skipped beside the last good one (its .failed.json;
    the dataset file and its report stay as they were), then stop."""
    failed = failed_report_path(report_path)
    if found and len(skipped) / found > limit:
        write_json(
            failed,
            {
                "dataset": dataset,
                "source": SOURCE,
                "recordings_found": found,
                **skip_fields(found, skipped),
                "max_skipped_fraction": limit,
            },
        )
    check_skipped(dataset, "FSDD recordings", found, skipped, limit, failed)
