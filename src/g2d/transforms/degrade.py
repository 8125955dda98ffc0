"""Controlled degradations that make a modality weaker: PCA truncation of images, noise at a set SNR.

AV-MNIST (Vielzeuf et al., 2018) is built from clean MNIST digits and clean spoken digits; its
imbalance comes from how much each is degraded. Both degradations here are fitted or scaled
from data the caller chooses, so that nothing about the test split leaks into them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PCA:
    """A truncated principal-component basis: images are projected on it and reconstructed."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D), rows orthonormal, by decreasing variance
    energy_kept: float  # fraction of the training variance the k components explain
    dims: int  # D

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def degrade(self, x: np.ndarray) -> np.ndarray:
        """Reconstruct rows of `x` (N, D) from their first k principal components."""
        centred = x.astype(np.float64) - self.mean
        return (centred @ self.components.T @ self.components + self.mean).astype(np.float32)


def fit_pca(train: np.ndarray, keep: float, by: str = "components") -> PCA:
    """Fit PCA on training rows (N, D) and keep a fraction of it.

    by="components": k = round(keep * D) components (at least 1, at most the data's rank), the
    reading of "keep 25% of the components". by="energy": the fewest components that explain at
    least `keep` of the variance, the reading of "remove 75% of the energy".
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    if by not in ("components", "energy"):
        raise ValueError(f"by must be 'components' or 'energy', got {by!r}")
    x = train.astype(np.float64).reshape(len(train), -1)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    variance = s**2
    total = float(variance.sum()) or 1.0
    cumulative = np.cumsum(variance) / total
    dims = x.shape[1]
    if by == "components":
        k = max(1, int(np.floor(keep * dims + 0.5)))
    else:
        k = int(np.searchsorted(cumulative, keep - 1e-12) + 1)
    rank = int(np.sum(s > s[0] * max(x.shape) * np.finfo(np.float64).eps)) if s.size and s[0] > 0 else 1
    k = min(k, max(rank, 1))  # directions without training variance are arbitrary: never keep them
    return PCA(mean=mean, components=vt[:k], energy_kept=float(cumulative[k - 1]), dims=dims)


def white_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """1/f noise: white noise whose spectrum is scaled by 1/sqrt(f) (the DC bin is dropped)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.shape[0], dtype=np.float64)
    f[0] = np.inf
    return np.fft.irfft(spectrum / np.sqrt(f), n=n)


def scale_to_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`noise` scaled so that 10 log10(mean(signal^2) / mean(noise^2)) equals `snr_db`.

    Power is measured over the samples given: pass the speech itself, not its zero padding,
    so that the SNR does not depend on how much silence pads the clip.
    """
    p_signal = float(np.mean(np.square(signal, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_noise == 0.0:
        raise ValueError("noise has zero power; cannot scale it to an SNR")
    return noise * np.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """The measured SNR of a signal and the noise added to it, in dB."""
    return float(
        10.0 * np.log10(np.mean(np.square(signal, dtype=np.float64)) / np.mean(np.square(noise, dtype=np.float64)))
    )
