"""Small raw CREMA-D-layout folders for tests, written with the demo generator."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from g2d.datasets import cremad, demo

TINY_DEMO = demo.Params(
    actors=4, sentences=1, sample_rate=8000, min_duration=0.5, max_duration=1.0, fps=4.0, frame_size=24
)
TINY_CREMAD = cremad.Params(
    audio=cremad.AudioParams(sample_rate=8000, duration=1.0, n_fft=256, hop_length=128),
    video=cremad.VideoParams(fps=2.0, frames=2, size=16),
    split=cremad.SplitParams(val_fraction=0.25, test_fraction=0.25),
)


def write_tiny_raw(out_dir: Path, **overrides: Any) -> Path:
    """A 4-actor, 24-clip raw folder (one sentence), small enough to preprocess in a second."""
    demo.generate(out_dir, dataclasses.replace(TINY_DEMO, **overrides))
    return out_dir


def tiny_cremad_params(**overrides: Any) -> cremad.Params:
    """TINY_CREMAD with top-level fields replaced (e.g. split=..., max_skipped_fraction=...)."""
    return dataclasses.replace(TINY_CREMAD, **overrides)
