"""The `datasets.<name>.preprocess` section of source `misme`: where the sheets and photos are, which
columns hold what, and how photos become soil crops. Plain dataclasses (validation imports no torch)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from g2d.config.schema import ConfigError, require

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
MISME_FEATURES: tuple[str, ...] = (
    "air_temperature",
    "relative_humidity",
    "precipitation",
    "solar_flux_density",
    "wind_speed",
    "barometric_pressure",
    "tilt_north_south",
    "tilt_west_east",
)
MISME_SHEETS: dict[str, str] = {s: f"combined_only_{s}_set.xlsx" for s in SPLIT_NAMES}
SHEET_SUFFIXES: tuple[str, ...] = (".xlsx", ".csv")


@dataclass(frozen=True)
class CropParams:
    """How each listed photo becomes soil crops, every crop a sample carrying its photo's row.

    given: the listed image is already a soil patch (MIS-ME's release), resized only;
    yolo: one crop per detector box in `boxes_dir/<photo stem>.txt` (YOLO rows `class cx cy w h
    [confidence]`, normalised to the photo) with confidence >= `confidence` (rows without one are
    kept), at most `max_boxes` (0: all), most confident first; grid: the photo cut into
    `grid` = [rows, cols] equal tiles; centre: one square of `fraction` of the photo's short side.
    Crops are resized to `size` x `size` and stored as uint8 RGB.
    """

    mode: Literal["given", "yolo", "grid", "centre"] = "given"
    size: int = 224
    boxes_dir: str = "labels"
    confidence: float = 0.5
    max_boxes: int = 0
    grid: tuple[int, ...] = (2, 2)
    fraction: float = 1.0

    def validate(self, where: str) -> None:
        require(self.size >= 8, f"{where}.size", f"must be at least 8 pixels, got {self.size}")
        require(0 <= self.confidence <= 1, f"{where}.confidence", f"must be in [0, 1], got {self.confidence}")
        require(self.max_boxes >= 0, f"{where}.max_boxes", "must be 0 (every box) or a positive number")
        require(
            len(self.grid) == 2 and all(n >= 1 for n in self.grid),
            f"{where}.grid",
            f"expected [rows, cols] of positive integers, got {list(self.grid)}",
        )
        require(0 < self.fraction <= 1, f"{where}.fraction", f"must be in (0, 1], got {self.fraction}")
        require(bool(self.boxes_dir), f"{where}.boxes_dir", "name the folder of YOLO label files")


@dataclass(frozen=True)
class Params:
    """Source `misme`: one sheet (.xlsx or .csv) per split under the raw folder, listing a photo
    (`image_column`, a file under `images_dir`; without an extension .jpg, .jpeg and .png are tried),
    the regression target (`target`, > 0 since MAPE divides by it) and the tabular `features`.
    `sheet` names the worksheet of .xlsx files (default: the first). `photo_pattern` (given mode)
    finds the photo a patch was cut from in the patch's file stem (group `photo`; MIS-ME names
    patches {station}_{date}_{time}_{k}), so that patches of one photo listed in different splits are
    caught and skipped; null turns the check off."""

    sheets: dict[str, str] = field(default_factory=lambda: dict(MISME_SHEETS))
    sheet: str | None = None
    images_dir: str = "images"
    image_column: str = "image"
    target: str = "vwc"
    features: tuple[str, ...] = MISME_FEATURES
    photo_pattern: str | None = r"^(?P<photo>.+)_\d+$"
    crops: CropParams = field(default_factory=CropParams)
    max_skipped_fraction: float = 0.05
    workers: int = 1

    def validate(self, where: str) -> None:
        require(
            sorted(self.sheets) == sorted(SPLIT_NAMES),
            f"{where}.sheets",
            f"give one sheet per split, keys {', '.join(SPLIT_NAMES)}; got {', '.join(self.sheets) or 'none'}",
        )
        for split, path in self.sheets.items():
            require(
                path.lower().endswith(SHEET_SUFFIXES),
                f"{where}.sheets.{split}",
                f"{path!r} is neither .xlsx nor .csv",
            )
        require(len(self.features) > 0, f"{where}.features", "name at least one tabular column")
        columns = [self.image_column, self.target, *self.features]
        require(
            len(set(columns)) == len(columns),
            f"{where}.features",
            f"image_column, target and features must be distinct columns, got {columns}",
        )
        if self.photo_pattern is not None:
            try:
                compiled = re.compile(self.photo_pattern)
            except re.error as exc:
                raise ConfigError(f"{where}.photo_pattern: not a regular expression: {exc}") from exc
            require(
                "photo" in compiled.groupindex,
                f"{where}.photo_pattern",
                "needs a group named photo, e.g. ^(?P<photo>.+)_\\d+$",
            )
        require(
            0 <= self.max_skipped_fraction <= 1,
            f"{where}.max_skipped_fraction",
            f"must be in [0, 1], got {self.max_skipped_fraction}",
        )
        require(self.workers >= 1, f"{where}.workers", "must be at least 1")
