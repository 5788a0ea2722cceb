"""The issuing authority's round red seal on a licence's front page, read along its arc.

The authority's name runs around the upper arc of the seal, so the text detector, which
boxes straight lines, sees only fragments.  The seal is found from its ink instead (red,
ring-shaped), unwrapped into a straight strip with a polar transform (the characters'
tops point outwards, so outer radius becomes the strip's top), cleaned to dark ink on
white (which also drops the black print the seal overlaps) and recognised in one
recognition-only call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vehicle_ocr_local.engine.ocr import character_index, ctc_greedy, ctc_log_likelihood, recognize_probabilities

_REDNESS = 18  # red minus the larger of green and blue: seal ink, even thinly inked, on any paper
_MIN_RED = 90
_BAND = (0.6, 0.95)  # radial band of the text (just inside the ring), as fractions of the outer radius
_STRIP_HEIGHT = 48  # the recogniser's input height
_HOUGH_SIDE = 320  # px: circles are looked for on a copy of the mask this small
_CANDIDATES = 4  # circles checked per page


@dataclass(frozen=True)
class Seal:
    """The seal's outer edge: an ellipse (a circle seen at a slight angle)."""

    cx: float
    cy: float
    a: float  # semi-axis along ``angle``
    b: float  # the other semi-axis
    angle: float  # radians

    @property
    def radius(self) -> float:
        return max(self.a, self.b)

    def contains(self, x: float, y: float) -> bool:
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        u = (x - self.cx) * cos + (y - self.cy) * sin
        v = -(x - self.cx) * sin + (y - self.cy) * cos
        return (u / self.a) ** 2 + (v / self.b) ** 2 <= 1.0


def _redness(rgb: np.ndarray) -> np.ndarray:
    """How far each pixel is from grey towards pure red (0 for any other hue, wood's orange included)."""
    pixels = rgb.astype(np.int16)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    redness = r - np.maximum(g, b)
    chroma = r - np.minimum(g, b)
    red_hue = np.abs(g - b) * 100 <= 35 * chroma  # hue within about +-12 degrees of red
    return np.where(red_hue, redness, 0)


def find_seals(rgb: np.ndarray) -> list[Seal]:
    """Round red seals: circles in the red ink (Hough), confirmed as rings with ink all around."""
    height, width = rgb.shape[:2]
    mask = (_redness(rgb) > _REDNESS) & (rgb[..., 0] > _MIN_RED)
    if int(mask.sum()) < 150:
        return []
    shortest = min(height, width)
    # Circle candidates on a small copy: the ring dominates, red clutter (wood, a red car) rarely makes circles.
    scale = min(1.0, _HOUGH_SIDE / shortest)
    small = cv2.resize(mask.astype(np.uint8) * 255, (max(1, round(width * scale)), max(1, round(height * scale))))
    small = cv2.GaussianBlur(small, (5, 5), 0)
    side = min(small.shape)
    circles = cv2.HoughCircles(
        small,
        cv2.HOUGH_GRADIENT,
        dp=1.5,
        minDist=side / 4,
        param1=100,
        param2=25,
        minRadius=max(4, int(0.05 * side)),
        maxRadius=int(0.4 * side),
    )
    seals: list[Seal] = []
    for cx, cy, radius in [] if circles is None else circles[0][:_CANDIDATES]:
        seal = _fit(mask, cx / scale, cy / scale, 2.2 * radius / scale)
        if seal is None or any(other.contains(seal.cx, seal.cy) for other in seals):
            continue
        if 0.04 * shortest <= seal.radius <= 0.4 * shortest and seal.b >= 0.6 * seal.a and _is_ring(mask, seal):
            seals.append(seal)
    return seals


