"""Reading the split sheets (.xlsx or .csv) into rows, with every bad cell named by file, row and column.

Rows are numbered as a spreadsheet shows them (the header is row 1), so a message points at the cell
a user opens. A missing column makes the whole sheet unusable (RawDataError); a bad cell skips its
row only (a `Skipped` record), and `max_skipped_fraction` decides whether the stage goes on.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from g2d.datasets import RawDataError
from g2d.datasets.common import Skipped

MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "null", "none"})


@dataclass(frozen=True)
class Row:
    """One usable sheet row: where it is, its photo, target and features (NaN where missing)."""

    split: str
    sheet: str
    row: int
    image: str
    target: float
    features: tuple[float, ...]

    @property
    def where(self) -> str:
        return f"{self.sheet}, row {self.row}"


def read_table(path: Path, sheet: str | None = None) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    """(header, [(row number, cells)]) of a .xlsx worksheet (`sheet`, default the first) or a .csv file;
    fully empty rows are left out."""
    if not path.is_file():
        raise RawDataError(f"{path}: split sheet not found; check datasets.<name>.preprocess.sheets")
    rows = list(_xlsx_rows(path, sheet) if path.suffix.lower() == ".xlsx" else _csv_rows(path))
    if not rows:
        raise RawDataError(f"{path}: the sheet is empty; its first row must name the columns")
    header = ["" if c is None else str(c).strip() for c in rows[0]]
    body = [(n, cells) for n, cells in enumerate(rows[1:], start=2) if any(not _blank(c) for c in cells)]
    return header, body


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[list[Any]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise RawDataError(f"{path}: cannot be read as an .xlsx workbook ({type(exc).__name__}: {exc})") from exc
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise RawDataError(f"{path}: no worksheet {sheet!r}; it has {', '.join(book.sheetnames)}")
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        for cells in ws.iter_rows(values_only=True):
            yield list(cells)
    finally:
        book.close()


def _csv_rows(path: Path) -> Iterator[list[Any]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        yield from csv.reader(fh)


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def number(cell: Any) -> float | None:
    """A cell as a number; None when missing (empty, NaN, `NA`...); ValueError when it is not a number."""
    if cell is None:
        return None
    if isinstance(cell, bool):
        raise ValueError(f"{cell!r} is a true/false value, not a number")
    if isinstance(cell, (int, float)):
        value = float(cell)
    elif isinstance(cell, str):
        text = cell.strip()
        if text.lower() in MISSING_TEXT:
            return None
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{cell!r} is not a number") from None
    else:
        raise ValueError(f"{cell!r} ({type(cell).__name__}) is not a number")
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise ValueError(f"{cell!r} is infinite")
    return value


def read_rows(
    path: Path, split: str, image_column: str, target: str, features: Sequence[str], sheet: str | None = None
) -> tuple[list[Row], list[Skipped]]:
    """The usable rows of one split's sheet and the skipped ones (bad cells, missing or non-positive
    target); a required column that is absent stops the stage with the columns the sheet has."""
    header, body = read_table(path, sheet)
    index: dict[str, int] = {}
    for column in (image_column, target, *features):
        if column not in header:
            raise RawDataError(
                f"{path}: no column {column!r} in the header row (row 1); it has {', '.join(map(repr, header))}. "
                "Rename the column or set image_column / target / features in datasets.<name>.preprocess"
            )
        index[column] = header.index(column)
    rows: list[Row] = []
    skipped: list[Skipped] = []
    for n, cells in body:
        cell = dict.fromkeys(index, None) | {c: cells[i] for c, i in index.items() if i < len(cells)}
        image = "" if _blank(cell[image_column]) else str(cell[image_column]).strip()
        name = image or f"{path.name}:row{n}"
        problem = None
        if not image:
            problem = f"row {n}, column {image_column!r}: empty; name the row's photo"
        values: list[float] = []
        for column in (target, *features):
            if problem is not None:
                break
            try:
                value = number(cell[column])
            except ValueError as exc:
                problem = f"row {n}, column {column!r}: {exc}; fix the cell or delete the row"
                break
            if column == target:
                if value is None:
                    problem = f"row {n}, column {column!r}: empty; the target is needed for every row"
                elif value <= 0:
                    problem = (
                        f"row {n}, column {column!r}: {value:g} is not positive; MAPE divides by the target, "
                        "so it is undefined at zero"
                    )
            values.append(math.nan if value is None else value)
        if problem is not None:
            skipped.append(Skipped(name, str(path), problem))
            continue
        rows.append(Row(split, str(path), n, image, values[0], tuple(values[1:])))
    return rows, skipped
