"""A synthetic stand-in for CREMA-D, in its exact raw layout, for running the pipeline without it.

Both modalities carry the emotion, with CREMA-D's imbalance built in:
  - audio is easy and learned fast but tops out low on new speakers: each emotion is a harmonic
    tone with its own fundamental and amplitude-modulation rate in white noise at `audio_snr_db`,
    and every actor's voice scales all fundamentals by its own factor (`actor_pitch_spread`) and
    all rates by another (`actor_rate_spread`). Within the training actors a tone names its emotion;
    on an unseen actor it can sound like a neighbouring emotion of a training actor, as a voice in
    CREMA-D does. `audio_informative` of the clips carry their own emotion's tone, the rest another
    emotion's;
  - video is hard and slow to learn but reaches higher: a face-like scene on a textured, noisy
    background, whose mouth is one of six small glyphs drawn at `video_contrast` against the skin,
    jittering from frame to frame; `video_informative` of the clips show their emotion's glyph,
    the rest show no mouth at all. The glyphs are the same for every actor, so video transfers to
    new actors.
Every random draw comes from numpy Generators seeded by (seed, clip index) or (seed, actor), so
the same params give the same files, and changing one modality's knobs leaves the other's draws alone.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from g2d.config.schema import require
from g2d.datasets.cremad import CLASS_NAMES
from g2d.io.atomic_dir import generated_dir

SENTENCES: tuple[str, ...] = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
FIRST_ACTOR = 1001
LEVEL = "XX"
TONE_HZ: tuple[float, ...] = (140.0, 185.0, 245.0, 320.0, 420.0, 550.0)
MODULATION_HZ: tuple[float, ...] = (1.5, 3.0, 4.5, 6.5, 9.0, 12.0)
HARMONICS: tuple[float, ...] = (1.0, 0.5, 0.25)
SIGNAL_RMS = 0.1
FADE_SECONDS = 0.02
FLV1_CODEC_TAG = 2  # FFmpeg's FLV container tag for Sorenson H.263
SUMMARY_HEADER = ("FileName", "VoiceVote", "VoiceLevel", "FaceVote", "FaceLevel", "MultiModalVote", "MultiModalLevel")

# Stream ids that keep actor-level and clip-level random draws independent.
CLIP_STREAM = 0
ACTOR_STREAM = 1


@dataclass(frozen=True)
class Params:
    """Size of the synthetic dataset and how informative each modality is."""

    seed: int = 0
    actors: int = 10
    sentences: int = 10
    sample_rate: int = 8000
    min_duration: float = 1.0
    max_duration: float = 3.0
    fps: float = 10.0
    frame_size: int = 48
    audio_informative: float = 1.0
    audio_snr_db: float = 5.0
    actor_pitch_spread: float = 0.35
    actor_rate_spread: float = 0.35
    video_informative: float = 0.9
    video_contrast: float = 0.35
    video_noise: float = 0.06

    def validate(self, where: str) -> None:
        require(self.seed >= 0, f"{where}.seed", "must be a non-negative integer")
        require(1 <= self.actors <= 9999 - FIRST_ACTOR, f"{where}.actors", f"must be in [1, {9999 - FIRST_ACTOR}]")
        require(
            1 <= self.sentences <= len(SENTENCES),
            f"{where}.sentences",
            f"must be in [1, {len(SENTENCES)}] (CREMA-D has {len(SENTENCES)} sentences)",
        )
        nyquist_needed = 2 * len(HARMONICS) * max(TONE_HZ) * (1 + self.actor_pitch_spread) * 1.1
        require(
            self.sample_rate >= nyquist_needed,
            f"{where}.sample_rate",
            f"must be at least {math.ceil(nyquist_needed)} Hz to hold the highest tone's harmonics",
        )
        require(self.min_duration > 0, f"{where}.min_duration", "must be a positive number of seconds")
        require(self.max_duration >= self.min_duration, f"{where}.max_duration", "must be at least min_duration")
        require(self.fps > 0, f"{where}.fps", "must be a positive frame rate")
        require(self.frame_size >= 24, f"{where}.frame_size", "must be at least 24 pixels to draw a face")
        for name in ("audio_informative", "video_informative"):
            require(0 <= getattr(self, name) <= 1, f"{where}.{name}", "must be a fraction in [0, 1]")
        for name in ("actor_pitch_spread", "actor_rate_spread"):
            require(0 <= getattr(self, name) < 0.5, f"{where}.{name}", "must be in [0, 0.5)")
        require(math.isfinite(self.audio_snr_db), f"{where}.audio_snr_db", "must be a finite number of dB")
        require(0 < self.video_contrast <= 1, f"{where}.video_contrast", "must be in (0, 1]")
        require(self.video_noise >= 0, f"{where}.video_noise", "must be a non-negative noise level")


@dataclass(frozen=True)
class Actor:
    """What stays the same across an actor's clips: voice pitch and tempo, face size and skin tone."""

    code: str
    pitch: float
    rate: float
    face_scale: float
    skin_bgr: tuple[float, float, float]


