"""Atomic writes: a stage that dies half-way never leaves a file a later run would trust."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~umask())
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def umask() -> int:
    """The process umask (mkstemp and mkdtemp create 0600 files and 0700 folders; outputs should get the
    usual permissions)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname().split(".")[0]) or "host"


def temp_prefix(target: Path) -> str:
    """The start of a temporary sibling's name: hidden, the target's name, and its owner (host and pid),
    so that a later run can tell a killed run's leftovers from a live run's work in progress."""
    return f".{target.name}.{_host()}-{os.getpid()}."


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete the temporary siblings of `target` (files or folders) that a process on this host wrote and
    that is no longer running: the leftovers of a killed run, gigabytes for a dataset file. Return them."""
    owned = re.compile(re.escape(f".{target.name}.") + r"(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.[^.]+\.tmp")
    removed: list[Path] = []
    try:
        candidates = list(target.parent.iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        match = owned.fullmatch(candidate.name)
        if match is None or match["host"] != _host() or process_running(int(match["pid"])):
            continue
        if candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


def process_running(pid: int) -> bool:
    """Whether process `pid` runs on this host (one of another user counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON atomically, pretty-printed and key-sorted so that metrics diff cleanly. A non-finite
    number (NaN, Inf: an undefined metric) is written as null: bare NaN is not JSON, and other tools
    (DVC, jq, browsers) reject the file."""
    write_text(path, json.dumps(finite(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def finite(obj: Any) -> Any:
    """`obj` as plain JSON values (numpy scalars and arrays converted), non-finite numbers as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return finite(_jsonable(obj))


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _jsonable(obj: Any) -> Any:
    """Turn numpy scalars and arrays into plain JSON values."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
