"""Checkpoints: atomic, byte-reproducible saves that load without running code, and a fingerprint so a
resume never picks up another run's (or another code version's) state.

A checkpoint holds tensors and plain values only (numbers, strings, lists, dicts), so it loads with
`torch.load(weights_only=True)`: a crafted file carrying pickled objects is refused, never executed.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import g2d
from g2d.errors import RunError
from g2d.io.atomic import atomic_path


def plain(obj: Any) -> Any:
    """`obj` with numpy arrays as tensors and numpy scalars as Python numbers: what a weights-only load accepts."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj).copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(plain(v) for v in obj)
    return obj


def to_bytes(state: Mapping[str, Any]) -> bytes:
    """The serialised checkpoint. Saved to a buffer, the archive's inner folder is always `archive`
    (saved to a path, it is the file's name, and atomic saves use random temporary names), so the same
    state gives the same bytes and DVC the same hash."""
    buffer = io.BytesIO()
    torch.save(plain(dict(state)), buffer)
    return buffer.getvalue()


def save(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    data = to_bytes(state)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def load(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found; run the stage that produces it first")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RunError(
            f"{path}: refused to load: it holds pickled Python objects, whose loading can run code, and a g2d "
            "checkpoint holds only tensors and plain values. Do not use a file you did not make; delete it and "
            "rerun the stage that writes it"
        ) from exc
    except Exception as exc:  # a truncated or foreign file
        raise RunError(f"{path}: not a readable g2d checkpoint ({exc}); delete it and rerun its stage") from exc
    if not isinstance(state, dict):
        raise RunError(f"{path}: not a g2d checkpoint (holds a {type(state).__name__}); delete it and rerun its stage")
    return state


def fingerprint(config: Mapping[str, Any], inputs: Iterable[str | os.PathLike[str]]) -> str:
    """Hash of a run's settings and its input files (path, size, mtime): equal means resumable."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for p in sorted(str(p) for p in inputs):
        st = os.stat(p)
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


@functools.cache
def code_version() -> str:
    """The installed g2d's version and a hash of its modules: resume state records it, so that a run
    interrupted before a code update does not continue with state the old code wrote."""
    root = Path(g2d.__file__).parent
    h = hashlib.sha256()
    for module in sorted(root.rglob("*.py")):
        h.update(module.relative_to(root).as_posix().encode() + b"\0" + module.read_bytes() + b"\0")
    return f"{g2d.__version__}+{h.hexdigest()[:12]}"