@dataclass(frozen=True)
class ClipPlan:
    """One clip to synthesise: its name, true emotion and which emotion each modality shows."""

    index: int
    name: str
    actor: Actor
    emotion: int
    audio_emotion: int
    video_emotion: int | None
    duration: float
    streams: tuple[np.random.SeedSequence, np.random.SeedSequence]


def generate(out_dir: str | Path, params: Params, force: bool = False) -> dict[str, Any]:
    """Write the synthetic CREMA-D tree to `out_dir`, replacing it only once all files are written, and
    only if it is empty or an earlier demo (or `force`)."""
    target = Path(out_dir)
    plans = plan_clips(params)
    with generated_dir(target, force) as staging:
        for folder in ("AudioWAV", "VideoFlash", "processedResults"):
            (staging / folder).mkdir()
        for plan in plans:
            write_wav(staging / "AudioWAV" / f"{plan.name}.wav", synth_audio(plan, params), params.sample_rate)
            write_flv(staging / "VideoFlash" / f"{plan.name}.flv", synth_video(plan, params), params.fps)
        write_summary_table(staging / "processedResults" / "summaryTable.csv", plans)
        summary = {
            "out_dir": str(target),
            "clips": len(plans),
            "actors": params.actors,
            "sentences": params.sentences,
            "classes": list(CLASS_NAMES),
            "audio_informative_clips": sum(p.audio_emotion == p.emotion for p in plans),
            "video_informative_clips": sum(p.video_emotion is not None for p in plans),
        }
        (staging / "README.txt").write_text(readme(params, summary), encoding="utf-8")
    return summary


def plan_clips(params: Params) -> list[ClipPlan]:
    """One clip per (actor, sentence, emotion), in that order, with every random draw made here."""
    plans: list[ClipPlan] = []
    for a in range(params.actors):
        actor = make_actor(params.seed, a, params.actor_pitch_spread, params.actor_rate_spread)
        for sentence in SENTENCES[: params.sentences]:
            for emotion, code in enumerate(CLASS_NAMES):
                index = len(plans)
                meta, audio, video = np.random.SeedSequence([params.seed, CLIP_STREAM, index]).spawn(3)
                rng = np.random.default_rng(meta)
                audio_draw, video_draw = rng.random(2)
                other = (emotion + 1 + int(rng.integers(len(CLASS_NAMES) - 1))) % len(CLASS_NAMES)
                audio_emotion = emotion if audio_draw < params.audio_informative else other
                video_emotion = emotion if video_draw < params.video_informative else None
                plans.append(
                    ClipPlan(
                        index=index,
                        name=f"{actor.code}_{sentence}_{code}_{LEVEL}",
                        actor=actor,
                        emotion=emotion,
                        audio_emotion=audio_emotion,
                        video_emotion=video_emotion,
                        duration=float(rng.uniform(params.min_duration, params.max_duration)),
                        streams=(audio, video),
                    )
                )
    return plans


