"""The `datasets.<name>.preprocess` section of an AV-MNIST dataset: its dataclasses, checked at load."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from g2d.config.schema import require
from g2d.io.dataset_file import SPLITS
from g2d.transforms.audio import ClipAudioParams


@dataclass(frozen=True)
class PCAParams:
    """How much of the MNIST images survives: the original keeps 25%."""

    keep: float = 0.25
    by: Literal["components", "energy"] = "components"

    def validate(self, where: str) -> None:
        require(0 < self.keep <= 1, f"{where}.keep", f"must be in (0, 1], got {self.keep}")


@dataclass(frozen=True)
class NoiseParams:
    """Noise mixed into every recording: white, pink (1/f), or wav files from `folder`."""

    kind: Literal["white", "pink", "folder"] = "white"
    snr_db: float = 0.0
    folder: str | None = None

    def validate(self, where: str) -> None:
        if self.kind == "folder":
            require(bool(self.folder), f"{where}.folder", "a folder of noise .wav files is needed when kind is folder")


@dataclass(frozen=True)
class AudioParams(ClipAudioParams):
    """Recording -> log-mel spectrogram of n_mels x frames."""

    sample_rate: int = 8000
    duration: float = 1.0
    n_mels: int = 112
    frames: int = 112

    def validate(self, where: str) -> None:
        super().validate(where)
        require(self.n_mels > 0, f"{where}.n_mels", "must be a positive number of mel bands")
        require(
            2 <= self.frames <= self.n_samples,
            f"{where}.frames",
            f"must be between 2 and the clip's {self.n_samples} samples",
        )


@dataclass(frozen=True)
class SplitParams:
    """Validation held out of MNIST's training images; FSDD speakers per split (train: the rest)."""

    val_fraction: float = 0.1
    seed: int = 0
    train_speakers: tuple[str, ...] | None = None
    val_speakers: tuple[str, ...] = ("george",)
    test_speakers: tuple[str, ...] = ("yweweler",)

    def validate(self, where: str) -> None:
        require(0 < self.val_fraction < 1, f"{where}.val_fraction", f"must be in (0, 1), got {self.val_fraction}")
        require(self.seed >= 0, f"{where}.seed", "must be a non-negative integer")
        named = [*(self.train_speakers or ()), *self.val_speakers, *self.test_speakers]
        twice = sorted({s for s in named if named.count(s) > 1})
        require(
            not twice,
            f"{where}.test_speakers",
            f"speakers {twice} are in more than one split; audio splits must be speaker-disjoint",
        )
        require(bool(self.val_speakers), f"{where}.val_speakers", "name at least one speaker")
        require(bool(self.test_speakers), f"{where}.test_speakers", "name at least one speaker")


@dataclass(frozen=True)
class LimitParams:
    """At most this many samples per split (null: all): CPU profiles train on subsets."""

    train: int | None = None
    val: int | None = None
    test: int | None = None

    def validate(self, where: str) -> None:
        for split in SPLITS:
            n = getattr(self, split)
            require(n is None or n >= 1, f"{where}.{split}", f"must be a positive count or null, got {n}")


@dataclass(frozen=True)
class Params:
    """The `datasets.<name>.preprocess` section for source `avmnist`."""

    format: Literal["auto", "npy", "build"] = "auto"
    mnist_dir: str = "mnist"
    recordings_dir: str = "fsdd/recordings"
    pca: PCAParams = field(default_factory=PCAParams)
    noise: NoiseParams = field(default_factory=NoiseParams)
    audio: AudioParams = field(default_factory=AudioParams)
    split: SplitParams = field(default_factory=SplitParams)
    limit: LimitParams = field(default_factory=LimitParams)
    max_skipped_fraction: float = 0.05
    workers: int = 1

    def validate(self, where: str) -> None:
        require(
            0 <= self.max_skipped_fraction <= 1,
            f"{where}.max_skipped_fraction",
            f"must be in [0, 1], got {self.max_skipped_fraction}",
        )
        require(self.workers >= 1, f"{where}.workers", "must be at least 1")
