"""VGGSound source: the official CSV plus a folder of 10 s mp4 clips (video with sound) -> HDF5.

Audio is decoded from the mp4 itself (PyAV), resampled to 16 kHz and tiled to 10 s as the reference
does; the reference then takes a random 5 s window every epoch, here a fixed window (`audio.window`
seconds from `audio.window_start`, the middle 5 s by default, the reference's window on average;
`window: 10` stores the whole clip). Log-magnitude STFT with n_fft 256, hop 128 (129 x 626 for 5 s).
Video: frames at 1 fps, 3 of them per clip at the centres of equal segments, resized to squares.
See docs/vggsound.md for the layout, the CSV variants, what is skipped and how a run resumes.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.metadata
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from g2d.config.schema import require
from g2d.datasets import RawDataError
from g2d.datasets.common import Sample, Skipped, preprocessing_record, reason, report_header, write_dataset
from g2d.datasets.parallel import ordered_map
from g2d.datasets.resume import ShardStore, fingerprint, resumable, resume_folder
from g2d.datasets.splits import hold_out_stratified
from g2d.io.dataset_file import SPLITS, DatasetMeta
from g2d.transforms import audio as audio_transforms
from g2d.transforms import av_clip
from g2d.transforms import video as video_transforms
from g2d.transforms.audio import ClipAudioParams, clip_shapes, fit_length, log_spectrogram
from g2d.transforms.av_clip import decode_clip
from g2d.transforms.video import ClipVideoParams, pick_evenly

SOURCE = "vggsound"
MODALITIES: tuple[str, ...] = ("audio", "video")
IMAGE_MODALITIES: tuple[str, ...] = ("video",)
CLIP_SECONDS = 10  # every VGGSound clip spans start_seconds .. start_seconds + 10 (the `end_ms` of file names)
NAMING_FIELDS = ("youtube_id", "start", "start_ms", "end_ms")
HEADERS = (("youtube_id", "start_seconds", "label", "split"), ("youtube_id", "time", "label", "split"))
COLUMNS = HEADERS[0]
CSV_SPLITS = ("train", "test")
SHOWN_MISSING = 10
LAYOUT = """expected VGGSound layout:
  {raw_dir}/
    {csv}          rows youtube_id,start_seconds,label,split (split: train or test), with or without
                   the header youtube_id,time,label,split (e.g. ---g-f_I2yQ,1,people marching,test)
    {video_dir}/{naming}     one mp4 (video with its audio track) per row, e.g. {example}
