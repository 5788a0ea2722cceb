"""The second reading of a plate region: crop, straighten, scale, recognise, decode against the grammar.

One recognition-only call (no detection) per region, on a crop widened past the detector's
box so that a lost province or red suffix is inside it, and stretched across the recogniser's
input width (rather than padded) so that each character spans enough frames for a blank
between two equal digits ("88" is otherwise read as "8").  Two-row plates are read as two
crops, the upper row (province and authority letter) and the lower one, and joined.  A
province read with little evidence is read once more alone, cut out at the place the
decoder put it, where the recogniser sees nothing else and cannot merge it with its
neighbours; if it is still weak, the line is read again from a tighter crop (the car around
a small plate draws the recogniser off its province), believed only where it agrees on the rest;
where both crops read the same province, they are two looks at it and their evidence is pooled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from vehicle_ocr_local.engine import grammar
from vehicle_ocr_local.engine.crops import Quad, rectify, stretch, widen
from vehicle_ocr_local.engine.ocr import recognize_probabilities

# The recogniser's input is at least 320 x 48 (PP-OCR rec_image_shape): narrower crops are padded.
MIN_READ_RATIO = 320 / 48
# At most this horizontal stretch of a short line (see _read): characters stay plate-like in shape.
MAX_FILL = 1.5
# The margin (line heights each side) of the second, tighter read of a line whose province is weak.
TIGHT_MARGIN = 0.35
# The share (see grammar.CharScore) every character but the province needs before a weak province is
# worth a tighter read: the rest of the plate must be told apart from its look-alikes already.
_SURE_REST = 0.5
# Below this probability a decoded province is read again on its own.
_WEAK_PROVINCE = 0.5


@dataclass(frozen=True)
class Reading:
    """A decoded plate and where it is in the image (the quadrilateral its characters span)."""

    decoding: grammar.Decoding
    quad: Quad

    @property
    def number(self) -> str:
        return self.decoding.number

    @property
    def confidence(self) -> float:
        return self.decoding.confidence

    @property
    def box(self) -> tuple[float, float, float, float]:
        xs = [x for x, _ in self.quad]
        ys = [y for _, y in self.quad]
        return (min(xs), min(ys), max(xs), max(ys))


def _read(
    crop: np.ndarray, layouts: dict[str, str], penalties: dict[str, float] | None = None, fill: bool = False
) -> list[grammar.Decoding]:
    """The crop's decodings, with positions as fractions of the crop's own width.

    ``fill``: a line narrower than the recogniser's input is stretched across it rather than padded,
    which costs nothing (the padding would be read anyway) and gives each character more frames.
    """
    ratio = crop.shape[1] / crop.shape[0]
    if fill and ratio < MIN_READ_RATIO:
        width = round(crop.shape[0] * min(MIN_READ_RATIO, ratio * MAX_FILL))
        crop = cv2.resize(crop, (width, crop.shape[0]), interpolation=cv2.INTER_CUBIC)
    result = recognize_probabilities(np.ascontiguousarray(stretch(crop)[:, :, ::-1]))
    if result is None:
        return []
    probabilities, characters = result
    # The recogniser pads a short crop on the right to its minimum width: frames past the crop are padding.
    ratio = crop.shape[1] / crop.shape[0]
    content = min(1.0, ratio / max(ratio, MIN_READ_RATIO))
    decodings = grammar.decode(probabilities, characters, layouts, penalties)
    return [_rescale(d, 1.0 / content) for d in decodings]


def _rescale(decoding: grammar.Decoding, factor: float) -> grammar.Decoding:
    if factor == 1.0:
        return decoding
    chars = tuple(replace(c, at=min(1.0, c.at * factor)) for c in decoding.chars)
    span = (min(1.0, decoding.span[0] * factor), min(1.0, decoding.span[1] * factor))
    return replace(decoding, chars=chars, span=span)


def _sub_quad(quad: Quad, start: float, end: float) -> Quad:
    """The part of a quadrilateral between two fractions of its width."""
    (tl, tr, br, bl) = (np.asarray(p, dtype=np.float64) for p in quad)
    top0, top1 = tl + (tr - tl) * start, tl + (tr - tl) * end
    bottom0, bottom1 = bl + (br - bl) * start, bl + (br - bl) * end
    return tuple((float(x), float(y)) for x, y in (top0, top1, bottom1, bottom0))


def read_line(rgb: np.ndarray, quad: Quad, margin: float = 0.8, color: str | None = None) -> Reading | None:
    """The best one-row plate reading of the text line ``quad`` (tl, tr, br, bl), widened by ``margin``
    heights; ``color``, the plate's colour as judged from its pixels, makes the layouts it is not printed
    with less likely."""
    read = _read_widened(rgb, quad, margin, color)
    if read is None:
        return None
    best, crop, used = read
    if _weak_province(best):
        best = _reread_province(crop, best)
    if _weak_province(best) and min(c.share for c in best.chars[1:]) >= _SURE_REST:
        # The car around a small plate can draw the recogniser off its province: when the rest is read,
        # read a tighter crop too, and believe it only where it spells the same characters after the province.
        tight = _read_widened(rgb, quad, TIGHT_MARGIN, color)
        if tight is not None and tight[0].number[1:] == best.number[1:]:
            tight_best = _reread_province(tight[1], tight[0]) if _weak_province(tight[0]) else tight[0]
            if tight_best.number == best.number:
                tight_best = _both_looks(best, tight_best)
            if tight_best.confidence > best.confidence:
                best, used = tight_best, TIGHT_MARGIN
    # The box: the decoded characters' stretch of the line, at the line's own height.
    span = _sub_quad(widen(quad, used, used, 0.0, 0.0), *best.span)
    return Reading(best, span)


def _both_looks(wide: grammar.Decoding, tight: grammar.Decoding) -> grammar.Decoding:
    """The tight decoding with the province evidence of two crops that read the same plate.

    The crops are scaled and framed differently, so they are two looks at a faint province: the
    chance that at least one saw it, 1 - (1 - p1)(1 - p2), is its evidence, and the lower of the
    two shares its certainty among the provinces.
    """
    a, b = wide.chars[0], tight.chars[0]
    seen = grammar.CharScore(b.char, 1.0 - (1.0 - a.p) * (1.0 - b.p), min(a.share, b.share), b.at)
    return replace(tight, chars=(seen, *tight.chars[1:]))


def _weak_province(decoding: grammar.Decoding) -> bool:
    return decoding.chars[0].char in grammar.CLASSES["P"] and decoding.chars[0].p < _WEAK_PROVINCE


def _read_widened(
    rgb: np.ndarray, quad: Quad, margin: float, color: str | None
) -> tuple[grammar.Decoding, np.ndarray, float] | None:
    """The best decoding of the line widened by ``margin`` heights, the crop it was read from, and the margin."""
    crop = rectify(rgb, widen(quad, margin, margin, 0.12, 0.12))
    if crop is None:
        return None
    decodings = _read(crop, grammar.LAYOUTS, grammar.color_penalties(color), fill=True)
    if not decodings:
        return None
    return decodings[0], crop, margin


def _reread_province(crop: np.ndarray, decoding: grammar.Decoding) -> grammar.Decoding:
    """The decoding with its province taken from a crop of that character alone, when that read is surer."""
    height, width = crop.shape[:2]
    centre = decoding.chars[0].at * width
    # A plate character is about half as wide as it is high; the crop is the line plus 12% above and below.
    half = 0.42 * height
    left, right = max(0, round(centre - half)), min(width, round(centre + half))
    if right - left < 0.4 * height:
        return decoding
    pad = round(0.3 * height)
    alone = np.pad(crop[:, left:right], ((0, 0), (pad, pad), (0, 0)), mode="edge")
    decodings = _read(alone, {"province": "P"})
    if not decodings:
        return decoding
    province = decodings[0].chars[0]
    if province.p <= decoding.chars[0].p:
        return decoding
    chars = (replace(province, at=decoding.chars[0].at), *decoding.chars[1:])
    return replace(decoding, number=province.char + decoding.number[1:], chars=chars)


def read_two_rows(rgb: np.ndarray, bottom: Quad, top: Quad | None = None) -> Reading | None:
    """A two-row plate whose lower row is the text line ``bottom``; the upper row is the line ``top``
    when the detector found it, else read where it must be, above the lower row."""
    points = np.asarray(bottom, dtype=np.float64)
    tl, tr, br, bl = points
    down = ((bl - tl) + (br - tr)) / 2
    # The upper row's characters are about 0.55 of the lower row's height, centred over it, with a small gap.
    upper = (
        tl + (tr - tl) * 0.12 - down * 0.78,
        tl + (tr - tl) * 0.88 - down * 0.78,
        tl + (tr - tl) * 0.88 - down * 0.04,
        tl + (tr - tl) * 0.12 - down * 0.04,
    )
    upper_quad = tuple((float(x), float(y)) for x, y in upper) if top is None else top
    lower_region = widen(bottom, 0.3, 0.6, 0.08, 0.08)
    top_crop = rectify(rgb, widen(upper_quad, 0.3, 0.3, 0.05 if top is None else 0.12, 0.05 if top is None else 0.12))
    bottom_crop = rectify(rgb, lower_region)
    if top_crop is None or bottom_crop is None:
        return None
    tops = _read(top_crop, grammar.TOP_ROW_LAYOUTS)
    bottoms = _read(bottom_crop, grammar.BOTTOM_ROW_LAYOUTS)
    if not tops or not bottoms:
        return None
    high, low = tops[0], bottoms[0]
    joined = grammar.Decoding(
        number=high.number + low.number,
        layout="two_row_" + low.layout,
        log_score=high.log_score + low.log_score,
        chars=high.chars + low.chars,
        span=low.span,
    )
    lower = _sub_quad(widen(bottom, 0.3, 0.6, 0.0, 0.0), *low.span)
    whole = (upper_quad[0], upper_quad[1], lower[2], lower[3])
    return Reading(joined, whole)
