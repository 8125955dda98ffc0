"""CREMA-D source: AudioWAV/ + VideoFlash/ clips -> log-spectrograms and sampled frames in HDF5.

Audio follows the reference (load at 22,050 Hz, tile to 3 s, log|STFT| with n_fft 512 and hop
353 -> 257 x 188); video keeps RGB frames sampled at `fps` (1 frame at 1 fps in the reference),
resized to a square so that augmentation (random resized crop, flip) can happen at training time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from g2d.config.schema import require
from g2d.datasets import RawDataError
from g2d.datasets.common import Sample, Skipped, preprocessing_record, reason, report_header, write_dataset
from g2d.datasets.parallel import ordered_map
from g2d.datasets.splits import SplitError, read_split_list, split_by_group, split_from_lists
from g2d.io.dataset_file import SPLITS, DatasetMeta
from g2d.transforms.audio import ClipAudioParams, clip_shapes, fit_length, load_audio, log_spectrogram
from g2d.transforms.video import ClipVideoParams, sample_frames

SOURCE = "cremad"
MODALITIES: tuple[str, ...] = ("audio", "video")
IMAGE_MODALITIES: tuple[str, ...] = ("video",)  # frame stacks: what `augment` may crop and flip
CLASS_NAMES: tuple[str, ...] = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
VIDEO_EXTENSIONS: tuple[str, ...] = (".flv", ".mp4", ".avi")
CLIP_PATTERN = re.compile(r"^(?P<actor>\d+)_(?P<sentence>[A-Z]+)_(?P<emotion>[A-Z]+)_(?P<level>[A-Z]+)$")
LAYOUT = """expected CREMA-D layout:
  {raw_dir}/
    AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav    e.g. AudioWAV/1001_DFA_ANG_XX.wav
    VideoFlash/<same clip name>.flv                      (.mp4 and .avi are read too)
    processedResults/summaryTable.csv                    (optional, not needed)
