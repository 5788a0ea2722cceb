"""Cheap pixel statistics: a plate's background colour, and whether a text box is printed in red ink.

Everything works on a small crop (at most ~48-96 px high) with plain numpy (and one OpenCV
warp to straighten a tilted plate), so it costs well under a millisecond per box.  Each
pixel is put into one class from its hue, saturation and value; the decisions are made on
class fractions, so neither a colour cast of a few percent nor JPEG chroma bleed at the
glyph edges moves them."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# Pixel classes.
DARK, LIGHT, GREY, RED, YELLOW, GREEN, BLUE, OTHER = range(8)

_CROP_HEIGHT = 48  # px: crops are subsampled to about this height before classifying
_MIN_SATURATION = 0.28
_DARK_VALUE = 0.24
_LIGHT_VALUE = 0.58


def subsample(crop: np.ndarray, height: int = _CROP_HEIGHT) -> np.ndarray:
    """Every n-th row and column so the crop is about ``height`` rows (nearest neighbour, no copy)."""
    step = max(1, crop.shape[0] // height)
    return crop[::step, ::step]


def classify_pixels(rgb: np.ndarray) -> np.ndarray:
    """One class per pixel (same shape minus the channel axis)."""
    pixels = rgb.astype(np.float32) / 255.0
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    high = pixels.max(axis=-1)
    low = pixels.min(axis=-1)
    chroma = high - low
    saturation = np.where(high > 0, chroma / np.maximum(high, 1e-6), 0.0)
    safe = np.maximum(chroma, 1e-6)
    hue = (
        np.where(
            high == r,
            ((g - b) / safe) % 6.0,
            np.where(high == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
        )
        * 60.0
    )  # degrees

    classes = np.full(high.shape, GREY, dtype=np.uint8)
    classes[high >= _LIGHT_VALUE] = LIGHT
    classes[high < _DARK_VALUE] = DARK
    # Chromatic: saturated enough, and bright enough that the hue means something (a deeply
    # saturated colour keeps its hue in shadow: a blue plate at dusk is still blue).
    chromatic = ((saturation >= _MIN_SATURATION) & (high >= _DARK_VALUE) & (chroma >= 0.12)) | (
        (saturation >= 0.5) & (high >= 0.12) & (chroma >= 0.07)
    )
    classes[chromatic] = OTHER
    classes[chromatic & ((hue < 18) | (hue >= 330))] = RED
    classes[chromatic & (hue >= 18) & (hue < 72)] = YELLOW
    classes[chromatic & (hue >= 72) & (hue < 175)] = GREEN
    classes[chromatic & (hue >= 175) & (hue < 265)] = BLUE
    return classes


def _fractions(classes: np.ndarray) -> np.ndarray:
    counts = np.bincount(classes.ravel(), minlength=8).astype(np.float64)
    return counts / max(1.0, counts.sum())


def crop(rgb: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """The clipped axis-aligned region (may be empty)."""
    height, width = rgb.shape[:2]
    left, right = max(0, int(x0)), min(width, int(np.ceil(x1)))
    top, bottom = max(0, int(y0)), min(height, int(np.ceil(y1)))
    if right <= left or bottom <= top:
        return rgb[0:0, 0:0]
    return rgb[top:bottom, left:right]


def cast_gains(rgb: np.ndarray) -> np.ndarray:
    """Per-channel gains that make the photo's greys grey (shades of grey, Minkowski norm p = 6).

    A toll camera's green or magenta cast, or sodium light, shifts every pixel's hue the same
    way; the gains undo it, limited so that a photo that is simply mostly one colour (a blue
    car filling the frame) is not pushed far the other way.
    """
    sample = subsample(rgb, 160).reshape(-1, 3).astype(np.float32) / 255.0
    norm = np.power(np.mean(np.power(sample, 6), axis=0), 1 / 6)
    gains = float(norm.mean()) / np.maximum(norm, 1e-3)
    return np.clip(gains, 0.8, 1.25).astype(np.float32)


def balance(rgb: np.ndarray, gains: np.ndarray | None = None) -> np.ndarray:
    """The crop with the photo's cast removed and, if it is dark (night, backlit), brightened.

    One gain for all channels for the brightness, so that hue and saturation are kept: the
    brightest glyph or plate pixels (95th percentile) are lifted to about 80% white, at most 3x.
    """
    pixels = rgb.astype(np.float32)
    if gains is not None:
        pixels *= gains
    top = float(np.percentile(pixels.max(axis=-1), 95)) if pixels.size else 255.0
    lift = float(np.clip(205.0 / max(top, 1.0), 1.0, 3.0))
    return np.clip(pixels * lift, 0, 255).astype(np.uint8)


def plate_color(
    rgb: np.ndarray,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    quad: Sequence[Sequence[float]] | None = None,
    gains: np.ndarray | None = None,
) -> str:
    """Background colour of the plate whose characters fill the box (x0, y0)-(x1, y1).

    The detector's box hugs the characters and can stick out past the plate's edge, so only
    its inner part is used: there the plate background is the majority and the glyphs (white
    on blue and black plates, black on the others) the minority.  With the text line's own
    quadrilateral (``quad``: tl, tr, br, bl) a tilted plate is first straightened, so that
    the corners of its axis-aligned box (the car around it) do not count.  ``gains`` (from
    :func:`cast_gains` of the whole photo) take its colour cast off first; a dark crop is brightened.
    """
    straight = _straighten(rgb, quad) if quad is not None else None
    if straight is not None:
        height, width = straight.shape[:2]
        inner = straight[round(0.18 * height) : round(0.82 * height), round(0.06 * width) : round(0.94 * width)]
    else:
        width, height = x1 - x0, y1 - y0
        inner = crop(rgb, x0 + 0.06 * width, y0 + 0.18 * height, x1 - 0.06 * width, y1 - 0.18 * height)
    if inner.size == 0:
        return "other"
    inner = balance(subsample(inner), gains)
    classes = classify_pixels(inner)
    share = _fractions(classes)
    chroma = {"blue": share[BLUE], "yellow": share[YELLOW], "green": share[GREEN]}
    best = max(chroma, key=chroma.__getitem__)
    if chroma[best] >= 0.22:
        if best in ("yellow", "green") and _is_split(classes):
            return "yellow_green"
        return best
    # No plate colour among the pixels: a white plate with dark glyphs or a black one with light
    # glyphs.  Which side the glyphs are on is told locally, so a shadow across a white plate
    # (half of it grey) does not turn it black.
    return "white" if _dark_glyphs(inner) else "black"


def _straighten(rgb: np.ndarray, quad: Sequence[Sequence[float]]) -> np.ndarray | None:
    """The quadrilateral's content as an upright rectangle, at most _CROP_HEIGHT * 2 px high."""
    points = np.array(quad, dtype=np.float32).reshape(4, 2)
    width = float(max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[3] - points[2])))
    height = float(max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2])))
    if width < 4 or height < 4:
        return None
    scale = min(1.0, 2 * _CROP_HEIGHT / height)
    size = (max(4, round(width * scale)), max(4, round(height * scale)))
    target = np.array([[0, 0], [size[0], 0], [size[0], size[1]], [0, size[1]]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(points, target)
    return cv2.warpPerspective(rgb, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _dark_glyphs(rgb: np.ndarray) -> bool:
    """Whether the glyphs are darker than the plate around them (white plate) or lighter (black plate).

    Luminance minus its local mean (a window half the text height: wider than a stroke, smaller
    than a shadow's edge) has a long tail on the glyphs' side, since glyphs cover less area than
    the background; its skewness tells the side, whatever the lighting across the plate.
    """
    luminance = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    window = max(3, (rgb.shape[0] // 2) | 1)
    deviation = (luminance - cv2.blur(luminance, (window, window))).ravel()
    spread = float(deviation.std())
    if spread < 1.0:  # one flat tone: judge it by its level
        return float(luminance.mean()) >= 110
    return float(np.mean(deviation**3)) / spread**3 < 0


def _is_split(classes: np.ndarray) -> bool:
    """Yellow on the left (province and authority letter), green on the rest: the large new-energy plate."""
    columns = classes.shape[1]
    if columns < 8:
        return False
    left = _fractions(classes[:, : max(1, int(columns * 0.2))])
    right = _fractions(classes[:, int(columns * 0.45) :])
    return (
        left[YELLOW] >= 0.2
        and left[YELLOW] > 2 * left[GREEN]
        and right[GREEN] >= 0.2
        and right[GREEN] > 2 * right[YELLOW]
    )


def red_ink(rgb: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> bool:
    """True when the text in the box is printed in red (a seal), not in black."""
    region = crop(rgb, x0, y0, x1, y1)
    if region.size == 0:
        return False
    classes = classify_pixels(subsample(region, 32))
    share = _fractions(classes)
    return bool(share[RED] >= 0.04 and share[RED] > 1.5 * (share[DARK] + share[GREY]))
