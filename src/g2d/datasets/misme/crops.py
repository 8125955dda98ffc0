"""Soil crops: the boxes a photo is cut into (detector boxes, a grid, the centre) and the cut itself.

Boxes are (top, left, height, width) in pixels of the photo. YOLO label rows are normalised to the
photo (`class cx cy w h [confidence]`), so they are checked against [0, 1] before the photo is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

BOX_TOLERANCE = 1e-6  # normalised coordinates this far outside [0, 1] are rounding, not a bad box


@dataclass(frozen=True)
class NormBox:
    """A detector box as the label file gives it: centre and size as fractions of the photo."""

    cx: float
    cy: float
    w: float
    h: float
    confidence: float
    line: int

    def pixels(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) in pixels, at least one pixel each way, inside the photo."""
        left = min(width - 1, max(0, round((self.cx - self.w / 2) * width)))
        top = min(height - 1, max(0, round((self.cy - self.h / 2) * height)))
        right = max(left + 1, min(width, round((self.cx + self.w / 2) * width)))
        bottom = max(top + 1, min(height, round((self.cy + self.h / 2) * height)))
        return top, left, bottom - top, right - left


def read_yolo_boxes(path: Path, threshold: float, max_boxes: int = 0) -> list[NormBox]:
    """The boxes of a YOLO label file with confidence >= `threshold` (rows without a confidence are
    kept), most confident first, at most `max_boxes` (0: all). ValueError names the line of a malformed
    row or of a box outside the photo."""
    boxes: list[NormBox] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (5, 6):
            raise ValueError(
                f"line {line_no}: expected `class cx cy w h [confidence]`, got {line.strip()!r}; fix or delete it"
            )
        try:
            cx, cy, w, h, *conf = (float(f) for f in fields[1:])
        except ValueError:
            raise ValueError(f"line {line_no}: {line.strip()!r} holds a value that is not a number") from None
        box = NormBox(cx, cy, w, h, conf[0] if conf else 1.0, line_no)
        x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        if w <= 0 or h <= 0 or min(x0, y0) < -BOX_TOLERANCE or max(x1, y1) > 1 + BOX_TOLERANCE:
            raise ValueError(
                f"line {line_no}: box (cx {cx:g}, cy {cy:g}, w {w:g}, h {h:g}) reaches outside the image "
                "(normalised edges must lie in [0, 1]); fix the detector output"
            )
        if box.confidence >= threshold:
            boxes.append(box)
    boxes.sort(key=lambda b: (-b.confidence, b.line))
    return boxes[:max_boxes] if max_boxes else boxes


def grid_boxes(height: int, width: int, rows: int, cols: int) -> list[tuple[int, int, int, int]]:
    """`rows` x `cols` tiles covering the photo, row by row; edges at floor(i * size / n)."""
    ys = [i * height // rows for i in range(rows + 1)]
    xs = [j * width // cols for j in range(cols + 1)]
    return [(ys[i], xs[j], ys[i + 1] - ys[i], xs[j + 1] - xs[j]) for i in range(rows) for j in range(cols)]


def centre_box(height: int, width: int, fraction: float) -> tuple[int, int, int, int]:
    """The centred square whose side is `fraction` of the photo's short side (at least one pixel)."""
    side = max(1, round(fraction * min(height, width)))
    return (height - side) // 2, (width - side) // 2, side, side


def cut(image: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Crop `box` of an (H, W, 3) RGB photo and resize it to (3, size, size) uint8 (area interpolation)."""
    import cv2

    top, left, h, w = box
    patch = image[top : top + h, left : left + w]
    if patch.shape[:2] != (size, size):
        patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(patch.transpose(2, 0, 1))


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; ValueError when OpenCV cannot decode it."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: unreadable image: OpenCV cannot decode it (corrupt, truncated or not an image file)")
    return np.ascontiguousarray(image[:, :, ::-1])
