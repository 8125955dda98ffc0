"""Generated VGGSound-format raw data: mp4 clips with sound, written with PyAV, and the CSV.

Used by the tests (tiny clips in several codecs, broken files of each kind) and by
bench/vggsound_preprocess.py (full-length clips at YouTube's usual 360p). Each label gets its own
tone and its own colour, so that a model can learn something from either modality. Not a stage.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from g2d.datasets.vggsound import clip_file_name

# Audio codecs PyAV's wheels can write into mp4, with a sample rate each accepts.
AUDIO_CODECS: dict[str, int] = {"aac": 44100, "libmp3lame": 22050, "libopus": 48000, "ac3": 48000}
# truncated: cut in half, losing the index (mp4 writers put it last); cut: written with the index first
# (`faststart`, as YouTube serves mp4) and cut at 60%, so that decoding fails part-way.
Fault = Literal["none", "missing", "empty", "truncated", "cut", "no_audio", "silent"]


@dataclass(frozen=True)
class ClipSpec:
    """One CSV row and how its file is written (`fault`: none, or which broken file to leave instead)."""

    youtube_id: str
    start: int
    label: str
    split: str
    seconds: float = 1.0
    fps: int = 8
    width: int = 64
    height: int = 64
    audio_codec: str = "aac"
    video_codec: str = "libx264"
    x264_preset: str = "ultrafast"  # the benchmark uses a slower one: YouTube's H.264 has B-frames and CABAC
    fault: Fault = "none"


def label_tone(label: str) -> float:
    """A label's tone in Hz (stable across runs: from the label's bytes, not Python's salted hash)."""
    return 220.0 + 40.0 * (sum(label.encode()) % 40)


def write_clip(path: Path, spec: ClipSpec, seed: int = 0) -> Path:
    """Write one mp4: a bar moving over a panning texture of the label's colour, and the label's tone in noise
    (`fault` aside)."""
    import av

    rng = np.random.default_rng([seed, sum(spec.youtube_id.encode()), spec.start])
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.fault == "empty":
        path.write_bytes(b"")
        return path
    rate = AUDIO_CODECS[spec.audio_codec]
    n = int(round(spec.seconds * rate))
    t = np.arange(n) / rate
    amplitude = 0.0 if spec.fault == "silent" else 0.3
    wave = amplitude * np.sin(2 * np.pi * label_tone(spec.label) * t) + amplitude * 0.1 * rng.standard_normal(n)
    stereo = np.stack([wave, wave]).astype(np.float32)
    colour = np.frombuffer(spec.label.encode().ljust(3, b"x")[:3], dtype=np.uint8) // 2 + 64
    options = {"movflags": "faststart"} if spec.fault == "cut" else {}
    with av.open(os.fspath(path), "w", format="mp4", options=options) as container:
        video: Any = container.add_stream(spec.video_codec, rate=spec.fps)  # PyAV types it by codec name
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        if spec.video_codec == "libx264":
            video.options = {"preset": spec.x264_preset}
        audio: Any = None
        if spec.fault != "no_audio":
            audio = container.add_stream(spec.audio_codec, rate=rate)
            audio.layout = "stereo"
        if audio is not None:
            for start in range(0, n, 1024):
                sound = av.AudioFrame.from_ndarray(stereo[:, start : start + 1024], format="fltp", layout="stereo")
                sound.sample_rate, sound.pts = rate, start
                container.mux(audio.encode(sound))
            container.mux(audio.encode(None))
        texture = colour + rng.integers(0, 32, size=(spec.height, spec.width, 3), dtype=np.uint8)
        for i in range(int(round(spec.seconds * spec.fps))):
            image = np.roll(texture, 2 * i, axis=1)  # a panning texture: motion an encoder predicts, as in real video
            x = (i * 4) % spec.width
            image[:, x : x + max(1, spec.width // 8)] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    if spec.fault in ("truncated", "cut"):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * (5 if spec.fault == "truncated" else 6) // 10])
    return path


def write_raw(
    root: Path,
    clips: Sequence[ClipSpec],
    naming: str = "{youtube_id}_{start:06d}.mp4",
    header: bool = False,
    csv_name: str = "vggsound.csv",
    video_dir: str = "video",
    seed: int = 0,
) -> Path:
    """A raw VGGSound folder: the CSV (with or without the header) and one file per clip under `naming`
    (none for fault 'missing')."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / csv_name, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        if header:
            writer.writerow(["youtube_id", "time", "label", "split"])
        for spec in clips:
            writer.writerow([spec.youtube_id, spec.start, spec.label, spec.split])
            if spec.fault != "missing":
                write_clip(root / video_dir / clip_file_name(naming, spec.youtube_id, spec.start), spec, seed)
    return root