def make_actor(seed: int, index: int, pitch_spread: float, rate_spread: float = 0.0) -> Actor:
    """Draw an actor's traits from its own stream, so they do not depend on the clip count.

    `pitch_spread` scales every tone of the actor by a factor in [1 - spread, 1 + spread], and
    `rate_spread` its modulation rates likewise: large spreads make audio speaker-dependent (a tone
    identifies the emotion only for actors seen in training, as a voice does in CREMA-D).
    """
    rng = np.random.default_rng([seed, ACTOR_STREAM, index])
    skin = rng.uniform([90.0, 120.0, 160.0], [130.0, 160.0, 210.0])
    pitch = float(rng.uniform(1 - pitch_spread, 1 + pitch_spread))
    face_scale = float(rng.uniform(0.9, 1.1))
    # the rate is drawn last, so the traits drawn before it existed keep their values
    return Actor(
        code=str(FIRST_ACTOR + index),
        pitch=pitch,
        rate=float(rng.uniform(1 - rate_spread, 1 + rate_spread)),
        face_scale=face_scale,
        skin_bgr=(float(skin[0]), float(skin[1]), float(skin[2])),
    )


def synth_audio(plan: ClipPlan, params: Params) -> np.ndarray:
    """A harmonic tone with the shown emotion's pitch and modulation rate, in white noise."""
    rng = np.random.default_rng(plan.streams[0])
    n = max(1, int(round(plan.duration * params.sample_rate)))
    t = np.arange(n) / params.sample_rate
    f0 = TONE_HZ[plan.audio_emotion] * plan.actor.pitch * rng.uniform(0.99, 1.01)
    tone = sum(
        weight * np.sin(2 * np.pi * (h + 1) * f0 * t + rng.uniform(0, 2 * np.pi)) for h, weight in enumerate(HARMONICS)
    )
    rate = MODULATION_HZ[plan.audio_emotion] * plan.actor.rate
    envelope = 0.5 * (1 + 0.8 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    fade = np.clip(np.minimum(t, t[-1] - t) / FADE_SECONDS, 0, 1)
    signal = tone * envelope * fade
    signal *= SIGNAL_RMS / max(float(np.sqrt(np.mean(signal**2))), 1e-12)
    noise = rng.normal(0, SIGNAL_RMS / 10 ** (params.audio_snr_db / 20), n)
    wave = signal + noise
    return (wave / max(1.0, float(np.abs(wave).max()) / 0.9)).astype(np.float32)


def synth_video(plan: ClipPlan, params: Params) -> Iterator[np.ndarray]:
    """BGR uint8 frames of a face on a textured background; the mouth glyph jitters per frame."""
    import cv2

    rng = np.random.default_rng(plan.streams[1])
    size = params.frame_size
    cells = max(2, size // 6)
    texture = rng.uniform(80, 160, (cells, cells, 1)) + rng.uniform(-15, 15, (cells, cells, 3))
    face = cv2.resize(texture, (size, size), interpolation=cv2.INTER_CUBIC)
    cx, cy = (int(round(v)) for v in size / 2 + rng.uniform(-size / 10, size / 10, 2))
    axes = (int(size * 0.28 * plan.actor.face_scale), int(size * 0.36 * plan.actor.face_scale))
    cv2.ellipse(face, (cx, cy), axes, 0, 0, 360, plan.actor.skin_bgr, -1, cv2.LINE_AA)
    eye_dx, eye_y, eye_r = int(size * 0.12), cy - int(size * 0.1), max(1, size // 24)
    for x in (cx - eye_dx, cx + eye_dx):
        cv2.circle(face, (x, eye_y), eye_r, (40.0, 40.0, 40.0), -1, cv2.LINE_AA)
    mouth = np.array([cx, cy + int(size * 0.17)], dtype=float)
    jitter = max(1, size // 24)
    ink = tuple(c - params.video_contrast * 255 for c in plan.actor.skin_bgr)
    for _ in range(max(1, int(round(plan.duration * params.fps)))):
        frame = face.copy()
        if plan.video_emotion is not None:
            centre = mouth + rng.integers(-jitter, jitter + 1, 2)
            draw_glyph(frame, plan.video_emotion, centre, size / 8, ink, max(1, size // 32))
        frame = frame + rng.normal(0, params.video_noise * 255, frame.shape)
        yield np.clip(np.round(frame), 0, 255).astype(np.uint8)


def _arc(start: float, stop: float, dy: float, points: int = 9) -> list[tuple[float, float]]:
    """Points of a half-height ellipse arc (angles in radians, y pointing down), shifted by dy."""
    return [(math.cos(a), 0.5 * math.sin(a) + dy) for a in np.linspace(start, stop, points)]


# Mouth glyphs in CLASS_NAMES order (NEU HAP SAD FEA DIS ANG): polylines in [-1, 1]^2, y down.
GLYPHS: tuple[tuple[list[tuple[float, float]], ...], ...] = (
    ([(-1.0, 0.0), (1.0, 0.0)],),
    (_arc(0, math.pi, -0.25),),
    (_arc(math.pi, 2 * math.pi, 0.25),),
    ([(0.5 * x, y) for x, y in _arc(0, 2 * math.pi, 0.0, 17)],),
    ([(-1.0, -0.35), (-0.5, 0.35), (0.0, -0.35), (0.5, 0.35), (1.0, -0.35)],),
    ([(-1.0, -0.5), (1.0, 0.5)], [(-1.0, 0.5), (1.0, -0.5)]),
)
SUBPIXEL_BITS = 4


def draw_glyph(
    img: np.ndarray, emotion: int, centre: np.ndarray, radius: float, ink: tuple[float, ...], thickness: int
) -> None:
    """Draw emotion's mouth glyph, anti-aliased at sub-pixel precision."""
    import cv2

    scale = 2**SUBPIXEL_BITS
    lines = [np.round((centre + radius * np.array(line)) * scale).astype(np.int32) for line in GLYPHS[emotion]]
    cv2.polylines(img, lines, False, ink, thickness, cv2.LINE_AA, SUBPIXEL_BITS)


def write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM, as CREMA-D's AudioWAV files are."""
    import soundfile

    soundfile.write(path, wave, sample_rate, subtype="PCM_16", format="WAV")


def write_flv(path: Path, frames: Iterator[np.ndarray], fps: float) -> None:
    """Encode BGR frames as Sorenson H.263 (FLV1) in an FLV container, like VideoFlash/."""
    writer = None
    try:
        for frame in frames:
            if writer is None:
                height, width = frame.shape[:2]
                writer = _open_flv_writer(path, fps, (width, height))
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()


def _open_flv_writer(path: Path, fps: float, size: tuple[int, int]) -> Any:
    """FFmpeg's FLV tag for FLV1 first (the 'FLV1' fourcc works too, but makes FFmpeg warn per file)."""
    import cv2

    fourccs = (FLV1_CODEC_TAG, cv2.VideoWriter_fourcc(*"FLV1"))  # type: ignore[attr-defined]
    for fourcc in fourccs:
        writer = cv2.VideoWriter(str(path), fourcc, fps, size)
        if writer.isOpened():
            return writer
        writer.release()
    raise RuntimeError(
        f"{path}: OpenCV cannot write FLV1 video here; it needs an FFmpeg-enabled OpenCV "
        "(opencv-python-headless from PyPI has one)"
    )


def write_summary_table(path: Path, plans: list[ClipPlan]) -> None:
    """processedResults/summaryTable.csv with every vote set to the true emotion."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        rows = csv.writer(fh, lineterminator="\n")
        rows.writerow(SUMMARY_HEADER)
        for plan in plans:
            code = CLASS_NAMES[plan.emotion]
            rows.writerow((plan.name, code, LEVEL, code, LEVEL, code, LEVEL))


def readme(params: Params, summary: dict[str, Any]) -> str:
    """README.txt: what this folder is and how it was made."""
    design = (__doc__ or "").strip()
    return (
        f"Synthetic CREMA-D stand-in written by g2d.datasets.demo.generate.\n\n{design}\n\n"
        f"Layout: AudioWAV/<clip>.wav (16-bit PCM, {params.sample_rate} Hz), VideoFlash/<clip>.flv (FLV1, "
        f"{params.fps:g} fps, {params.frame_size}x{params.frame_size}), processedResults/summaryTable.csv.\n"
        f"Clip names: <actor>_<sentence>_<emotion>_{LEVEL}; emotions {' '.join(CLASS_NAMES)}.\n"
        f"Clips: {summary['clips']}; carrying their own emotion: audio {summary['audio_informative_clips']}, "
        f"video {summary['video_informative_clips']}.\n\n"
        f"Params:\n{json.dumps(dataclasses.asdict(params), indent=2, sort_keys=True)}\n"
    )
