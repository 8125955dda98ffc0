"""Atomic directory outputs: build in a temporary sibling, then swap into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from g2d.errors import G2DError
from g2d.io.atomic import remove_stale_temps, temp_prefix, umask


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces `path`, on failure it is removed. The
    folder gets the umask's mode, as a plain mkdir would (not mkdtemp's 0700)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        os.chmod(tmp, 0o777 & ~umask())
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


MARKER = ".g2d-demo"  # marks a folder as a generator's output, which a new one may replace


@contextlib.contextmanager
def generated_dir(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """atomic_dir for a generator's output folder (a demo dataset): it replaces only an absent or empty
    folder or an earlier output (marked), never a folder of someone's files unless `force`."""
    target = Path(path)
    if not force and target.exists() and not (target / MARKER).is_file():
        if not target.is_dir():
            raise G2DError(f"{target}: exists and is not a folder; choose another --out, or pass --force to replace it")
        held = sum(1 for _ in target.rglob("*"))
        if held:
            raise G2DError(
                f"{target}: holds {held} files or folders and is not a generated folder (no {MARKER} marker); "
                "the generator replaces its --out whole, so it refuses. Choose another --out, or pass --force"
            )
    with atomic_dir(target) as tmp:
        (tmp / MARKER).write_text("written by g2d; a new generate-demo run may replace this folder\n", encoding="utf-8")
        yield tmp
