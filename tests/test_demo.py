"""The synthetic CREMA-D stand-in: layout, names, counts, determinism and effective knobs."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile

from g2d.cli import main
from g2d.config.schema import ConfigError, parse
from g2d.datasets import demo
from g2d.datasets.cremad import CLASS_NAMES, check_raw, parse_clip
from g2d.errors import G2DError
from g2d.io.atomic_dir import MARKER
from g2d.transforms.video import sample_frames

from conftest import ROOT
from conftest_data import TINY_DEMO, write_tiny_raw


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_raw(tmp_path_factory.mktemp("demo") / "raw", sentences=2)


def test_layout_and_counts(raw: Path) -> None:
    check_raw(raw)
    wavs = sorted(p.stem for p in (raw / "AudioWAV").iterdir())
    flvs = sorted(p.stem for p in (raw / "VideoFlash").iterdir())
    assert wavs == flvs and len(wavs) == 4 * 2 * 6
    assert (raw / "README.txt").read_text().startswith("Synthetic CREMA-D")
    assert [p.name for p in raw.iterdir() if p.name.startswith(".")] == [MARKER]
    with open(raw / "processedResults" / "summaryTable.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == [
        "FileName",
        "VoiceVote",
        "VoiceLevel",
        "FaceVote",
        "FaceLevel",
        "MultiModalVote",
        "MultiModalLevel",
    ]
    assert sorted(r[0] for r in rows[1:]) == wavs
    assert all(r[1] == parse_clip(r[0]).emotion and r[2] == "XX" for r in rows[1:])


def test_clip_names_parse_as_cremad(raw: Path) -> None:
    clips = [parse_clip(p.stem) for p in (raw / "AudioWAV").glob("*.wav")]
    assert {c.actor for c in clips} == {"1001", "1002", "1003", "1004"}
    assert {c.sentence for c in clips} == {"IEO", "TIE"}
    assert {c.level for c in clips} == {"XX"}
    assert sorted({c.emotion for c in clips}) == sorted(CLASS_NAMES)


def test_files_decode_with_the_expected_format(raw: Path) -> None:
    info = soundfile.info(raw / "AudioWAV" / "1001_IEO_ANG_XX.wav")
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    assert 0.5 <= info.duration <= 1.0
    frames = sample_frames(raw / "VideoFlash" / "1001_IEO_ANG_XX.flv", fps=4.0, n_frames=2, size=24)
    assert frames.shape == (2, 3, 24, 24)


def test_same_params_give_the_same_files(raw: Path, tmp_path: Path) -> None:
    again = write_tiny_raw(tmp_path / "again", sentences=2)
    names = sorted(p.name for p in (raw / "AudioWAV").iterdir())
    assert names == sorted(p.name for p in (again / "AudioWAV").iterdir())
    for name in names:
        assert (raw / "AudioWAV" / name).read_bytes() == (again / "AudioWAV" / name).read_bytes()
    for name in ("README.txt", "processedResults/summaryTable.csv"):
        assert (raw / name).read_bytes() == (again / name).read_bytes()


def test_generate_replaces_an_existing_folder_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(cv2.error):
        demo.generate(out, dataclasses.replace(TINY_DEMO, frame_size=0), force=True)
    assert (out / "stale.txt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["raw"]
    summary = demo.generate(out, dataclasses.replace(TINY_DEMO, actors=3, sentences=1), force=True)
    assert summary["clips"] == 18 and summary["classes"] == list(CLASS_NAMES)
    assert not (out / "stale.txt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["raw"]
    # an earlier demo (marked) is replaced without --force
    demo.generate(out, dataclasses.replace(TINY_DEMO, actors=2, sentences=1))
    assert len(list((out / "AudioWAV").iterdir())) == 12


def test_generate_refuses_to_replace_a_folder_of_other_files(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(G2DError, match=r"mine: holds 1 files or folders and is not a generated folder.*--force"):
        demo.generate(out, TINY_DEMO)
    assert (out / "thesis.tex").read_text() == "years of work"
    assert main(["generate-demo", "--params", str(ROOT / "params.yaml"), "--out", str(out)]) == 2
    assert (out / "thesis.tex").read_text() == "years of work"
    empty = tmp_path / "empty"
    empty.mkdir()
    demo.generate(empty, TINY_DEMO)  # an empty folder holds nothing to lose
    assert (empty / MARKER).is_file()


def test_informative_fractions_are_effective() -> None:
    plans = demo.plan_clips(dataclasses.replace(TINY_DEMO, actors=10, audio_informative=0.6, video_informative=0.9))
    audio = np.mean([p.audio_emotion == p.emotion for p in plans])
    video = np.mean([p.video_emotion == p.emotion for p in plans])
    assert 0.45 < audio < 0.75 and 0.8 < video < 0.98
    assert all(p.video_emotion in (None, p.emotion) for p in plans)
    always = demo.plan_clips(dataclasses.replace(TINY_DEMO, audio_informative=1.0, video_informative=1.0))
    assert all(p.audio_emotion == p.emotion == p.video_emotion for p in always)
    noisier_audio = demo.plan_clips(dataclasses.replace(TINY_DEMO, audio_informative=0.1, video_informative=1.0))
    assert [(p.video_emotion, p.duration) for p in noisier_audio] == [(p.video_emotion, p.duration) for p in always]


def test_audio_pitch_follows_the_shown_emotion() -> None:
    params = dataclasses.replace(TINY_DEMO, audio_informative=1.0, audio_snr_db=30.0)
    for plan in demo.plan_clips(params)[:6]:
        wave = demo.synth_audio(plan, params)
        spectrum = np.abs(np.fft.rfft(wave))
        peak = np.fft.rfftfreq(wave.size, 1 / params.sample_rate)[spectrum.argmax()]
        expected = demo.TONE_HZ[plan.emotion] * plan.actor.pitch
        assert abs(peak - expected) < 0.05 * expected


def test_actor_voice_scales_pitch_and_modulation_rate() -> None:
    """A speaker-dependent voice: one actor factor for pitch and one for the modulation rate, drawn
    from the actor's own stream, so the rate knob leaves every other draw alone."""
    params = dataclasses.replace(
        TINY_DEMO,
        audio_informative=1.0,
        audio_snr_db=60.0,
        actor_pitch_spread=0.3,
        actor_rate_spread=0.3,
        min_duration=2.0,
        max_duration=2.0,
    )
    plans = demo.plan_clips(params)
    assert len({round(p.actor.pitch, 6) for p in plans}) == params.actors
    assert len({round(p.actor.rate, 6) for p in plans}) == params.actors
    assert all(0.7 <= p.actor.pitch <= 1.3 and 0.7 <= p.actor.rate <= 1.3 for p in plans)
    for plan in plans[:: len(CLASS_NAMES) * params.sentences + 1][:3]:
        wave = demo.synth_audio(plan, params).astype(np.float64)
        frame = params.sample_rate // 100  # the envelope, from the RMS of 10 ms frames
        envelope = np.sqrt(np.mean(wave[: wave.size // frame * frame].reshape(-1, frame) ** 2, axis=1))
        spectrum = np.abs(np.fft.rfft(envelope - envelope.mean()))
        rate = np.fft.rfftfreq(envelope.size, 1 / 100)[spectrum.argmax()]
        expected = demo.MODULATION_HZ[plan.emotion] * plan.actor.rate
        assert abs(rate - expected) <= 0.5 + 0.05 * expected, (plan.name, rate, expected)
    fixed_rate = demo.plan_clips(dataclasses.replace(params, actor_rate_spread=0.0))
    assert all(p.actor.rate == 1.0 for p in fixed_rate)
    assert [(p.actor.pitch, p.actor.face_scale, p.actor.skin_bgr) for p in fixed_rate] == [
        (p.actor.pitch, p.actor.face_scale, p.actor.skin_bgr) for p in plans
    ]


def test_video_glyph_is_the_only_difference_between_emotions() -> None:
    params = dataclasses.replace(TINY_DEMO, video_noise=0.0)
    plan = demo.plan_clips(params)[0]
    frames = [
        next(demo.synth_video(dataclasses.replace(plan, video_emotion=e), params)).astype(int)
        for e in (None, *range(len(CLASS_NAMES)))
    ]
    assert len({f.tobytes() for f in frames}) == len(frames)
    changed = np.argwhere(np.any(np.stack(frames) != frames[0], axis=(0, 3)))
    height, width = changed.max(axis=0) - changed.min(axis=0) + 1
    assert height <= params.frame_size // 3 and width <= params.frame_size // 3, "the glyph must stay small"


def test_params_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"datasets\.demo\.generate\.sentences"):
        parse(demo.Params, {"sentences": 13}, "datasets.demo.generate")
    with pytest.raises(ConfigError, match=r"datasets\.demo\.generate\.video_contrast"):
        parse(demo.Params, {"video_contrast": 0}, "datasets.demo.generate")
    with pytest.raises(ConfigError, match=r"datasets\.demo\.generate\.actor_rate_spread"):
        parse(demo.Params, {"actor_rate_spread": 0.5}, "datasets.demo.generate")
    assert parse(demo.Params, {}, "x") == demo.Params()
    assert len(demo.plan_clips(demo.Params())) == 600
