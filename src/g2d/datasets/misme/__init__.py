"""MIS-ME source: soil photos plus a weather table -> image crops and normalised features, for regression.

The raw layout of MIS-ME's release (Rakib et al., 2024), configurable column by column::

    {raw_dir}/combined_only_train_set.xlsx   columns image, vwc, and the eight weather features
    {raw_dir}/combined_only_val_set.xlsx     (or .csv; `sheets` names one file per split)
    {raw_dir}/combined_only_test_set.xlsx
    {raw_dir}/images/<image>                 the photos (or ready-cut soil patches) the sheets name
    {raw_dir}/labels/<photo stem>.txt        YOLO boxes, only for crops.mode: yolo

Each listed photo becomes one or more soil crops (`crops`: given patches, detector boxes above a
confidence threshold, a grid or the centre), every crop a sample with its row's target and features;
the sheets decide the split of a photo, so crops of one photo never straddle splits. The features are
filled and standardised with statistics of the training rows only (g2d.datasets.misme.tabular),
stored in the dataset file's `preprocessing` attribute and the report. Bad rows (a bad cell, a
non-positive target, a missing or unreadable photo, a bad box, a photo in two splits) are skipped and
listed with file, row and column; above `max_skipped_fraction` the stage fails.

The package: `params` (the preprocess section), `sheets` (.xlsx / .csv rows), `crops` (boxes and the
cut), `tabular` (the normalisation), and here the source interface of g2d.datasets.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from g2d.datasets import RawDataError
from g2d.datasets.common import Sample, Skipped, preprocessing_record, reason, report_header, write_dataset
from g2d.datasets.misme.crops import NormBox, centre_box, cut, grid_boxes, read_rgb, read_yolo_boxes
from g2d.datasets.misme.params import SPLIT_NAMES, CropParams, Params
from g2d.datasets.misme.sheets import Row, read_rows
from g2d.datasets.misme.tabular import TabularStats, missing_counts
from g2d.datasets.parallel import ordered_map
from g2d.io.dataset_file import DatasetMeta

__all__ = ["IMAGE_MODALITIES", "MODALITIES", "SOURCE", "Params", "check_raw", "preprocess"]

SOURCE = "misme"
MODALITIES: tuple[str, ...] = ("tabular", "image")
IMAGE_MODALITIES: tuple[str, ...] = ("image",)
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
LAYOUT = """expected layout (MIS-ME's release; names set in datasets.<name>.preprocess):
  {raw_dir}/
    {sheets}        one sheet per split (.xlsx or .csv), header row: {columns}
    {images}/<image>                                  the photos or soil patches the sheets name
    {boxes}/<photo stem>.txt                          YOLO boxes `class cx cy w h [conf]` (crops.mode: yolo)
MIS-ME's data is not downloadable from here; `g2d generate-misme-demo` writes a synthetic set in this layout."""


@dataclass(frozen=True)
class Job:
    """One listed photo to cut: its row, file, features already normalised and, for yolo, its boxes."""

    row: Row
    path: Path
    features: np.ndarray
    boxes: tuple[NormBox, ...] = ()


def layout(root: Path, params: Params) -> str:
    return LAYOUT.format(
        raw_dir=root,
        sheets=", ".join(params.sheets[s] for s in SPLIT_NAMES),
        columns=", ".join([params.image_column, params.target, *params.features]),
        images=params.images_dir,
        boxes=params.crops.boxes_dir,
    )


def check_raw(raw_dir: str | Path, params: Params | None = None) -> None:
    """Raise RawDataError showing the expected tree unless the sheets and the photo folder are there."""
    params = params or Params()
    root = Path(raw_dir)
    shown = layout(root, params)
    if not root.is_dir():
        raise RawDataError(f"{root}: raw MIS-ME folder not found\n{shown}")
    for split in SPLIT_NAMES:
        if not (root / params.sheets[split]).is_file():
            raise RawDataError(f"{root / params.sheets[split]}: the {split} sheet is missing\n{shown}")
    if not (root / params.images_dir).is_dir():
        raise RawDataError(f"{root / params.images_dir}: photo folder missing\n{shown}")
    if params.crops.mode == "yolo" and not (root / params.crops.boxes_dir).is_dir():
        raise RawDataError(f"{root / params.crops.boxes_dir}: folder of YOLO label files missing\n{shown}")


def preprocess(
    dataset: str,
    raw_dir: str | Path,
    params: Params,
    out_path: str | Path,
    report_path: str | Path,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write the dataset file and the report; return the report. `workers` processes cut the crops;
    the output does not depend on it."""
    root = Path(raw_dir)
    check_raw(root, params)
    rows: list[Row] = []
    skipped: list[Skipped] = []
    for split in SPLIT_NAMES:
        got, bad = read_rows(
            root / params.sheets[split], split, params.image_column, params.target, params.features, params.sheet
        )
        rows += got
        skipped += bad
    found = len(rows) + len(skipped)
    rows, lost = exclusive_photos(rows, params.photo_pattern if params.crops.mode == "given" else None)
    skipped += lost
    located: list[tuple[Row, Path, tuple[NormBox, ...]]] = []
    for row in rows:
        outcome = locate(root, row, params)
        if isinstance(outcome, Skipped):
            skipped.append(outcome)
        else:
            located.append((row, *outcome))
    train = [row.features for row, _, _ in located if row.split == "train"]
    if not train:
        raise RawDataError(
            f"{root / params.sheets['train']}: no usable training row (see the skipped rows in {report_path}); "
            "the tabular normalisation is fitted on training rows only"
        )
    try:
        stats = TabularStats.fit(params.features, np.asarray(train, dtype=np.float64))
    except ValueError as exc:
        raise RawDataError(f"{root / params.sheets['train']}: {exc}") from exc
    jobs = [Job(row, path, stats.apply(row.features), boxes) for row, path, boxes in located]
    missing = {
        s: missing_counts(params.features, [r.features for r, _, _ in located if r.split == s]) for s in SPLIT_NAMES
    }
    meta = DatasetMeta(
        dataset=dataset,
        source=SOURCE,
        task="regression",
        modalities=MODALITIES,
        preprocessing=preprocessing_record(SOURCE, params, tabular_normalisation=stats.record()),
    )
    n = len(params.features)
    return write_dataset(
        meta,
        {"tabular": ((n,), "float32"), "image": ((3, params.crops.size, params.crops.size), "uint8")},
        flatten(ordered_map(functools.partial(cut_photo, crops=params.crops), jobs, workers or params.workers)),
        total=sum(crop_count(j, params.crops) for j in jobs),
        unit="crop",
        out_path=out_path,
        report_path=report_path,
        found=found,
        what="listed photos",
        max_skipped_fraction=params.max_skipped_fraction,
        skipped=skipped,
        report=functools.partial(
            build_report, dataset, root, params, found, stats, missing, photos=_per_split(j.row for j in jobs)
        ),
    )


def exclusive_photos(rows: Sequence[Row], photo_pattern: str | None) -> tuple[list[Row], list[Skipped]]:
    """The rows whose photo is listed in one split only, once; the others skipped, naming where they are.

    The photo of a row is its image, or with `photo_pattern` (given patches) the pattern's `photo`
    group of the image's file stem, so that patches cut from one photo share it.
    """
    pattern = re.compile(photo_pattern) if photo_pattern else None

    def photo(row: Row) -> str:
        stem = Path(row.image).stem
        match = pattern.match(stem) if pattern else None
        return match["photo"] if match else row.image

    places: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        places[photo(row)].append(row)
    kept: list[Row] = []
    skipped: list[Skipped] = []
    seen: dict[str, Row] = {}
    for row in rows:
        listed = places[photo(row)]
        splits = sorted({r.split for r in listed})
        if len(splits) > 1:
            where = "; ".join(f"{r.split}: {r.where}" for r in listed)
            skipped.append(
                Skipped(
                    row.image,
                    row.sheet,
                    f"row {row.row}: photo {photo(row)!r} is listed in several splits ({where}); its crops "
                    "would straddle splits, so every row of it is skipped. List each photo in one sheet only",
                )
            )
        elif row.image in seen:
            first = seen[row.image]
            skipped.append(
                Skipped(row.image, row.sheet, f"row {row.row}: {row.image!r} is listed again (first at {first.where})")
            )
        else:
            seen[row.image] = row
            kept.append(row)
    return kept, skipped


def image_path(root: Path, params: Params, image: str) -> Path | None:
    """The photo a sheet names, or None; a name without an extension tries .jpg, .jpeg and .png."""
    base = root / params.images_dir / image
    candidates = (
        [base] if base.suffix.lower() in IMAGE_SUFFIXES else [base.with_name(base.name + s) for s in IMAGE_SUFFIXES]
    )
    if base.suffix and base not in candidates:
        candidates.insert(0, base)
    return next((p for p in candidates if p.is_file()), None)


def locate(root: Path, row: Row, params: Params) -> tuple[Path, tuple[NormBox, ...]] | Skipped:
    """The row's photo file and, for yolo crops, its kept boxes; or why the row is skipped."""
    path = image_path(root, params, row.image)
    if path is None:
        return Skipped(
            row.image,
            str(root / params.images_dir / row.image),
            f"photo not found (listed in {row.where}, column {params.image_column!r}); add the file or delete the row",
        )
    if params.crops.mode != "yolo":
        return path, ()
    labels = root / params.crops.boxes_dir / f"{path.stem}.txt"
    if not labels.is_file():
        return Skipped(row.image, str(labels), f"no YOLO label file for the photo listed in {row.where}")
    try:
        boxes = read_yolo_boxes(labels, params.crops.confidence, params.crops.max_boxes)
    except ValueError as exc:
        return Skipped(row.image, str(labels), f"{exc} (photo listed in {row.where})")
    if not boxes:
        return Skipped(
            row.image,
            str(labels),
            f"no box with confidence >= {params.crops.confidence} (photo listed in {row.where}); "
            "lower crops.confidence or drop the row",
        )
    return path, tuple(boxes)


def crop_boxes(image: np.ndarray, job: Job, crops: CropParams) -> list[tuple[int, int, int, int]]:
    """The pixel boxes (top, left, height, width) to cut from one photo."""
    height, width = image.shape[:2]
    if crops.mode == "given":
        return [(0, 0, height, width)]
    if crops.mode == "yolo":
        return [b.pixels(height, width) for b in job.boxes]
    if crops.mode == "grid":
        return grid_boxes(height, width, crops.grid[0], crops.grid[1])
    return [centre_box(height, width, crops.fraction)]


def crop_count(job: Job, crops: CropParams) -> int:
    """How many crops a photo gives (for the progress bar; a photo that fails to decode gives none)."""
    if crops.mode == "yolo":
        return len(job.boxes)
    return crops.grid[0] * crops.grid[1] if crops.mode == "grid" else 1


def cut_photo(job: Job, crops: CropParams) -> list[Sample] | Skipped:
    """Every crop of one photo as a sample with the photo's split, target and features; ids are the
    image name (given) or `<image>#<k>`. A photo that cannot be decoded is skipped, naming the file."""
    try:
        image = read_rgb(job.path)
    except Exception as exc:
        return Skipped(job.row.image, str(job.path), f"{reason(exc, job.path)} (listed in {job.row.where})")
    boxes = crop_boxes(image, job, crops)
    return [
        Sample(
            job.row.split,
            {"tabular": job.features, "image": cut(image, box, crops.size)},
            job.row.target,
            job.row.image if crops.mode == "given" else f"{job.row.image}#{k}",
        )
        for k, box in enumerate(boxes)
    ]


def flatten(outcomes: Iterator[list[Sample] | Skipped]) -> Iterator[Sample | Skipped]:
    """One item per crop (or skipped photo), closing the decoding workers when writing stops."""
    try:
        for outcome in outcomes:
            if isinstance(outcome, Skipped):
                yield outcome
            else:
                yield from outcome
    finally:
        close = getattr(outcomes, "close", None)
        if callable(close):
            close()


def _per_split(rows: Iterator[Row]) -> dict[str, int]:
    counts = dict.fromkeys(SPLIT_NAMES, 0)
    for row in rows:
        counts[row.split] += 1
    return counts


def build_report(
    dataset: str,
    root: Path,
    params: Params,
    found: int,
    stats: TabularStats,
    missing: Mapping[str, Mapping[str, int]],
    counts: Mapping[str, int],
    skipped: Sequence[Skipped],
    photos: Mapping[str, int],
) -> dict[str, Any]:
    """The JSON report: rows found, photos and crops written per split, the normalisation, the skips."""
    return {
        **report_header(dataset, SOURCE, root, counts, found, skipped, params),
        "rows_found": found,
        "photos": dict(photos),
        "crops": params.crops.mode,
        "tabular_normalisation": stats.record(),
        "missing_values_filled": {s: dict(m) for s, m in missing.items()},
    }
