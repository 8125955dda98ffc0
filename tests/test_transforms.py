"""Audio and video transforms on real files written here."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile

from g2d.transforms.audio import AudioDecodeError, fit_length, load_audio, log_spectrogram, spectrogram_shape
from g2d.transforms.video import VideoDecodeError, pick_evenly, sample_frames


def test_log_spectrogram_has_the_reference_shape() -> None:
    wave = np.random.default_rng(0).uniform(-2, 2, 66_150).astype(np.float32)
    spec = log_spectrogram(wave, n_fft=512, hop_length=353)
    assert spec.shape == (257, 188) == spectrogram_shape(66_150, 512, 353)
    assert spec.dtype == np.float32
    assert np.isfinite(spec).all()


def test_log_spectrogram_of_silence_is_log_eps() -> None:
    spec = log_spectrogram(np.zeros(4000, np.float32), n_fft=256, hop_length=100)
    assert spec.shape == spectrogram_shape(4000, 256, 100)
    np.testing.assert_allclose(spec, np.log(1e-7), rtol=1e-6)


def test_fit_length_tiles_short_waves_and_crops_long_ones() -> None:
    wave = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_array_equal(fit_length(wave, 7), [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(fit_length(wave, 2), [1, 2])
    with pytest.raises(ValueError):
        fit_length(np.zeros(0, np.float32), 5)


def test_load_audio_mixes_to_mono_and_resamples(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    path = tmp_path / "tone.wav"
    soundfile.write(path, stereo, 8000, subtype="PCM_16")
    wave = load_audio(path, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.shape[0] - 16000) <= 2
    assert 0.2 < np.abs(wave).max() < 0.3


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00garbage" * 20])
def test_load_audio_names_unreadable_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioDecodeError, match="bad.wav"):
        load_audio(path, 22050)


def test_load_audio_rejects_files_without_samples(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, np.float32), 8000, subtype="PCM_16")
    with pytest.raises(AudioDecodeError, match="no samples"):
        load_audio(path, 8000)


def _write_ramp_video(path: Path, n_frames: int, fps: float) -> None:
    """Frame i is pure red (in BGR order) of brightness 8 * i, so frames are told apart by value."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (20, 12))
    assert writer.isOpened()
    for i in range(n_frames):
        frame = np.zeros((12, 20, 3), np.uint8)
        frame[..., 2] = 8 * i
        writer.write(frame)
    writer.release()


def test_sample_frames_takes_one_frame_per_second(tmp_path: Path) -> None:
    path = tmp_path / "ramp.avi"
    _write_ramp_video(path, n_frames=30, fps=10.0)
    frames = sample_frames(path, fps=1.0, n_frames=3, size=16)
    assert frames.shape == (3, 3, 16, 16) and frames.dtype == np.uint8
    red = frames[:, 0].mean(axis=(1, 2))
    np.testing.assert_allclose(red, [0, 80, 160], atol=6)
    assert frames[:, 1:].max() < 20, "channels must come out in RGB order"


def test_sample_frames_spreads_picks_and_repeats_the_last(tmp_path: Path) -> None:
    path = tmp_path / "ramp.avi"
    _write_ramp_video(path, n_frames=30, fps=10.0)
    middle = sample_frames(path, fps=1.0, n_frames=1, size=8)
    np.testing.assert_allclose(middle[0, 0].mean(), 80, atol=6)
    padded = sample_frames(path, fps=1.0, n_frames=5, size=8)
    assert padded.shape == (5, 3, 8, 8)
    np.testing.assert_array_equal(padded[2], padded[4])
    assert not np.array_equal(padded[0], padded[1])


def test_pick_evenly() -> None:
    assert pick_evenly(10, 1) == [5]
    assert pick_evenly(10, 2) == [2, 7]
    assert pick_evenly(3, 3) == [0, 1, 2]
    assert pick_evenly(2, 4) == [0, 1, 1, 1]


@pytest.mark.parametrize("content", [b"", b"FLV\x01\x05" + bytes(range(256)) * 4])
def test_sample_frames_names_unreadable_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.flv"
    path.write_bytes(content)
    with pytest.raises(VideoDecodeError, match="broken.flv"):
        sample_frames(path, fps=1.0, n_frames=1, size=8)


def test_sample_frames_names_missing_files(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match="no such video"):
        sample_frames(tmp_path / "absent.flv", fps=1.0, n_frames=1, size=8)