VGGSound's CSV is at https://www.robots.ox.ac.uk/~vgg/data/vggsound/; the clips are YouTube videos you
download yourself (rows whose file is absent are counted in the report, not an error). If your files are
named {{youtube_id}}_{{start_ms}}_{{end_ms}}.mp4, set datasets.<name>.preprocess.naming to that."""


@dataclass(frozen=True)
class AudioParams(ClipAudioParams):
    """Sound -> log-spectrogram (defaults: the reference's). `duration`: the length a clip is tiled to;
    `window` seconds of it from `window_start` become the spectrogram; quieter clips than `min_peak`
    (the largest |sample|, full scale 1) are skipped as silent."""

    sample_rate: int = 16000
    duration: float = 10.0
    n_fft: int = 256
    hop_length: int = 128
    window: float = 5.0
    window_start: float = 2.5
    min_peak: float = 0.0001

    @property
    def window_samples(self) -> int:
        return int(round(self.window * self.sample_rate))

    @property
    def start_sample(self) -> int:
        return int(round(self.window_start * self.sample_rate))

    def validate(self, where: str) -> None:
        super().validate(where)
        require(self.hop_length > 0, f"{where}.hop_length", "must be a positive number of samples")
        require(self.window > 0, f"{where}.window", "must be a positive number of seconds")
        require(
            self.window_start >= 0 and self.window_start + self.window <= self.duration,
            f"{where}.window_start",
            f"the window [{self.window_start}, {self.window_start + self.window}] s must lie within the "
            f"{self.duration} s clip; lower window_start or window",
        )
        require(
            self.n_fft <= self.window_samples,
            f"{where}.n_fft",
            f"window of {self.n_fft} samples is longer than the {self.window_samples}-sample audio window",
        )
        require(0 <= self.min_peak < 1, f"{where}.min_peak", "must be in [0, 1) (full scale is 1)")


@dataclass(frozen=True)
class VideoParams(ClipVideoParams):
    """Frames per clip, at what rate and size (defaults: the reference's 3 frames at 1 fps, 224 px)."""

    frames: int = 3


@dataclass(frozen=True)
class SplitParams:
    """The CSV's train and test; `val_fraction` of each label's training clips (seeded) become validation."""

    val_fraction: float = 0.1
    seed: int = 0

    def validate(self, where: str) -> None:
        require(0 < self.val_fraction < 1, f"{where}.val_fraction", f"must be in (0, 1), got {self.val_fraction}")
        require(self.seed >= 0, f"{where}.seed", "must be a non-negative integer")


@dataclass(frozen=True)
class Params:
    """The `datasets.<name>.preprocess` section for source `vggsound` (docs/vggsound.md).

    `csv` and `video_dir` are relative to the dataset's raw_dir (or absolute); `naming` is the clip
    file name, a Python format string over youtube_id, start (seconds), start_ms and end_ms;
    `num_classes`, when set, is the number of labels the CSV must have (309 for the paper's CSV);
    `compression`: gzip level (1-9) of the stored frames, 0 for none; `resume`: keep finished shards
    of `shard_size` clips beside the output so that an interrupted run continues where it stopped.
    """

    csv: str = "vggsound.csv"
    video_dir: str = "video"
    naming: str = "{youtube_id}_{start:06d}.mp4"
    num_classes: int | None = None
    audio: AudioParams = field(default_factory=AudioParams)
    video: VideoParams = field(default_factory=VideoParams)
    split: SplitParams = field(default_factory=SplitParams)
    compression: int = 0
    max_skipped_fraction: float = 0.05
    resume: bool = True
    shard_size: int = 64
    workers: int = 1

    SPEED_ONLY: ClassVar[tuple[str, ...]] = ("workers", "resume", "shard_size")  # not in the file's record

    def validate(self, where: str) -> None:
        require(
            "{youtube_id" in self.naming,
            f"{where}.naming",
            f"must contain {{youtube_id}}; fields: {', '.join(NAMING_FIELDS)}",
        )
        require(
            "/" not in self.naming and os.sep not in self.naming,
            f"{where}.naming",
            "is a file name in video_dir, without folders; put the folder in video_dir",
        )
        try:
            clip_file_name(self.naming, "abc", 1)
        except (KeyError, IndexError, ValueError) as exc:
            require(
                False,
                f"{where}.naming",
                f"{self.naming!r} is not a format string over {', '.join(NAMING_FIELDS)} ({exc!r}), "
                "e.g. {youtube_id}_{start:06d}.mp4 or {youtube_id}_{start_ms}_{end_ms}.mp4",
            )
        require(self.num_classes is None or self.num_classes >= 2, f"{where}.num_classes", "must be at least 2")
        require(0 <= self.compression <= 9, f"{where}.compression", "must be a gzip level 1-9, or 0 for none")
        require(
            0 <= self.max_skipped_fraction <= 1,
            f"{where}.max_skipped_fraction",
            f"must be in [0, 1], got {self.max_skipped_fraction}",
        )
        require(self.shard_size >= 1, f"{where}.shard_size", "must be at least 1")
        require(self.workers >= 1, f"{where}.workers", "must be at least 1")


@dataclass(frozen=True)
class Row:
    """One CSV row: a 10 s clip of a YouTube video, its label and the CSV's split."""

    line: int
    youtube_id: str
    start: int
    label: str
    split: str

    @property
    def id(self) -> str:
        """The clip's id in the dataset file, whatever the files are named: the reference's name."""
        return f"{self.youtube_id}_{self.start:06d}"


@dataclass(frozen=True)
class Job:
    """One clip file to decode, the split and label it goes to, and the file's size and mtime (which
    a resumed run checks)."""

    id: str
    split: str
    label: int
    path: Path
    size: int
    mtime_ns: int


def clip_file_name(naming: str, youtube_id: str, start: int) -> str:
    """The file name of a clip under `naming`."""
    return naming.format(
        youtube_id=youtube_id, start=start, start_ms=start * 1000, end_ms=(start + CLIP_SECONDS) * 1000
    )


def check_raw(raw_dir: str | Path, params: Params | None = None) -> None:
    """Raise RawDataError showing the expected tree unless the CSV and the clip folder exist."""
    params = params or Params()
    root = Path(raw_dir)
    layout = _layout(root, params)
    if not root.is_dir():
        raise RawDataError(f"{root}: raw VGGSound folder not found\n{layout}")
    if not (root / params.csv).is_file():
        raise RawDataError(f"{root / params.csv}: CSV not found (preprocess.csv)\n{layout}")
    if not (root / params.video_dir).is_dir():
        raise RawDataError(f"{root / params.video_dir}: clip folder not found (preprocess.video_dir)\n{layout}")


def read_csv(path: Path) -> list[Row]:
    """The CSV's rows, with or without a header; RawDataError names the line and column of a bad row."""
    rows: list[Row] = []
    seen: dict[str, int] = {}
    first = True
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for line_no, fields in enumerate(csv.reader(fh), start=1):
            fields = [f.strip() for f in fields]
            if not any(fields):
                continue
            header, first = first and tuple(f.lower() for f in fields) in HEADERS, False
            if header:
                continue
            row = _parse_row(path, line_no, fields)
            if row.id in seen:
                raise RawDataError(
                    f"{path}, line {line_no}: clip {row.youtube_id} at {row.start} s is listed again "
                    f"(first on line {seen[row.id]}); delete one of the rows"
                )
            seen[row.id] = line_no
            rows.append(row)
    if not rows:
        raise RawDataError(f"{path}: holds no rows; expected lines like ---g-f_I2yQ,1,people marching,test")
    return rows


def _parse_row(path: Path, line_no: int, fields: list[str]) -> Row:
    def bad(column: int, message: str) -> RawDataError:
        return RawDataError(
            f"{path}, line {line_no}, column {column} ({COLUMNS[column - 1]}): {message}; fix or delete that row"
        )

    if len(fields) != len(COLUMNS):
        raise RawDataError(
            f"{path}, line {line_no}: expected {len(COLUMNS)} columns {','.join(COLUMNS)}, got {len(fields)} "
            "(quote a label that holds a comma); fix or delete that row"
        )
    youtube_id, start_text, label, split = fields
    if not youtube_id:
        raise bad(1, "empty YouTube id")
    try:
        start_value = float(start_text)
    except ValueError:
        raise bad(2, f"{start_text!r} is not a number of seconds") from None
    if not start_value.is_integer() or start_value < 0:
        raise bad(2, f"{start_text!r} is not a whole, non-negative number of seconds")
    if not label:
        raise bad(3, "empty label")
    if split not in CSV_SPLITS:
        raise bad(4, f"{split!r} is not one of {', '.join(CSV_SPLITS)}")
    return Row(line_no, youtube_id, int(start_value), label, split)


def class_names(rows: Sequence[Row], num_classes: int | None, csv_path: Path) -> tuple[str, ...]:
    """The CSV's labels, sorted (all rows count, present on disk or not, so that indices do not depend on
    what was downloaded); RawDataError if `num_classes` is set and differs."""
    names = tuple(sorted({r.label for r in rows}))
    if num_classes is not None and len(names) != num_classes:
        raise RawDataError(
            f"{csv_path}: has {len(names)} labels, preprocess.num_classes expects {num_classes}; use the full "
            "CSV or change num_classes (null accepts any number)"
        )
    return names


def list_clip_files(folder: Path) -> dict[str, tuple[int, int]]:
    """{file name: (size, mtime_ns)} of the files in `folder`, read once (one listing, not a lookup per row)."""
    with os.scandir(folder) as entries:
        return {e.name: (st.st_size, st.st_mtime_ns) for e in entries if e.is_file() for st in (e.stat(),)}


def plan(
    rows: Sequence[Row],
    names: Sequence[str],
    files: Mapping[str, tuple[int, int]],
    folder: Path,
    params: Params,
) -> tuple[list[Job], list[Row]]:
    """The jobs (rows with a file, in dataset order: split, then clip id) and the rows without a file.

    Test rows are the test split; `split.val_fraction` of each label's training clips with a file become
    validation (seeded).
    """
    labels = {name: i for i, name in enumerate(names)}
    present = [r for r in rows if clip_file_name(params.naming, r.youtube_id, r.start) in files]
    missing = [r for r in rows if clip_file_name(params.naming, r.youtube_id, r.start) not in files]
    train = [r for r in present if r.split == "train"]
    held_out = hold_out_stratified(
        [r.id for r in train], [r.label for r in train], params.split.val_fraction, params.split.seed
    )
    jobs = []
    for r in present:
        name = clip_file_name(params.naming, r.youtube_id, r.start)
        split = "test" if r.split == "test" else ("val" if r.id in held_out else "train")
        jobs.append(Job(r.id, split, labels[r.label], folder / name, *files[name]))
    jobs.sort(key=lambda j: (SPLITS.index(j.split), j.id))
    return jobs, missing


def preprocess(
    dataset: str,
    raw_dir: str | Path,
    params: Params,
    out_path: str | Path,
    report_path: str | Path,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write the dataset file and the report; return the report.

    `workers` (default: params.workers) decoding processes; the output does not depend on it, nor on
    whether the run resumed an interrupted one. If more than max_skipped_fraction of the clips found on
    disk are unusable, the report goes to `<dataset>.report.failed.json`, no dataset file is written, the
    finished shards are kept (for a rerun), and RawDataError names the first bad files.
    """
    root = Path(raw_dir)
    check_raw(root, params)
    csv_path, folder = root / params.csv, root / params.video_dir
    rows = read_csv(csv_path)
    names = class_names(rows, params.num_classes, csv_path)
    jobs, missing = plan(rows, names, list_clip_files(folder), folder, params)
    if not jobs:
        raise RawDataError(
            f"{folder}: none of the {len(rows)} clips of {csv_path} is there under the naming "
            f"{params.naming!r} (e.g. {folder / clip_file_name(params.naming, rows[0].youtube_id, rows[0].start)}); "
            f"check preprocess.naming and video_dir\n{_layout(root, params)}"
        )
    meta = DatasetMeta(
        dataset=dataset,
        source=SOURCE,
        task="classification",
        modalities=MODALITIES,
        class_names=names,
        preprocessing=preprocessing_record(SOURCE, params),
    )
    shapes = sample_shapes(params)
    decode = functools.partial(process_clip, audio=params.audio, video=params.video)
    warm_up(params.audio)
    n_workers = workers or params.workers
    store = ShardStore(resume_folder(out_path), decoding_fingerprint(params), shapes, params.shard_size)
    samples = (
        resumable(jobs, decode, n_workers, store, job_key) if params.resume else ordered_map(decode, jobs, n_workers)
    )
    report = write_dataset(
        meta,
        shapes,
        samples,
        total=len(jobs),
        unit="clip",
        out_path=out_path,
        report_path=report_path,
        found=len(jobs),
        what="VGGSound clips found on disk",
        max_skipped_fraction=params.max_skipped_fraction,
        report=functools.partial(build_report, dataset, root, params, rows, missing, len(names)),
        compression={"video": params.compression} if params.compression else None,
    )
    store.remove()
    return report


def process_clip(job: Job, audio: AudioParams, video: VideoParams) -> Sample | Skipped:
    """Decode one clip into {"audio": (1, F, T) float32, "video": (frames, 3, size, size) uint8}.

    Any failure (missing, empty, truncated or corrupt file, no audio or video track, silence) becomes a
    Skipped naming the file, so that one bad clip never stops the stage.
    """
    try:
        clip = decode_clip(job.path, audio.sample_rate, video.fps, video.size)
        peak = float(np.abs(clip.wave).max())
        if peak < audio.min_peak:
            return Skipped(
                job.id, str(job.path), f"silent: loudest sample {peak:.2g} < audio.min_peak {audio.min_peak}"
            )
        wave = fit_length(clip.wave, audio.n_samples)[audio.start_sample : audio.start_sample + audio.window_samples]
        spectrogram = log_spectrogram(wave, audio.n_fft, audio.hop_length)[np.newaxis]
        frames = np.stack([clip.frames[i] for i in pick_evenly(len(clip.frames), video.frames)])
    except Exception as exc:  # decoders raise many unrelated types; each is this clip's problem only
        return Skipped(job.id, str(job.path), reason(exc, job.path))
    origin = {"audio": str(job.path), "video": str(job.path)}
    return Sample(job.split, {"audio": spectrogram, "video": frames}, job.label, job.id, origin)


def job_key(job: Job) -> str:
    """What a job's decoded sample depends on besides the params: a resumed shard must match it."""
    return f"{job.id}\t{job.split}\t{job.label}\t{job.path.name}\t{job.size}\t{job.mtime_ns}"


def decoding_fingerprint(params: Params) -> str:
    """The params, code and library versions that decoding depends on (see g2d.datasets.resume)."""
    record = {"audio": dataclasses.asdict(params.audio), "video": dataclasses.asdict(params.video)}
    code = [Path(module.__file__ or "") for module in (audio_transforms, av_clip, video_transforms)] + [Path(__file__)]
    import cv2

    versions = {name: _version(name) for name in ("av", "librosa", "numpy", "soxr")} | {"cv2": cv2.__version__}
    return fingerprint(record, code, versions)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def warm_up(audio: AudioParams) -> None:
    """Import the decoders and run librosa's STFT once before workers fork (librosa's first call spends
    seconds on lazy imports, which forked workers then inherit)."""
    import av  # noqa: F401
    import cv2  # noqa: F401

    log_spectrogram(np.zeros(audio.n_fft, dtype=np.float32), audio.n_fft, audio.hop_length)


def sample_shapes(params: Params) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-sample array shapes and dtypes, for the writer."""
    a, v = params.audio, params.video
    return clip_shapes(a.window_samples, a.n_fft, a.hop_length, v.frames, v.size)


def build_report(
    dataset: str,
    root: Path,
    params: Params,
    rows: Sequence[Row],
    missing: Sequence[Row],
    n_classes: int,
    counts: Mapping[str, int],
    skipped: Sequence[Skipped],
) -> dict[str, Any]:
    """The JSON report: the CSV's rows, those without a file (counted, a few named), what was written and
    skipped (every clip, with the reason), and with which params."""
    found = len(rows) - len(missing)
    return {
        **report_header(dataset, SOURCE, root, counts, found, skipped, params),
        "csv_rows": len(rows),
        "classes": n_classes,
        "clips_found": found,
        "missing_files": len(missing),
        "missing_by_split": dict(sorted(Counter(r.split for r in missing).items())),
        "missing_examples": [
            str(root / params.video_dir / clip_file_name(params.naming, r.youtube_id, r.start))
            for r in missing[:SHOWN_MISSING]
        ],
    }


def _layout(root: Path, params: Params) -> str:
    example = clip_file_name(params.naming, "---g-f_I2yQ", 1)
    return LAYOUT.format(
        raw_dir=root, csv=params.csv, video_dir=params.video_dir, naming=params.naming, example=example
    )
