"""A synthetic stand-in for MIS-ME, in its raw layout: field photos with soil regions, detector boxes,
and weather sheets, for running the regression pipeline without the real data.

Every photo has a volumetric water content (VWC, m^3/m^3) drawn in [0.08, 0.45]; both modalities
carry it, with the imbalance the paper reports (image strong, table weak):
  - image: a grassy field photo under a per-photo illumination gain (1 +- `illumination`) holding
    `soils` rectangles of bare soil. Wet soil is darker and redder-brown, dry soil paler and cracked
    (the number of dark crack lines falls with moisture), all in pixel noise (`image_noise`). Brightness
    alone is confounded by the illumination; the cracks and the soil-to-grass contrast are not;
  - table: the eight MIS-ME weather columns. Four of them (relative humidity up, air temperature,
    solar flux and wind down, precipitation up) follow the standardised VWC with correlation
    `weather_signal` each; barometric pressure and the two tilts are noise. `missing` of the cells are
    left empty, as the real sheets have gaps.
`layout: photos` writes whole photos plus YOLO label files (`labels/<photo>.txt`: one row per soil
region with confidence in [0.6, 1), and `decoys` boxes on grass with confidence below 0.5, which
`crops.confidence: 0.5` drops); `layout: patches` writes the soil regions pre-cut, as the release
does ({station}_{date}_{time}_{k}.jpg). Photos are split at random (`val_fraction`, `test_fraction`),
so crops of one photo share a split. Every draw comes from numpy Generators seeded by (seed, photo).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from g2d.config.schema import require
from g2d.datasets.misme.params import MISME_FEATURES, SPLIT_NAMES
from g2d.io.atomic_dir import generated_dir

VWC_RANGE = (0.08, 0.45)
CAPTURE_TIME = "130000"  # MIS-ME's photos are 13:00 captures
FIRST_DAY = datetime.date(2022, 4, 1)
SOIL_RGB = np.array([172.0, 132.0, 96.0])  # dry soil; wet soil is darker (see soil_colour)
GRASS_RGB = np.array([70.0, 120.0, 55.0])
# How each weather column follows the standardised VWC z: (sign of its correlation, mean, spread).
WEATHER: dict[str, tuple[int, float, float]] = {
    "air_temperature": (-1, 27.0, 4.0),
    "relative_humidity": (1, 55.0, 15.0),
    "precipitation": (1, 2.0, 3.0),
    "solar_flux_density": (-1, 650.0, 150.0),
    "wind_speed": (-1, 4.0, 1.5),
    "barometric_pressure": (0, 975.0, 5.0),
    "tilt_north_south": (0, 0.0, 0.3),
    "tilt_west_east": (0, 0.0, 0.3),
}


@dataclass(frozen=True)
class Params:
    """Size of the synthetic MIS-ME set and how much each modality says about moisture."""

    seed: int = 0
    stations: int = 3
    days: int = 100
    width: int = 128
    height: int = 96
    soils: int = 3
    layout: Literal["photos", "patches"] = "photos"
    patch_size: int = 64
    sheet_format: Literal["xlsx", "csv"] = "xlsx"
    decoys: int = 1
    illumination: float = 0.15
    image_noise: float = 12.0
    weather_signal: float = 0.35
    missing: float = 0.02
    val_fraction: float = 0.2
    test_fraction: float = 0.2

    def validate(self, where: str) -> None:
        require(self.seed >= 0, f"{where}.seed", "must be a non-negative integer")
        require(1 <= self.stations <= 9, f"{where}.stations", "must be in [1, 9] (stations OK001-OK009)")
        require(self.days >= 1, f"{where}.days", "must be at least 1")
        require(self.width >= 48 and self.height >= 48, f"{where}.width", "photos need at least 48 x 48 pixels")
        require(1 <= self.soils <= 6, f"{where}.soils", "must be in [1, 6] soil regions per photo")
        require(self.patch_size >= 8, f"{where}.patch_size", "must be at least 8 pixels")
        require(self.decoys >= 0, f"{where}.decoys", "must be 0 or more")
        require(0 <= self.illumination < 1, f"{where}.illumination", "must be in [0, 1)")
        require(self.image_noise >= 0, f"{where}.image_noise", "must be non-negative")
        require(0 <= self.weather_signal < 1, f"{where}.weather_signal", "must be a correlation in [0, 1)")
        require(0 <= self.missing < 0.5, f"{where}.missing", "must be a fraction in [0, 0.5)")
        for name in ("val_fraction", "test_fraction"):
            require(0 < getattr(self, name) < 0.5, f"{where}.{name}", "must be in (0, 0.5)")


@dataclass(frozen=True)
class Photo:
    """One photo to draw: its name, split, moisture, weather row and random stream."""

    index: int
    name: str
    station: str
    split: str
    vwc: float
    weather: tuple[float | None, ...]
    stream: np.random.SeedSequence


def plan_photos(params: Params) -> list[Photo]:
    """Every photo, station by station and day by day, with its split, VWC and weather drawn here."""
    n = params.stations * params.days
    order = np.random.default_rng([params.seed, 1]).permutation(n)
    n_test = max(1, round(params.test_fraction * n))
    n_val = max(1, round(params.val_fraction * n))
    split_of = {int(i): "test" for i in order[:n_test]}
    split_of.update({int(i): "val" for i in order[n_test : n_test + n_val]})
    photos = []
    for index in range(n):
        station, day = divmod(index, params.days)
        stream = np.random.SeedSequence([params.seed, 0, index])
        rng = np.random.default_rng(stream.spawn(1)[0])
        vwc = VWC_RANGE[0] + (VWC_RANGE[1] - VWC_RANGE[0]) * rng.beta(2.0, 2.0)
        z = (vwc - 0.265) / 0.083  # about standard: Beta(2, 2) scaled to the range has std 0.083
        weather: list[float | None] = []
        for sign, mean, spread in WEATHER.values():
            r = params.weather_signal
            value = mean + spread * (sign * r * z + np.sqrt(1 - (r * sign) ** 2) * rng.normal())
            weather.append(None if rng.random() < params.missing else round(float(value), 3))
        weather[2] = None if weather[2] is None else max(0.0, weather[2])  # no negative rain
        date = FIRST_DAY + datetime.timedelta(days=day)
        name = f"OK{station + 1:03d}_{date:%Y%m%d}_{CAPTURE_TIME}"
        photos.append(
            Photo(index, name, f"OK{station + 1:03d}", split_of.get(index, "train"), float(vwc), tuple(weather), stream)
        )
    return photos


def soil_colour(vwc: float) -> np.ndarray:
    """Soil RGB at this moisture: darker and relatively redder when wet (m = 0 dry .. 1 wet)."""
    m = (vwc - VWC_RANGE[0]) / (VWC_RANGE[1] - VWC_RANGE[0])
    return SOIL_RGB * (1.0 - 0.5 * m) * np.array([1.0, 1.0 - 0.12 * m, 1.0 - 0.2 * m])


def draw_photo(
    photo: Photo, params: Params
) -> tuple[np.ndarray, list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]:
    """(H, W, 3) uint8 RGB photo, its soil boxes and decoy boxes (top, left, height, width)."""
    rng = np.random.default_rng(photo.stream.spawn(2)[1])
    h, w = params.height, params.width
    grass = GRASS_RGB * (1 + 0.25 * rng.standard_normal((h, w, 1)))
    image = grass.copy()
    soils: list[tuple[int, int, int, int]] = []
    m = (photo.vwc - VWC_RANGE[0]) / (VWC_RANGE[1] - VWC_RANGE[0])
    side_range = (max(12, min(h, w) // 3), max(13, min(h, w) // 2))
    for _ in range(params.soils):
        for _attempt in range(20):
            bh, bw = (int(rng.integers(*side_range)) for _ in range(2))
            top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
            if all(_apart((top, left, bh, bw), s) for s in soils):
                break
        soils.append((top, left, bh, bw))
        patch = soil_colour(photo.vwc) * (1 + 0.08 * rng.standard_normal((bh, bw, 1)))
        cracks = rng.poisson(6 * (1 - m) ** 1.5)
        for _ in range(cracks):  # dark lines across dry soil
            if rng.random() < 0.5:
                row = int(rng.integers(0, bh))
                patch[row, :] *= 0.45
            else:
                col = int(rng.integers(0, bw))
                patch[:, col] *= 0.45
        image[top : top + bh, left : left + bw] = patch
    decoys = []
    for _ in range(params.decoys):
        bh, bw = side_range[0], side_range[0]
        decoys.append((int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1)), bh, bw))
    gain = 1 + params.illumination * (2 * rng.random() - 1)
    image = image * gain + params.image_noise * rng.standard_normal(image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), soils, decoys


def _apart(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two boxes do not overlap."""
    return a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]


