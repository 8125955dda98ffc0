"""What every dataset source does with its decoded samples, in one place.

A source finds its raw inputs and decodes them into `Sample`s (or `Skipped` records naming the file
at fault, so one bad input never stops the stage); `write_dataset` does the rest: it appends the
samples to the dataset file in the order given, with progress, collects the skips, writes the
`<dataset>.report.json` and fails without a dataset file if too many inputs were lost or a split
came out empty. The file and its report appear only once complete, together; a failed run leaves the
previous pair untouched and writes its own report to `<dataset>.report.failed.json`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from g2d.datasets import RawDataError
from g2d.io.atomic import atomic_path, write_json
from g2d.io.dataset_file import DatasetMeta, DatasetWriter, preprocessing_record

__all__ = ["Report", "Sample", "Skipped", "preprocessing_record", "write_dataset"]

SHOWN_SKIPS = 5


@dataclass(frozen=True)
class Skipped:
    """A sample left out of the dataset, the file at fault and why."""

    clip: str
    file: str
    reason: str


@dataclass(frozen=True)
class Sample:
    """One decoded sample: its split, its array per modality, its label and the source's id for it."""

    split: str
    arrays: Mapping[str, np.ndarray]
    label: int | float
    id: str
    origin: Mapping[str, str] = dataclasses.field(default_factory=dict)  # modality -> the raw file it came from


def non_finite(sample: Sample) -> Skipped | None:
    """A skip record if the sample holds NaN or Inf (a corrupt input, which would turn the loss into NaN)."""
    for modality, array in sample.arrays.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            where = sample.origin.get(modality, f"{modality} of sample {sample.id}")
            return Skipped(sample.id, where, f"{modality} holds non-finite values (NaN or Inf)")
    if isinstance(sample.label, float) and not math.isfinite(sample.label):
        return Skipped(sample.id, sample.origin.get("label", f"label of sample {sample.id}"), "the label is not finite")
    return None


Report = Callable[[Mapping[str, int], Sequence[Skipped]], dict[str, Any]]  # (rows per split, skips) -> report


def write_dataset(
    meta: DatasetMeta,
    shapes: Mapping[str, tuple[tuple[int, ...], str]],
    samples: Iterator[Sample | Skipped],
    *,
    total: int,
    unit: str,
    out_path: str | os.PathLike[str],
    report_path: str | os.PathLike[str],
    report: Report,
    found: int,
    what: str,
    max_skipped_fraction: float,
    skipped: Sequence[Skipped] = (),
    compression: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Write the dataset file of `samples` (in order; `total` of them, counted in `unit`s for the
    progress bar) and the report `report(counts, skips)`; return the report.

    `skipped` are inputs left out before decoding; with the skipped samples they must stay within
    `max_skipped_fraction` of the `found` inputs (`what`, e.g. "CREMA-D clips"), and every split needs
    a sample, or neither file is replaced, the report goes to `<dataset>.report.failed.json`, and
    RawDataError names the problem. `compression` {modality: gzip level} is the writer's (DatasetWriter).
    A generator of samples is closed when writing ends or fails (stopping its worker processes).
    """
    lost = list(skipped)
    failed = failed_report_path(report_path)
    try:
        # The report and the dataset file are one outcome: both replace their predecessors, or neither does
        # (a failed run's report goes to `failed` instead, beside the previous, still valid, pair).
        with atomic_path(report_path) as report_tmp, DatasetWriter(out_path, meta, shapes, compression) as writer:
            progress = tqdm(samples, total=total, desc=f"{meta.dataset}: {unit}s", unit=unit, file=sys.stderr)
            for outcome in progress:
                if isinstance(outcome, Sample):
                    outcome = non_finite(outcome) or outcome
                if isinstance(outcome, Skipped):
                    lost.append(outcome)
                else:
                    writer.append(outcome.split, outcome.arrays, outcome.label, outcome.id)
            counts = writer.counts()
            out = report(counts, lost)
            try:
                check_skipped(meta.dataset, what, found, lost, max_skipped_fraction, failed)
                empty = [s for s, n in counts.items() if n == 0]
                if empty:
                    raise RawDataError(
                        f"splits {empty} of {meta.dataset} have no usable {unit} (see {failed}); "
                        f"add data or change datasets.{meta.dataset}.preprocess.split"
                    )
            except RawDataError:
                write_json(failed, out)
                raise
            write_json(report_tmp, out)
        failed.unlink(missing_ok=True)
    finally:
        close = getattr(samples, "close", None)
        if callable(close):
            close()
    return out


def failed_report_path(report_path: str | os.PathLike[str]) -> Path:
    """Where a failed preprocessing run's report goes: `<dataset>.report.failed.json`, beside the report of
    the last run that succeeded (which still describes the dataset file)."""
    path = Path(report_path)
    return path.with_name(f"{path.stem}.failed{path.suffix}")


def report_header(
    dataset: str,
    source: str,
    root: Path,
    counts: Mapping[str, int],
    found: int,
    skipped: Sequence[Skipped],
    params: Any,
) -> dict[str, Any]:
    """What every source's report starts with: the dataset, source and raw folder, rows written per split,
    the skipped inputs (of `found`) with the limit, and the preprocessing params; a source adds its own."""
    return {
        "dataset": dataset,
        "source": source,
        "raw_dir": str(root),
        "counts": dict(counts),
        **skip_fields(found, skipped),
        "max_skipped_fraction": params.max_skipped_fraction,
        "params": dataclasses.asdict(params),
    }


def skip_fields(found: int, skipped: Sequence[Skipped]) -> dict[str, Any]:
    """The report's `skipped` list and `skipped_fraction` of the `found` inputs."""
    return {
        "skipped": [dataclasses.asdict(s) for s in skipped],
        "skipped_fraction": len(skipped) / found if found else 0.0,
    }


def reason(exc: Exception, path: str | os.PathLike[str]) -> str:
    """The exception's message without the file name it starts with (the report has its own column)."""
    message = str(exc)
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else f"{type(exc).__name__}: {message}"


def check_skipped(
    dataset: str,
    what: str,
    found: int,
    skipped: Sequence[Skipped | Mapping[str, Any]],
    limit: float,
    report_path: str | os.PathLike[str],
) -> None:
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
        f"{report_path}. Replace or remove those files, or raise max_skipped_fraction; the dataset file and its "
        "report were not replaced."
    )
