"""Plate-coloured rectangles: where a plate may be when the text detector found no text on it.

On a small or soft photo the detector can miss a plate altogether (its boxes come from the
photo scaled up to 736 px on the short side, which blurs a small plate further).  A plate is
also a solid blue, yellow or green rectangle of known proportions (440 x 140 mm single-row,
480 x 140 mm new-energy, 440 x 220 mm two-row): those are found from the pixel classes of
:mod:`colors` on a reduced copy of the photo, cleaned with a small closing, and kept when
their rotated rectangle has a plate's aspect and is mostly filled.  Only a fallback: the
caller reads them only when no plate was found among the detector's lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vehicle_ocr_local.engine.colors import BLUE, GREEN, YELLOW, classify_pixels
from vehicle_ocr_local.engine.crops import Quad

# The photo is classified at most this large (longest side, px): enough for a plate 30 px wide.
_WORK_SIDE = 800
# Width over height of a plate's rotated rectangle (two-row 2.0, single-row 3.1, new-energy 3.4, seen slanted).
_ASPECT = (1.8, 5.5)
# The share of its rotated rectangle a plate's colour fills (glyphs, bolts and a frame take the rest).
_MIN_FILL = 0.6
# A plate smaller than this (px of the photo) is too small to read.
_MIN_SIZE = (30.0, 9.0)
# The characters stand inside the plate's border: about this fraction of its height above and below.
_BORDER = 0.15
_COLORS = ((BLUE, "blue"), (YELLOW, "yellow"), (GREEN, "green"))


@dataclass(frozen=True)
class Region:
    """A plate-coloured rectangle: the quadrilateral (tl, tr, br, bl) of its text band, and its colour."""

    quad: Quad
    color: str
    area: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        xs = [x for x, _ in self.quad]
        ys = [y for _, y in self.quad]
        return (min(xs), min(ys), max(xs), max(ys))


def plate_regions(rgb: np.ndarray, gains: np.ndarray | None = None, limit: int = 3) -> list[Region]:
    """The ``limit`` largest plate-shaped rectangles of a plate colour, largest first."""
    scale = min(1.0, _WORK_SIDE / max(rgb.shape[:2]))
    small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if gains is not None:
        small = np.clip(small.astype(np.float32) * gains, 0, 255).astype(np.uint8)
    classes = classify_pixels(small)
    size = max(3, round(min(small.shape[:2]) / 100)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    found: list[Region] = []
    for cls, color in _COLORS:
        mask = cv2.morphologyEx((classes == cls).astype(np.uint8), cv2.MORPH_CLOSE, kernel)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            region = _region(contour, color, scale)
            if region is not None:
                found.append(region)
    found.sort(key=lambda r: r.area, reverse=True)
    return found[:limit]


def _region(contour: np.ndarray, color: str, scale: float) -> Region | None:
    (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
    if w < h:
        w, h, angle = h, w, angle - 90.0
    if h <= 0 or not _ASPECT[0] <= w / h <= _ASPECT[1]:
        return None
    if w / scale < _MIN_SIZE[0] or h / scale < _MIN_SIZE[1]:
        return None
    if cv2.contourArea(contour) < _MIN_FILL * w * h:
        return None
    # The text band: the rectangle less its border above and below, in the photo's pixels, tl tr br bl.
    along = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    if along[0] < 0:
        along = -along
    down = np.array([-along[1], along[0]])
    centre = np.array([cx, cy])
    half_w, half_h = along * w / 2, down * h * (1 - 2 * _BORDER) / 2
    corners = (centre - half_w - half_h, centre + half_w - half_h, centre + half_w + half_h, centre - half_w + half_h)
    quad = tuple((float(x / scale), float(y / scale)) for x, y in corners)
    return Region(quad, color, float(w * h) / scale**2)
