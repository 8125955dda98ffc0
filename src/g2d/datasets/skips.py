"""Inputs a source leaves out: one record per file at fault, and the limit on how many may be lost."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from g2d.datasets import RawDataError

SHOWN_SKIPS = 5


@dataclass(frozen=True)
class Skipped:
    """A sample left out of the dataset, the file at fault and why."""

    clip: str
    file: str
    reason: str


def reason(exc: Exception, path: str | os.PathLike[str]) -> str:
    """The exception's message without the file name it starts with (the report has its own column)."""
    message = str(exc)
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else f"{type(exc).__name__}: {message}"


def check_skipped(dataset: str, what: str, found: int, skipped: Sequence[Skipped | Mapping[str, Any]],
                  limit: float, report_path: str | os.PathLike[str]) -> None:
    """Fail, naming the first bad files, if more than `limit` of the `found` inputs (`what`) are unusable."""
    fraction = len(skipped) / found if found else 0.0
    if fraction <= limit:
        return
    rows = [s if isinstance(s, Mapping) else vars(s) for s in skipped[:SHOWN_SKIPS]]
    shown = "\n".join(f"  {s['file']}: {s['reason']}" for s in rows)
    more = f"\n  ... and {len(skipped) - SHOWN_SKIPS} more" if len(skipped) > SHOWN_SKIPS else ""
    raise RawDataError(
        f"{len(skipped)} of {found} {what} ({fraction:.1%}) could not be used, more than "
        f"datasets.{dataset}.preprocess.max_skipped_fraction = {limit}:\n{shown}{more}\nThe full list is in "
        f"{report_path}. Replace or remove those files, or raise max_skipped_fraction; no dataset file was written.")
