"""Frame sampling from video files with OpenCV, as the reference does (frames at a fixed rate)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from g2d.config.schema import require

T = TypeVar("T")


@dataclass(frozen=True)
class ClipVideoParams:
    """How many frames are kept per clip, at what rate and size (defaults: the CREMA-D reference's).
    Sources subclass it with their own defaults, as ClipAudioParams for sound."""

    fps: float = 1.0
    frames: int = 1
    size: int = 224

    def validate(self, where: str) -> None:
        require(self.fps > 0, f"{where}.fps", "must be a positive frame rate")
        require(self.frames >= 1, f"{where}.frames", "must be at least 1")
        require(self.size >= 1, f"{where}.size", "must be a positive number of pixels")


class VideoDecodeError(ValueError):
    """A video file could not be turned into frames; the message names the file and why."""


def sample_frames(path: str | os.PathLike[str], fps: float, n_frames: int, size: int) -> np.ndarray:
    """Return `n_frames` RGB frames of `path` as uint8 (n_frames, 3, size, size).

    Frames are first taken every 1/fps seconds from the start (the decoded frame nearest each
    timestamp, timed by the container's frame rate; a frame serves one timestamp at most), reading
    sequentially because seeking is unreliable in FLV. Then `n_frames` of those are picked at the centres of equal
    segments (one frame -> the middle one); a clip with fewer samples repeats its last one.
    """
    sampled = _frames_every(path, fps, size)
    return np.stack([sampled[i] for i in pick_evenly(len(sampled), n_frames)])


def pick_evenly(available: int, wanted: int) -> list[int]:
    """Indices of `wanted` items spread over `available` (segment centres; last one repeated if short)."""
    if available <= 0 or wanted <= 0:
        raise ValueError(f"need at least one item to pick from and to pick, got {available} and {wanted}")
    if available < wanted:
        return list(range(available)) + [available - 1] * (wanted - available)
    return [int((i + 0.5) * available / wanted) for i in range(wanted)]


def _frames_every(path: str | os.PathLike[str], fps: float, size: int) -> list[np.ndarray]:
    """Decode `path` sequentially, keeping one resized RGB frame per 1/fps seconds."""
    import cv2

    if fps <= 0 or size <= 0:
        raise ValueError(f"fps and size must be positive, got {fps} and {size}")
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: no such video file")
    capture = cv2.VideoCapture(os.fspath(path))
    try:
        if not capture.isOpened():
            raise VideoDecodeError(f"{path}: OpenCV cannot open this video; re-download or remove it")
        native_fps = capture.get(cv2.CAP_PROP_FPS)
        if not math.isfinite(native_fps) or native_fps <= 0:
            raise VideoDecodeError(f"{path}: the container reports no frame rate ({native_fps}); re-encode it")
        kept = [to_rgb_square(frame, size) for frame in at_rate(_timed_frames(capture, native_fps), fps)]
    finally:
        capture.release()
    if not kept:
        raise VideoDecodeError(f"{path}: no frame could be decoded; the file is empty or corrupt, replace it")
    return kept


def _timed_frames(capture: Any, native_fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(centre time in seconds, BGR frame) of each frame OpenCV reads, timed by the container's rate."""
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok or frame is None:
            return
        yield index / native_fps + 0.5 / native_fps, frame
        index += 1


def at_rate(timed: Iterable[tuple[float, T]], fps: float) -> Iterator[T]:
    """The items nearest each multiple of 1/fps seconds, given (centre time, item) in time order: the
    first item whose time reaches the next target; an item serves one target at most (a slow video
    skips targets rather than repeating frames). Only the items kept are ever converted by callers."""
    target = 0
    for time, item in timed:
        if time >= target / fps:
            yield item
            target = math.floor(time * fps) + 1


def to_rgb_square(frame: np.ndarray, size: int) -> np.ndarray:
    """BGR (H, W, 3) -> RGB (3, size, size), resized with area averaging."""
    import cv2

    resized = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(resized, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))
