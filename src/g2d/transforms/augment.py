"""Random resized crop and horizontal flip of images and frame stacks, as boxes drawn, then applied.

A crop is drawn the way the reference's RandomResizedCrop draws one: an area fraction uniform in
`scale` and an aspect ratio (width / height) log-uniform in `ratio`, up to BOX_TRIES tries for a box
that fits the frame, else the largest centred box whose ratio is within `ratio`. The box is then
resized back to the stored frame size (bilinear), so shapes never change. Drawing and applying are
separate so that boxes can be stored (a view bank), inspected and applied again at read time.

One box and one flip per sample: all frames of a stack get the same crop, so motion stays coherent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BOX_TRIES = 10
CV_MAX_CHANNELS = 128  # channels per image OpenCV takes (CV_CN_MAX: 512 in OpenCV 4, 128 in OpenCV 5)


def frame_size(shape: Sequence[int]) -> tuple[int, int]:
    """(height, width) of a sample shape (C, H, W) or (T, C, H, W)."""
    if len(shape) not in (3, 4):
        raise ValueError(f"an image is (C, H, W) and a frame stack (T, C, H, W); got a sample of shape {tuple(shape)}")
    return int(shape[-2]), int(shape[-1])


def draw_boxes(
    rng: np.random.Generator, n: int, height: int, width: int, scale: Sequence[float], ratio: Sequence[float]
) -> np.ndarray:
    """`n` crop boxes (top, left, height, width) int32 inside a height x width frame.

    The generator is consumed by the same amount whatever the outcome (all tries are drawn for all
    boxes at once), so a bank's boxes depend only on its seed and size.
    """
    area = height * width
    target = area * rng.uniform(scale[0], scale[1], size=(n, BOX_TRIES))
    aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]), size=(n, BOX_TRIES)))
    w = np.rint(np.sqrt(target * aspect)).astype(np.int64)
    h = np.rint(np.sqrt(target / aspect)).astype(np.int64)
    fits = (w >= 1) & (w <= width) & (h >= 1) & (h <= height)
    first = fits.argmax(axis=1)
    rows = np.arange(n)
    fallback_h, fallback_w = centre_box(height, width, ratio)
    found = fits.any(axis=1)
    h_box = np.where(found, h[rows, first], fallback_h)
    w_box = np.where(found, w[rows, first], fallback_w)
    top = np.where(found, rng.integers(0, height - h_box + 1), (height - h_box) // 2)
    left = np.where(found, rng.integers(0, width - w_box + 1), (width - w_box) // 2)
    return np.stack([top, left, h_box, w_box], axis=1).astype(np.int32)


def centre_box(height: int, width: int, ratio: Sequence[float]) -> tuple[int, int]:
    """(height, width) of the fallback crop: the whole frame, narrowed to the nearest allowed ratio."""
    aspect = width / height
    if aspect < ratio[0]:
        return max(1, min(height, int(round(width / ratio[0])))), width
    if aspect > ratio[1]:
        return height, max(1, min(width, int(round(height * ratio[1]))))
    return height, width


def draw_flips(rng: np.random.Generator, n: int, flip: bool) -> np.ndarray:
    """`n` horizontal-flip flags, each true with probability 0.5 (all false, no draw, if not `flip`)."""
    return rng.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)


def crop_resize(samples: np.ndarray, boxes: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Each sample's box cut out, resized back to the frame size and flipped where asked.

    `samples` (n, C, H, W) or (n, T, C, H, W), any dtype OpenCV resizes (uint8 frames stay uint8);
    a full-frame box is copied as is. Returns a new array of the same shape and dtype.
    """
    import cv2

    height, width = frame_size(samples.shape[1:])
    out = np.empty_like(samples)
    for i, ((top, left, h, w), mirrored) in enumerate(zip(boxes, flip)):
        planes = samples[i].reshape(-1, height, width)[:, top : top + h, left : left + w].transpose(1, 2, 0)
        if (h, w) != (height, width):
            parts = [
                cv2.resize(
                    np.ascontiguousarray(planes[:, :, c : c + CV_MAX_CHANNELS]),
                    (width, height),
                    interpolation=cv2.INTER_LINEAR,
                ).reshape(height, width, -1)
                for c in range(0, planes.shape[2], CV_MAX_CHANNELS)
            ]
            planes = np.concatenate(parts, axis=2) if len(parts) > 1 else parts[0]
        if mirrored:
            planes = planes[:, ::-1]
        out[i] = planes.transpose(2, 0, 1).reshape(samples.shape[1:])
    return out
