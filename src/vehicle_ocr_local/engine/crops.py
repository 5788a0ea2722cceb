"""Plate crops for a second reading: cut out with a margin, straightened, scaled to the recogniser's height.

The detector's box hugs the glyphs it was sure of, so a faint province on the left or a
red suffix on the right may lie just outside it; the crop is therefore widened along the
text's own direction and cut from the photo with one perspective warp, which also
straightens a tilted or slanted plate.  Small plates are scaled up with a cubic filter to
the recogniser's input height, and the crop's levels are stretched (per channel, so a
colour cast goes too) before it is read.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# The recogniser's input height (PP-OCR: 48 px): crops are warped straight to it (a little more,
# so the model's own resize only ever shrinks them).
READ_HEIGHT = 64

Quad = tuple[tuple[float, float], ...]


def widen(quad: Sequence[Sequence[float]], left: float, right: float, top: float, bottom: float) -> Quad:
    """The quadrilateral (tl, tr, br, bl) grown along its own axes, by fractions of its height."""
    points = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    tl, tr, br, bl = points
    along = ((tr - tl) + (br - bl)) / 2
    down = ((bl - tl) + (br - tr)) / 2
    height = max(float(np.linalg.norm(down)), 1.0)
    width = max(float(np.linalg.norm(along)), 1.0)
    unit_along, unit_down = along / width, down / height
    grown = (
        tl - unit_along * left * height - unit_down * top * height,
        tr + unit_along * right * height - unit_down * top * height,
        br + unit_along * right * height + unit_down * bottom * height,
        bl - unit_along * left * height + unit_down * bottom * height,
    )
    return tuple((float(x), float(y)) for x, y in grown)


def box_quad(x0: float, y0: float, x1: float, y1: float) -> Quad:
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def rectify(rgb: np.ndarray, quad: Sequence[Sequence[float]], height: int = READ_HEIGHT) -> np.ndarray | None:
    """The quadrilateral's content as an upright rectangle ``height`` px high (aspect kept), or None if tiny."""
    points = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    source_width = float(max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[3] - points[2])))
    source_height = float(max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2])))
    if source_width < 6 or source_height < 5:
        return None
    width = max(8, round(source_width * height / source_height))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(points, target)
    flags = cv2.INTER_CUBIC if height > source_height else cv2.INTER_AREA
    return cv2.warpPerspective(rgb, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def stretch(rgb: np.ndarray) -> np.ndarray:
    """Levels stretched per channel between the 1st and 99th percentile: casts and haze removed."""
    low = np.percentile(rgb.reshape(-1, 3), 1, axis=0)
    high = np.percentile(rgb.reshape(-1, 3), 99, axis=0)
    span = np.maximum(high - low, 24.0)
    out = (rgb.astype(np.float32) - low) * (255.0 / span)
    return np.clip(out, 0, 255).astype(np.uint8)
