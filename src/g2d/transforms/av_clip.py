"""Sound and frames of one video file with an audio track (mp4 and the like), decoded with PyAV.

PyAV ships its own FFmpeg libraries, so no system binary is needed. The file is read once: audio
and video packets are demuxed together. Frames are chosen and resized as g2d.transforms.video does
for OpenCV (`at_rate`, `to_rgb_square`) and sound goes through the same checks and resampling as
every other decoder (`conform`), so a source reading mp4 files does not differ in its signal
processing from one reading wav and flv files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from g2d.transforms.audio import conform
from g2d.transforms.video import at_rate, to_rgb_square

TRUNCATION_TOLERANCE_S = 0.5  # sound this much shorter than the container declares means a cut-off file


class ClipDecodeError(ValueError):
    """A video file could not be turned into sound and frames; the message names the file and why."""


@dataclass(frozen=True)
class DecodedClip:
    """A clip's mono sound at the asked rate and its frames sampled at the asked fps, RGB (3, size, size)."""

    wave: np.ndarray
    frames: list[np.ndarray]


def decode_clip(path: str | os.PathLike[str], sample_rate: int, fps: float, size: int) -> DecodedClip:
    """Decode `path`: all of its first audio track, and one frame per 1/fps seconds of its first video track.

    Raises ClipDecodeError for a missing, empty, unopenable or truncated file and for one without an
    audio or a video track. Decoders run single-threaded: parallelism comes from worker processes.
    """
    import av

    if not os.path.isfile(path):
        raise ClipDecodeError(f"{path}: no such video file")
    if os.path.getsize(path) == 0:
        raise ClipDecodeError(f"{path}: file is empty (0 bytes); re-download or remove it")
    try:
        container = av.open(os.fspath(path))
    except av.FFmpegError as exc:
        raise ClipDecodeError(
            f"{path}: cannot be opened, truncated or not a video ({exc.strerror or exc}); re-download or remove it"
        ) from exc
    with container:
        if not container.streams.audio:
            raise ClipDecodeError(f"{path}: has no audio track; the clip cannot give a spectrogram")
        if not container.streams.video:
            raise ClipDecodeError(f"{path}: has no video track; the clip cannot give frames")
        video, audio = container.streams.video[0], container.streams.audio[0]
        for stream in (video, audio):
            stream.codec_context.thread_count = 1
        chunks: list[np.ndarray] = []
        try:
            frames = [
                to_rgb_square(frame.to_ndarray(format="bgr24"), size)
                for frame in at_rate(_demux(container, video, audio, chunks), fps)
            ]
        except av.FFmpegError as exc:
            raise ClipDecodeError(
                f"{path}: truncated or corrupt ({exc.strerror or exc}); re-download or remove it"
            ) from exc
        rate = audio.rate or audio.codec_context.sample_rate
        declared = _declared_seconds(container, audio)
    if not frames:
        raise ClipDecodeError(f"{path}: no video frame could be decoded; the file is truncated or corrupt")
    decoded = sum(c.shape[0] for c in chunks)
    if declared is not None and decoded / rate < declared - TRUNCATION_TOLERANCE_S:
        raise ClipDecodeError(
            f"{path}: truncated: {decoded / rate:.2f} s of sound decoded of the {declared:.2f} s the file declares; "
            "re-download or remove it"
        )
    wave = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return DecodedClip(conform(wave, rate, sample_rate, path), frames)


def _demux(container: Any, video: Any, audio: Any, chunks: list[np.ndarray]) -> Iterator[tuple[float, Any]]:
    """(centre time in seconds, frame) of each video frame in order; audio frames go to `chunks` as mono
    float32 at the native rate (channels averaged, as the other decoders mix to mono)."""
    import av

    to_float = av.AudioResampler(format="fltp")  # keeps rate and layout; only the sample format changes
    rate = video.average_rate
    half_frame = 0.5 / float(rate) if rate else 0.0
    start = video.start_time or 0
    index = 0
    for packet in container.demux(video, audio):
        for frame in packet.decode():
            if packet.stream.type == "audio":
                for converted in to_float.resample(frame):
                    chunks.append(converted.to_ndarray().mean(axis=0, dtype=np.float32))
                continue
            if frame.pts is not None and video.time_base is not None:
                time = float((frame.pts - start) * video.time_base)
            else:
                time = index / float(rate or 1)
            index += 1
            yield time + half_frame, frame


def _declared_seconds(container: Any, audio: Any) -> float | None:
    """How long the audio track says it is (its own duration, else the container's), or None if unknown."""
    if audio.duration is not None and audio.time_base is not None:
        return float(audio.duration * audio.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None
