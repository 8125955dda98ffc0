"""Audio decoding and the reference log-spectrogram of the CREMA-D / OGM-GE line of work."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from g2d.config.schema import require

LOG_EPS = 1e-7


@dataclass(frozen=True)
class ClipAudioParams:
    """What every source's audio settings share: a clip's rate, length and STFT window. Each source
    subclasses it with its own defaults and the fields of its spectrogram."""

    sample_rate: int = 22050
    duration: float = 3.0
    n_fft: int = 512

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    def validate(self, where: str) -> None:
        require(self.sample_rate > 0, f"{where}.sample_rate", "must be a positive rate in Hz")
        require(self.duration > 0, f"{where}.duration", "must be a positive number of seconds")
        require(self.n_fft > 0, f"{where}.n_fft", "must be a positive window length")


class AudioDecodeError(ValueError):
    """An audio file could not be turned into samples; the message names the file and why."""


def load_audio(path: str | os.PathLike[str], sample_rate: int) -> np.ndarray:
    """Decode `path` to mono float32 at `sample_rate`.

    soundfile reads WAV/FLAC/OGG directly and fast; librosa (audioread) is the fallback for
    anything else. Resampling uses librosa's default (soxr) like the reference's `librosa.load`.
    """
    wave, native_rate = _decode(path)
    return conform(wave, native_rate, sample_rate, path)


def conform(wave: np.ndarray, native_rate: int, sample_rate: int, path: str | os.PathLike[str]) -> np.ndarray:
    """Check decoded mono samples of `path` and resample them to `sample_rate` (float32).

    Shared by every decoder (soundfile, librosa, PyAV for sound inside video files), so that all
    sources refuse the same empty or non-finite audio and resample it the same way (librosa's soxr).
    """
    if wave.size == 0:
        raise AudioDecodeError(f"{path}: audio file holds no samples; replace it or remove the clip")
    if not np.all(np.isfinite(wave)):
        raise AudioDecodeError(f"{path}: audio holds NaN or infinite samples; replace the file")
    if native_rate != sample_rate:
        import librosa

        wave = librosa.resample(wave, orig_sr=native_rate, target_sr=sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def _decode(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Return (mono samples, native rate), trying soundfile first and librosa second."""
    import soundfile

    if not os.path.isfile(path):
        raise AudioDecodeError(f"{path}: no such audio file")
    if os.path.getsize(path) == 0:
        raise AudioDecodeError(f"{path}: file is empty (0 bytes); re-download or remove it")
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
        return data.mean(axis=1), int(rate)
    except (RuntimeError, TypeError, ValueError) as sf_error:
        first_error = sf_error
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, rate = librosa.load(path, sr=None, mono=True)
    except Exception as exc:  # audioread raises several unrelated types, some with empty messages
        soundfile_says = getattr(first_error, "error_string", None) or str(first_error)
        librosa_says = f"{type(exc).__name__}: {exc}" if str(exc) else f"{type(exc).__name__}, no decoder"
        raise AudioDecodeError(
            f"{path}: not a readable audio file (soundfile: {soundfile_says}; librosa: "
            f"{librosa_says}); re-download or remove it"
        ) from exc
    return np.asarray(data, dtype=np.float32), int(rate)


def fit_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """Repeat the wave end to end until it covers `n_samples`, then crop (the reference's np.tile)."""
    if wave.size == 0:
        raise ValueError("cannot fit an empty wave to a length")
    repeats = -(-n_samples // wave.shape[0])
    return np.tile(wave, repeats)[:n_samples]


def log_spectrogram(wave: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """log(|STFT| + 1e-7) of the wave clipped to [-1, 1]: shape (1 + n_fft // 2, 1 + len // hop)."""
    import librosa

    spectrum = librosa.stft(np.clip(wave, -1.0, 1.0), n_fft=n_fft, hop_length=hop_length)
    return np.log(np.abs(spectrum) + LOG_EPS).astype(np.float32)


def spectrogram_shape(n_samples: int, n_fft: int, hop_length: int) -> tuple[int, int]:
    """Shape `log_spectrogram` gives for `n_samples` samples (librosa centres frames)."""
    return 1 + n_fft // 2, 1 + n_samples // hop_length


def centre_fit(wave: np.ndarray, n_samples: int) -> tuple[np.ndarray, slice]:
    """Place the wave in the middle of `n_samples` of silence, or crop its middle if longer.

    Returns the window and where the wave's samples lie in it (for measuring their power).
    """
    if wave.shape[0] >= n_samples:
        start = (wave.shape[0] - n_samples) // 2
        return wave[start : start + n_samples].copy(), slice(0, n_samples)
    out = np.zeros(n_samples, dtype=wave.dtype)
    start = (n_samples - wave.shape[0]) // 2
    out[start : start + wave.shape[0]] = wave
    return out, slice(start, start + wave.shape[0])


def log_mel_spectrogram(wave: np.ndarray, sample_rate: int, n_fft: int, n_mels: int, frames: int) -> np.ndarray:
    """log(mel power + 1e-7) with `n_mels` bands and exactly `frames` frames: shape (n_mels, frames).

    The hop is chosen so the wave spans `frames` centred frames (AV-MNIST's square 112 x 112).
    """
    import librosa

    if frames < 2:
        raise ValueError(f"need at least 2 frames, got {frames}")
    hop = max(1, wave.shape[0] // (frames - 1))
    mel = librosa.feature.melspectrogram(
        y=wave.astype(np.float32), sr=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels, power=2.0
    )
    mel = mel[:, :frames]
    if mel.shape[1] < frames:
        mel = np.pad(mel, ((0, 0), (0, frames - mel.shape[1])), mode="edge")
    return np.log(mel + LOG_EPS).astype(np.float32)


def clip_shapes(
    samples: int, n_fft: int, hop_length: int, frames: int, size: int
) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-sample shapes and dtypes of an audio-visual clip, for the dataset writer: a (1, F, T) log
    spectrogram of `samples` audio samples (float32) and `frames` RGB frames of size x size (uint8)."""
    return {
        "audio": ((1, *spectrogram_shape(samples, n_fft, hop_length)), "float32"),
        "video": ((frames, 3, size, size), "uint8"),
    }