def yolo_line(box: tuple[int, int, int, int], height: int, width: int, confidence: float) -> str:
    """`0 cx cy w h conf` for a pixel box, normalised to the photo."""
    top, left, bh, bw = box
    cx, cy = (left + bw / 2) / width, (top + bh / 2) / height
    return f"0 {cx:.6f} {cy:.6f} {bw / width:.6f} {bh / height:.6f} {confidence:.3f}"


def generate(out_dir: str | Path, params: Params, force: bool = False) -> dict[str, Any]:
    """Write the synthetic MIS-ME tree to `out_dir`, replacing it only once every file is written, and
    only if it is empty or an earlier demo (or `force`)."""
    import cv2

    from g2d.datasets.misme.crops import cut

    photos = plan_photos(params)
    header = ["image", "vwc", *MISME_FEATURES]
    rows: dict[str, list[list[Any]]] = {s: [] for s in SPLIT_NAMES}
    per_station: dict[str, list[list[Any]]] = {}
    with generated_dir(out_dir, force) as staging:
        (staging / "images").mkdir()
        if params.layout == "photos":
            (staging / "labels").mkdir()
        for photo in photos:
            image, soils, decoys = draw_photo(photo, params)
            if params.layout == "photos":
                names = [f"{photo.name}.jpg"]
                cv2.imwrite(str(staging / "images" / names[0]), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
                rng = np.random.default_rng([params.seed, 2, photo.index])
                lines = [yolo_line(b, params.height, params.width, 0.6 + 0.39 * rng.random()) for b in soils]
                lines += [yolo_line(b, params.height, params.width, 0.05 + 0.4 * rng.random()) for b in decoys]
                (staging / "labels" / f"{photo.name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            else:
                names = []
                for k, box in enumerate(soils):
                    names.append(f"{photo.name}_{k}.jpg")
                    patch = cut(image, box, params.patch_size).transpose(1, 2, 0)
                    cv2.imwrite(str(staging / "images" / names[-1]), patch[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            for name in names:
                row = [name, round(photo.vwc, 4), *photo.weather]
                rows[photo.split].append(row)
                if photo.split == "test":
                    per_station.setdefault(photo.station, []).append(row)
        suffix = params.sheet_format
        for split in SPLIT_NAMES:
            write_sheet(staging / f"combined_only_{split}_set.{suffix}", header, rows[split])
        for station, station_rows in sorted(per_station.items()):
            write_sheet(staging / f"{station}_only_test_set.{suffix}", header, station_rows)
        summary = {
            "out_dir": str(out_dir),
            "photos": len(photos),
            "rows": {s: len(r) for s, r in rows.items()},
            "layout": params.layout,
            "vwc_mean": round(float(np.mean([p.vwc for p in photos])), 4),
        }
        (staging / "README.txt").write_text(readme(params, summary), encoding="utf-8")
    return summary


def write_sheet(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """One split sheet, .xlsx (openpyxl, fixed document dates so the bytes repeat) or .csv."""
    if path.suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(["" if v is None else v for v in row] for row in rows)
        return
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    when = datetime.datetime(2024, 1, 1)
    book.properties.created = when
    book.properties.modified = when
    sheet = book.create_sheet("Sheet1")
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    book.save(path)


def readme(params: Params, summary: dict[str, Any]) -> str:
    """README.txt: what this folder is and how it was made."""
    return (
        f"Synthetic MIS-ME stand-in written by g2d.datasets.misme_demo.generate.\n\n{(__doc__ or '').strip()}\n\n"
        f"Summary: {json.dumps(summary, sort_keys=True)}\n\n"
        f"Params:\n{json.dumps(dataclasses.asdict(params), indent=2, sort_keys=True)}\n"
    )