Get CREMA-D from https://github.com/CheyneyComputerScience/CREMA-D (its files are in Git LFS: run
`git lfs pull`), or write the synthetic stand-in with g2d.datasets.demo.generate."""


@dataclass(frozen=True)
class AudioParams(ClipAudioParams):
    """How a clip's sound becomes a log-spectrogram (defaults: the reference's)."""

    hop_length: int = 353

    def validate(self, where: str) -> None:
        super().validate(where)
        require(self.hop_length > 0, f"{where}.hop_length", "must be a positive number of samples")
        require(
            self.n_fft <= self.n_samples,
            f"{where}.n_fft",
            f"window of {self.n_fft} samples is longer than the {self.n_samples}-sample clip; "
            "lower n_fft or raise duration",
        )


@dataclass(frozen=True)
class VideoParams(ClipVideoParams):
    """How many frames are kept per clip, at what rate and size (defaults: the reference's)."""


@dataclass(frozen=True)
class SplitParams:
    """Speaker-independent split by actor (default), or the literature's lists (random over clips).

    List paths are read as given: relative ones from the working directory (the project root).
    """

    by: Literal["actor", "list"] = "actor"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    train_list: str | None = None
    test_list: str | None = None

    def validate(self, where: str) -> None:
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            require(0 <= value < 1, f"{where}.{name}", f"must be in [0, 1), got {value}")
        require(self.seed >= 0, f"{where}.seed", "must be a non-negative integer")
        if self.by == "actor":
            require(
                self.val_fraction + self.test_fraction < 1,
                f"{where}.test_fraction",
                "val_fraction + test_fraction must stay below 1 so that actors remain for training",
            )
        else:
            for name in ("train_list", "test_list"):
                require(
                    bool(getattr(self, name)),
                    f"{where}.{name}",
                    "a path to a `clip,LABEL` list is required when split.by is 'list'",
                )


@dataclass(frozen=True)
class Params:
    """The `datasets.<name>.preprocess` section for source `cremad`."""

    audio: AudioParams = field(default_factory=AudioParams)
    video: VideoParams = field(default_factory=VideoParams)
    split: SplitParams = field(default_factory=SplitParams)
    max_skipped_fraction: float = 0.05
    workers: int = 1

    def validate(self, where: str) -> None:
        require(
            0 <= self.max_skipped_fraction <= 1,
            f"{where}.max_skipped_fraction",
            f"must be in [0, 1], got {self.max_skipped_fraction}",
        )
        require(self.workers >= 1, f"{where}.workers", "must be at least 1")


@dataclass(frozen=True)
class Clip:
    """The parts of a clip name `<actor>_<sentence>_<emotion>_<level>`."""

    name: str
    actor: str
    sentence: str
    emotion: str
    level: str

    @property
    def label(self) -> int:
        return CLASS_NAMES.index(self.emotion)


@dataclass(frozen=True)
class Job:
    """One clip to decode and the split it goes to."""

    clip: Clip
    split: str
    wav: Path
    video: Path


def parse_clip(name: str) -> Clip:
    """Split a clip name into its parts; ValueError says what is wrong with it."""
    match = CLIP_PATTERN.match(name)
    if match is None:
        raise ValueError(f"name {name!r} is not <actor>_<sentence>_<emotion>_<level> (e.g. 1001_DFA_ANG_XX)")
    if match["emotion"] not in CLASS_NAMES:
        raise ValueError(f"emotion {match['emotion']!r} in {name!r} is not one of {', '.join(CLASS_NAMES)}")
    return Clip(name=name, **match.groupdict())


def check_raw(raw_dir: str | Path, params: Params | None = None) -> None:
    """Raise RawDataError showing the expected tree unless audio and video folders hold files.

    `params` is unused: the CREMA-D layout is fixed.
    """
    root = Path(raw_dir)
    layout = LAYOUT.format(raw_dir=root)
    if not root.is_dir():
        raise RawDataError(f"{root}: raw CREMA-D folder not found\n{layout}")
    wavs = sorted((root / "AudioWAV").glob("*.wav"))
    if not wavs:
        raise RawDataError(f"{root / 'AudioWAV'}: missing or holds no .wav file\n{layout}")
    if not _video_files(root):
        raise RawDataError(f"{root / 'VideoFlash'}: missing or holds no {'/'.join(VIDEO_EXTENSIONS)} file\n{layout}")
    if _is_lfs_pointer(wavs[0]):
        raise RawDataError(f"{wavs[0]}: is a Git LFS pointer, not audio; run `git lfs pull` in the CREMA-D clone")


def preprocess(
    dataset: str,
    raw_dir: str | Path,
    params: Params,
    out_path: str | Path,
    report_path: str | Path,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write the dataset file and the report; return the report.

    `workers` (default: params.workers) decoding processes; the output does not depend on it.
    If more than max_skipped_fraction of the clips are unusable, the report is written, the
    dataset file is not, and RawDataError names the first bad files.
    """
    check_raw(raw_dir)
    root = Path(raw_dir)
    clips, skipped = find_clips(root)
    found = len(clips) + len(skipped)
    assignment, split_notes = assign_splits(clips, params.split)
    jobs = sorted(
        (Job(clip, assignment[clip.name], wav, video) for clip, wav, video in clips if clip.name in assignment),
        key=lambda j: (SPLITS.index(j.split), j.clip.name),
    )
    meta = DatasetMeta(
        dataset=dataset,
        source=SOURCE,
        task="classification",
        modalities=MODALITIES,
        class_names=CLASS_NAMES,
        preprocessing=preprocessing_record(SOURCE, params),
    )
    decode = functools.partial(process_clip, audio=params.audio, video=params.video)
    warm_up(params.audio)
    return write_dataset(
        meta,
        sample_shapes(params),
        ordered_map(decode, jobs, workers or params.workers),
        total=len(jobs),
        unit="clip",
        out_path=out_path,
        report_path=report_path,
        found=found,
        what="CREMA-D clips",
        max_skipped_fraction=params.max_skipped_fraction,
        skipped=skipped,
        report=functools.partial(build_report, dataset, root, params, found, split_notes=split_notes),
    )


def find_clips(root: Path) -> tuple[list[tuple[Clip, Path, Path]], list[Skipped]]:
    """Pair AudioWAV/<clip>.wav with VideoFlash/<clip>.<ext>; clips lacking either or a valid name are skipped."""
    wavs = {p.stem: p for p in sorted((root / "AudioWAV").glob("*.wav"))}
    videos = _video_files(root)
    clips: list[tuple[Clip, Path, Path]] = []
    skipped: list[Skipped] = []
    for name in sorted(set(wavs) | set(videos)):
        if name not in videos:
            skipped.append(Skipped(name, str(wavs[name]), f"no video VideoFlash/{name}.flv/.mp4/.avi"))
        elif name not in wavs:
            skipped.append(Skipped(name, str(videos[name]), f"no audio AudioWAV/{name}.wav"))
        else:
            try:
                clips.append((parse_clip(name), wavs[name], videos[name]))
            except ValueError as exc:
                skipped.append(Skipped(name, str(wavs[name]), str(exc)))
    return clips, skipped


def assign_splits(
    clips: Sequence[tuple[Clip, Path, Path]], split: SplitParams
) -> tuple[dict[str, str], dict[str, Any]]:
    """{clip: split} plus notes for the report (clips the lists leave out or name but lack)."""
    try:
        return _assign_splits(clips, split)
    except SplitError as exc:
        raise RawDataError(f"cannot split the CREMA-D clips: {exc}") from exc


def _assign_splits(
    clips: Sequence[tuple[Clip, Path, Path]], split: SplitParams
) -> tuple[dict[str, str], dict[str, Any]]:
    ids = [c.name for c, _, _ in clips]
    if split.by == "actor":
        return split_by_group(
            ids, [c.actor for c, _, _ in clips], split.val_fraction, split.test_fraction, split.seed
        ), {}
    train_path, test_path = str(split.train_list), str(split.test_list)
    lists = {path: read_split_list(path, CLASS_NAMES) for path in (train_path, test_path)}
    by_name = {c.name: c for c, _, _ in clips}
    for path, listed in lists.items():
        wrong = [
            f"{name} labelled {label}"
            for name, label in listed.items()
            if name in by_name and by_name[name].emotion != label
        ]
        if wrong:
            raise RawDataError(
                f"{path}: {len(wrong)} labels disagree with the clip names, e.g. {wrong[:3]}; fix the list"
            )
    train, test = lists[train_path], lists[test_path]
    assignment = split_from_lists(ids, train, test, split.val_fraction, split.seed)
    in_lists = set(train) | set(test)
    notes = {"not_in_lists": sorted(set(ids) - set(assignment)), "listed_but_missing": sorted(in_lists - set(ids))}
    return assignment, notes


def process_clip(job: Job, audio: AudioParams, video: VideoParams) -> Sample | Skipped:
    """Decode one clip into {"audio": (1, F, T) float32, "video": (frames, 3, size, size) uint8}.

    Any decoding failure becomes a Skipped naming the file, so that one bad clip never stops the stage.
    """
    try:
        wave = fit_length(load_audio(job.wav, audio.sample_rate), audio.n_samples)
        spectrogram = log_spectrogram(wave, audio.n_fft, audio.hop_length)[np.newaxis]
    except Exception as exc:
        return Skipped(job.clip.name, str(job.wav), reason(exc, job.wav))
    try:
        frames = sample_frames(job.video, video.fps, video.frames, video.size)
    except Exception as exc:
        return Skipped(job.clip.name, str(job.video), reason(exc, job.video))
    origin = {"audio": str(job.wav), "video": str(job.video)}
    return Sample(job.split, {"audio": spectrogram, "video": frames}, job.clip.label, job.clip.name, origin)


def warm_up(audio: AudioParams) -> None:
    """Run the decoders once on nothing, before workers fork: librosa's first STFT spends seconds on
    lazy imports and compilation, which forked workers then inherit instead of each paying again."""
    import cv2  # noqa: F401  (imported for the workers to inherit)

    log_spectrogram(np.zeros(audio.n_fft, dtype=np.float32), audio.n_fft, audio.hop_length)


def sample_shapes(params: Params) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-sample array shapes and dtypes, for the writer."""
    a, v = params.audio, params.video
    return clip_shapes(a.n_samples, a.n_fft, a.hop_length, v.frames, v.size)


def build_report(
    dataset: str,
    root: Path,
    params: Params,
    found: int,
    counts: Mapping[str, int],
    skipped: Sequence[Skipped],
    split_notes: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON report: what was found, written and skipped, and with which params."""
    return {
        **report_header(dataset, SOURCE, root, counts, found, skipped, params),
        "clips_found": found,
        **split_notes,
    }


def _video_files(root: Path) -> dict[str, Path]:
    """{clip: video path}, preferring extensions in VIDEO_EXTENSIONS order."""
    found: dict[str, Path] = {}
    for ext in reversed(VIDEO_EXTENSIONS):
        found.update({p.stem: p for p in sorted((root / "VideoFlash").glob(f"*{ext}"))})
    return found


def _is_lfs_pointer(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(24).startswith(b"version https://git-lfs")