def _fit(mask: np.ndarray, cx: float, cy: float, extent: float) -> Seal | None:
    """Ellipse through the outermost ink in each direction around (cx, cy), refined once."""
    height, width = mask.shape
    seal = None
    for _ in range(2):
        half = 0.65 * extent
        left, top = max(0, int(cx - half)), max(0, int(cy - half))
        right, bottom = min(width, int(cx + half) + 1), min(height, int(cy + half) + 1)
        ys, xs = np.nonzero(mask[top:bottom, left:right])
        if len(xs) < 50:
            return None
        dx, dy = xs + left - cx, ys + top - cy
        distance = np.hypot(dx, dy)
        sector = ((np.arctan2(dy, dx) + math.pi) / (2 * math.pi) * 72).astype(int) % 72
        # The 97th-percentile distance in each of 72 directions (outermost ink, ignoring specks).
        order = np.lexsort((distance, sector))
        counts = np.bincount(sector, minlength=72)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        used = np.nonzero(counts >= 2)[0]
        if len(used) < 24:
            return None
        far = distance[order[starts[used] + (0.97 * (counts[used] - 1)).astype(int)]]
        angle = (used + 0.5) / 72 * 2 * math.pi - math.pi
        # Directions where the outermost ink is not the ring (a gap in faint ink, a red speck beyond it).
        typical = float(np.median(far))
        keep = (far > 0.8 * typical) & (far < 1.2 * typical)
        if keep.sum() < 20:
            return None
        far, angle = far[keep], angle[keep]
        points = np.stack([cx + far * np.cos(angle), cy + far * np.sin(angle)], axis=1).astype(np.float32)
        (ex, ey), (d1, d2), degrees = cv2.fitEllipse(points)
        if not (math.isfinite(ex) and math.isfinite(ey) and d1 > 4 and d2 > 4):
            return None
        seal = Seal(ex, ey, d1 / 2, d2 / 2, math.radians(degrees))
        cx, cy, extent = ex, ey, max(d1, d2)
    return seal


def _is_ring(mask: np.ndarray, seal: Seal) -> bool:
    """Ink close inside the edge in most directions (a ring), not a filled or open shape."""
    radius = seal.radius
    height, width = mask.shape
    left, top = max(0, int(seal.cx - 1.1 * radius)), max(0, int(seal.cy - 1.1 * radius))
    ys, xs = np.nonzero(mask[top : int(seal.cy + 1.1 * radius) + 1, left : int(seal.cx + 1.1 * radius) + 1])
    if len(xs) < 50 or height == 0 or width == 0:
        return False
    cos, sin = math.cos(seal.angle), math.sin(seal.angle)
    u = (xs + left - seal.cx) * cos + (ys + top - seal.cy) * sin
    v = -(xs + left - seal.cx) * sin + (ys + top - seal.cy) * cos
    rho = np.hypot(u / seal.a, v / seal.b)
    inside = rho <= 1.08
    on_ring = inside & (rho > 0.85)
    if on_ring.sum() < 0.15 * inside.sum() or inside.mean() < 0.7:
        return False
    # Hollow: the ring is much denser than the space between the star and the text (a filled red shape is not).
    ring_density = on_ring.sum() / (1.08**2 - 0.85**2)
    hollow_density = ((rho > 0.3) & (rho < 0.55)).sum() / (0.55**2 - 0.3**2)
    if ring_density < 2.0 * hollow_density:
        return False
    theta = np.arctan2(v[on_ring] / seal.b, u[on_ring] / seal.a)
    sectors = np.unique(((theta + math.pi) / (2 * math.pi) * 36).astype(int) % 36)
    return len(sectors) >= 27


