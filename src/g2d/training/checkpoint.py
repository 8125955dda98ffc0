"""Checkpoints: atomic saves, and a fingerprint so a resume never picks up another run's state."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from g2d.io.atomic import atomic_path


def save(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)


def load(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found; run the stage that produces it first")
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise ValueError(f"{path}: not a readable g2d checkpoint ({exc}); delete it and rerun its stage") from exc


def fingerprint(config: Mapping[str, Any], inputs: Iterable[str | os.PathLike[str]]) -> str:
    """Hash of a run's settings and its input files (path, size, mtime): equal means resumable."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for p in sorted(str(p) for p in inputs):
        st = os.stat(p)
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()