def unwrap(rgb: np.ndarray, seal: Seal) -> np.ndarray | None:
    """The seal's text band as a straight strip (BGR, dark ink on white, _STRIP_HEIGHT px high)."""
    outer = float(max(64, min(160, round(seal.radius * 2))))  # px, radius after normalising
    size = round(2 * outer)
    # Affine map: the ellipse onto a circle of radius ``outer`` centred in a size x size canvas.
    cos, sin = math.cos(seal.angle), math.sin(seal.angle)
    rotate = np.array([[cos, sin], [-sin, cos]])
    scale = np.diag([outer / seal.a, outer / seal.b])
    linear = rotate.T @ scale @ rotate
    offset = np.array([outer, outer]) - linear @ np.array([seal.cx, seal.cy])
    matrix = np.hstack([linear, offset[:, None]])
    flat = cv2.warpAffine(_ink(rgb, seal), matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    text_radius = outer * (_BAND[0] + _BAND[1]) / 2
    angles = max(64, round(2 * math.pi * text_radius))
    polar = cv2.warpPolar(flat, (round(outer), angles), (outer, outer), outer, cv2.WARP_POLAR_LINEAR | cv2.INTER_LINEAR)
    band = polar[:, round(_BAND[0] * outer) : round(_BAND[1] * outer)]
    strip = np.ascontiguousarray(band.T[::-1])  # rows: outer radius first; columns: angle, clockwise
    density = (strip > 100).mean(axis=0)
    start, end = _text_extent(density)
    if end - start < strip.shape[0]:
        return None
    strip = np.roll(strip, -start, axis=1)[:, : end - start]
    strip = cv2.copyMakeBorder(strip, 4, 4, 12, 12, cv2.BORDER_CONSTANT, value=0)
    ratio = _STRIP_HEIGHT / strip.shape[0]
    strip = cv2.resize(strip, (max(8, round(strip.shape[1] * ratio)), _STRIP_HEIGHT), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(255 - strip, cv2.COLOR_GRAY2BGR)


def _ink(rgb: np.ndarray, seal: Seal) -> np.ndarray:
    """Seal ink strength (0..255) around the seal.

    JPEG keeps colour at half resolution, so redness alone draws blurred strokes; the stroke
    shape comes from the (full-resolution) darkness instead, kept only where the ink is red,
    which also drops the black print under the seal.
    """
    radius = seal.radius * 1.15
    height, width = rgb.shape[:2]
    left, top = max(0, int(seal.cx - radius)), max(0, int(seal.cy - radius))
    right, bottom = min(width, int(seal.cx + radius) + 1), min(height, int(seal.cy + radius) + 1)
    region = rgb[top:bottom, left:right]
    luminance = region.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    paper = float(np.percentile(luminance, 90))
    darkness = np.clip((paper - luminance) / max(30.0, paper * 0.5), 0, 1)
    gate = np.clip((cv2.GaussianBlur(_redness(region).astype(np.float32), (3, 3), 0) - 6) / 24, 0, 1)
    ink = np.zeros(rgb.shape[:2], dtype=np.uint8)
    ink[top:bottom, left:right] = np.clip(darkness * gate * 255 * 1.6, 0, 255).astype(np.uint8)
    return ink


def _text_extent(density: np.ndarray) -> tuple[int, int]:
    """Columns [start, end) of the text around the circle: everything but the widest empty arc.

    ``end`` may exceed the column count; the caller rolls the strip so ``start`` comes first.
    """
    columns = len(density)
    kernel = max(3, columns // 90)
    padded = np.concatenate([density[-kernel:], density, density[:kernel]])
    smooth = np.convolve(padded, np.ones(kernel) / kernel, "same")[kernel:-kernel]
    empty = smooth < max(0.02, 0.15 * float(smooth.max()))
    if empty.all() or not empty.any():
        return 0, columns
    # Widest run of empty columns, circularly.
    doubled = np.concatenate([empty, empty])
    best_len, best_end, run = 0, 0, 0
    for i, is_empty in enumerate(doubled):
        run = run + 1 if is_empty else 0
        if run > best_len:
            best_len, best_end = min(run, columns), i + 1
    gap_end = best_end % columns
    return gap_end, gap_end + columns - best_len


def read_seals(rgb: np.ndarray, seals: list[Seal] | None = None) -> list[SealReading]:
    """Every seal on the page (or those given), unwrapped and run through the recogniser.

    The recogniser's probabilities are kept, so candidate readings can be scored.
    """
    readings = []
    for seal in find_seals(rgb) if seals is None else seals:
        strip = unwrap(rgb, seal)
        if strip is None:
            continue
        result = recognize_probabilities(strip)
        if result is not None:
            probabilities, characters = result
            readings.append(SealReading(seal, probabilities, characters, character_index(characters)))
    return readings


@dataclass(frozen=True)
class SealReading:
    seal: Seal
    probabilities: np.ndarray  # T x C, CTC
    characters: list[str]
    index: dict[str, int]

    def greedy(self) -> tuple[str, float]:
        return ctc_greedy(self.probabilities, self.characters, self.index)

    def log_likelihood(self, text: str) -> float:
        return ctc_log_likelihood(self.probabilities, text, self.index)
