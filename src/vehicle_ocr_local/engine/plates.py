"""Licence plates among OCR lines: plate-shaped text, its colour from the pixels around it.

A plate is usually one OCR line ("沪A·12345"), but the detector may cut it in two at the
separator dot ("沪A" + "12345") and two-row plates (trucks, trailers) come as a short top
line over a long bottom one, so neighbouring lines are joined before matching.  Matching
is done on a cleaned copy of the text (half-width, upper case, separators dropped) with a
map back to the lines each character came from, so the colour is measured on exactly the
boxes that carried the plate.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vehicle_ocr.normalize.plates import PROVINCES, PlateKind, canonical_plate_number, is_valid_plate, plate_kind
from vehicle_ocr.normalize.values import to_half_width
from vehicle_ocr.providers.base import ProviderAnswer
from vehicle_ocr_local.engine.colors import cast_gains, plate_color
from vehicle_ocr_local.engine.ocr import (
    PROVIDER,
    OcrLine,
    character_index,
    ctc_log_likelihood,
    read_page,
    recognize_probabilities,
)
from vehicle_ocr_local.engine.reader import Reading, read_line, read_two_rows
from vehicle_ocr_local.engine.regions import plate_regions

_SUFFIXES = "学挂警港澳领试超"
_TRADITIONAL = str.maketrans("滬遼貴雲陝閩粵寧甯瓊晉蘇魯贛學掛領", "沪辽贵云陕闽粤宁宁琼晋苏鲁赣学挂领")
# Misreadings of a province character as a look-alike that is neither a province nor a plate
# suffix: mostly a radical dropped or swapped at low resolution (湘 -> 相, 豫 -> 象, 浙 -> 折).
_PROVINCE_LOOKALIKES = str.maketrans(
    {
        "泸": "沪",
        "户": "沪",
        "折": "浙",
        "淅": "浙",
        "翼": "冀",
        "異": "冀",
        "睆": "皖",
        "完": "皖",
        "相": "湘",
        "缃": "湘",
        "象": "豫",
        "予": "豫",
        "俞": "渝",
        "喻": "渝",
        "愉": "渝",
        "普": "晋",
        "责": "贵",
        "贯": "贵",
        "奥": "粤",
        "律": "津",
        "峡": "陕",
        "狭": "陕",
        "边": "辽",
        "墨": "黑",
        "咢": "鄂",
        "谔": "鄂",
        "闵": "闽",
        "宇": "宁",
        "凉": "琼",
        "吕": "吉",
        "佳": "桂",
        "圭": "桂",
        "兽": "鲁",
    }
)
# Characters that survive cleaning: Latin letters, digits and CJK ideographs.
_KEEP = re.compile(r"[0-9A-Z\u4e00-\u9fff]")

_P = f"[{PROVINCES}]"
_PLATE_TEXT = re.compile(
    "|".join(
        (
            rf"(?P<armed>WJ(?:{_P}[0-9A-Z]{{5}}|[0-9]{{2}}[警0-9][0-9]{{4}}))",
            r"(?P<embassy>使[0-9]{6})",
            rf"(?P<civil>{_P}[A-Z0-9])(?P<serial>[0-9A-Z]{{4,6}})(?P<suffix>[{_SUFFIXES}]?)",
            r"(?P<military>(?<![A-Z0-9])[A-Z]{2}[0-9]{5}(?![0-9]))",
            rf"(?P<lookalike>[\u4e00-\u9fff])(?P<lk_serial>[A-Z][0-9A-Z]{{4,6}})(?P<lk_suffix>[{_SUFFIXES}]?)(?![0-9A-Z])",
        )
    )
)
# Plate colours only civil (GA 36) plates are printed in; military and armed-police plates are white.
_WHITE_ONLY_KINDS = frozenset({PlateKind.MILITARY, PlateKind.ARMED_POLICE})
_CIVIL_COLORS = frozenset({"blue", "yellow", "green", "yellow_green"})
_TWO_ROW_TOP = re.compile(rf"(?:{_P}|WJ{_P}?)[A-Z0-9]?")
_TWO_ROW_BOTTOM = re.compile(rf"[0-9A-Z]{{4,6}}[{_SUFFIXES}]?")


@dataclass(frozen=True)
class _Text:
    """Cleaned text of one or more lines, with the line each character came from."""

    chars: str
    owners: tuple[int, ...]


@dataclass(frozen=True)
class PlateReading:
    """A plate found in an image: ``box`` is (x1, y1, x2, y2) around its characters, in the page's pixels."""

    number: str
    color: str
    confidence: float
    box: tuple[float, float, float, float]

    def as_payload(self, scale: float = 1.0) -> dict[str, object]:
        """The provider payload entry; ``box`` in whole pixels of the photo (``scale``: photo px per page px)."""
        x0, y0, x1, y1 = self.box
        return {
            "number": self.number,
            "color": self.color,
            "confidence": round(self.confidence, 4),
            "box": [int(x0 * scale), int(y0 * scale), int(np.ceil(x1 * scale)), int(np.ceil(y1 * scale))],
        }


def clean_text(text: str) -> str:
    """Half-width, upper case, simplified plate characters, only letters, digits and ideographs."""
    folded = to_half_width(text).upper().translate(_TRADITIONAL)
    return "".join(_KEEP.findall(folded))


def _cleaned(lines: Sequence[OcrLine], indices: Iterable[int]) -> _Text:
    chars: list[str] = []
    owners: list[int] = []
    for index in indices:
        for char in clean_text(lines[index].text):
            chars.append(char)
            owners.append(index)
    return _Text("".join(chars), tuple(owners))


def _same_row(a: OcrLine, b: OcrLine) -> bool:
    """b continues a to the right: similar height, overlapping vertically, a small gap between."""
    ha, hb = a.height, b.height
    if not 0.6 <= hb / ha <= 1.65:
        return False
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    if overlap < 0.5 * min(a.y1 - a.y0, b.y1 - b.y0):
        return False
    gap = b.x0 - a.x1
    return -0.6 * max(ha, hb) <= gap <= 1.3 * max(ha, hb)  # boxes may overlap where the detector split a plate


def _rows(lines: Sequence[OcrLine]) -> list[list[int]]:
    """Groups of horizontally adjacent lines (connected components), each sorted left to right."""
    order = sorted(range(len(lines)), key=lambda i: lines[i].x0)
    parent = list(range(len(lines)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for position, i in enumerate(order):
        for j in order[position + 1 :]:
            if lines[j].x0 - lines[i].x1 > 1.3 * max(lines[i].height, lines[j].height):
                continue
            if _same_row(lines[i], lines[j]):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _two_row_pairs(lines: Sequence[OcrLine]) -> list[list[int]]:
    """(top, bottom) pairs of a two-row plate: "沪A" above "12345", the top one shorter and centred over the bottom."""
    pairs = []
    for t, top in enumerate(lines):
        if not _TWO_ROW_TOP.fullmatch(clean_text(top.text)):
            continue
        for b, bottom in enumerate(lines):
            if b == t or not _TWO_ROW_BOTTOM.fullmatch(clean_text(bottom.text)):
                continue
            centre = (top.x0 + top.x1) / 2
            gap = bottom.y0 - top.y1
            if (
                bottom.x0 <= centre <= bottom.x1
                and -0.6 * top.height <= gap <= 0.9 * bottom.height
                and bottom.height >= 0.9 * top.height
            ):
                pairs.append([t, b])
    return pairs


def _civil_number(prefix: str, serial: str, suffix: str) -> str:
    """The likeliest plate in province + authority + up to 6 serial characters (+ suffix).

    The serial run is greedy, so it may have swallowed a neighbour's character; the first
    valid layout among the plausible lengths wins, else the natural length is kept.
    """
    options: list[str] = []
    if suffix:
        options += [serial[:4] + suffix, serial[-4:] + suffix]
    if len(serial) >= 6:
        options.append(serial[:6])  # new-energy: 8 characters
    if len(serial) >= 5:
        options.append(serial[:5])
    for option in options:
        if is_valid_plate(prefix + option):
            return prefix + option
    if suffix:
        return prefix + serial[:4] + suffix
    return prefix + serial[:6] if len(serial) >= 6 else prefix + serial[:5]


def _matches(text: _Text) -> list[tuple[str, int, int, bool]]:
    """(number, start, end, certain) for every plate-shaped run; ``certain`` is False for a guessed province."""
    found = []
    for match in _PLATE_TEXT.finditer(text.chars):
        kind = match.lastgroup
        if match.group("civil"):
            number = _civil_number(match.group("civil"), match.group("serial"), match.group("suffix"))
            found.append((number, match.start(), match.start() + len(number), True))
        elif match.group("lookalike"):
            province = match.group("lookalike").translate(_PROVINCE_LOOKALIKES)
            serial = match.group("lk_serial")
            number = _civil_number(province + serial[0], serial[1:], match.group("lk_suffix"))
            found.append((number, match.start(), match.start() + len(number), province in PROVINCES))
        elif kind is not None:
            found.append((match.group(0), match.start(), match.end(), True))
    return found


def plate_in_text(text: str) -> str | None:
    """The first plate number written in ``text`` (as read, separators dropped), or None."""
    cleaned = clean_text(text)
    found = _matches(_Text(cleaned, tuple(range(len(cleaned)))))
    return found[0][0] if found else None


def _union_box(lines: Sequence[OcrLine], indices: Iterable[int]) -> tuple[float, float, float, float]:
    chosen = [lines[i] for i in indices]
    return (min(x.x0 for x in chosen), min(x.y0 for x in chosen), max(x.x1 for x in chosen), max(x.y1 for x in chosen))


# A second reading is believed from this confidence on (see grammar.Decoding.confidence).
ACCEPT = 0.5
# A second reading this sure that disagrees with the line text leaves the plate unread.
DOUBT = 0.3
# A plate read from the OCR line alone (the second reading found nothing surer) needs this line score.
LINE_ACCEPT = 0.85
# At most this many plate-like lines without a plate in their text are read again per image.
MAX_LOOSE = 4
# A plate-coloured rectangle's text band is read widened by this many heights each side (it spans the
# plate already; a little more keeps a province on the plate's edge off the crop's edge).
REGION_MARGIN = 0.2


@dataclass(frozen=True)
class _Candidate:
    """A place where a plate may be: the lines it was read from and what the OCR line text said."""

    number: str | None  # the plate in the line text, None for plate-like text without a valid plate
    certain: bool
    used: tuple[int, ...]
    box: tuple[float, float, float, float]
    quad: tuple[tuple[float, float], ...]
    score: float
    two_rows: bool
    top: tuple[tuple[float, float], ...] | None = None  # a two-row plate's upper row, as detected


def _candidates(rgb: np.ndarray, lines: Sequence[OcrLine]) -> list[_Candidate]:
    """Plates written in the line text, then plate-like lines in which no plate was found."""
    found: list[_Candidate] = []
    pairs = _two_row_pairs(lines)
    covered: set[int] = set()
    for group in _rows(lines) + pairs:
        text = _cleaned(lines, group)
        two_rows = group in pairs
        for number, start, end, certain in _matches(text):
            owners = text.owners[start:end]
            used = tuple(sorted(set(owners)))
            score = sum(lines[i].score for i in owners) / max(1, len(owners))
            box = _union_box(lines, used)
            if len(used) == 1 and len(clean_text(lines[used[0]].text)) > len(number) + 2:
                box = _sub_box(lines[used[0]], text, start, end, used[0])
            if not certain:
                # The first character is no province: read the plate's box again, allowing provinces only.
                repaired = _reread_province(rgb, [lines[i] for i in used], number)
                certain = repaired is not None
                number = repaired or number
            quad = _quad(lines, used, box) or _box_quad(box)
            top = None
            if two_rows:
                top, quad = lines[group[0]].box, lines[group[1]].box
            found.append(_Candidate(number, certain, used, box, quad, score, two_rows, top))
            covered.update(used)
    loose = []
    for index, line in enumerate(lines):
        if index in covered:
            continue
        chars = clean_text(line.text)
        letters_digits = sum(c.isascii() for c in chars)
        digits = sum(c.isdigit() for c in chars)
        if len(chars) <= 12 and letters_digits >= 3 and (digits >= 2 or letters_digits >= 4):
            quad = line.box
            loose.append(
                (
                    letters_digits + digits,
                    _Candidate(None, False, (index,), _union_box(lines, [index]), quad, line.score, False),
                )
            )
    # Plate-like lines with no plate in their text (province or suffix lost): the likeliest few are read again.
    loose.sort(key=lambda pair: pair[0], reverse=True)
    found.extend(candidate for _, candidate in loose[:MAX_LOOSE])
    return found


def _box_quad(box: tuple[float, float, float, float]) -> tuple[tuple[float, float], ...]:
    x0, y0, x1, y1 = box
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def _looks_like_lower_row(text: str) -> bool:
    return bool(_TWO_ROW_BOTTOM.fullmatch(text)) and not any(c in PROVINCES for c in text)


def _other_text_above(lines: Sequence[OcrLine], index: int) -> bool:
    """A line the detector found where a two-row plate's upper row would be, and which is no upper row
    (a whole plate above a dealer's frame text, say): then ``index`` is no lower row."""
    bottom = lines[index]
    for other, top in enumerate(lines):
        if other == index or _TWO_ROW_TOP.fullmatch(clean_text(top.text)):
            continue
        centre = (top.x0 + top.x1) / 2
        gap = bottom.y0 - top.y1
        if bottom.x0 <= centre <= bottom.x1 and -0.6 * top.height <= gap <= 0.9 * bottom.height:
            return True
    return False


def _decide(rgb: np.ndarray, lines: Sequence[OcrLine], candidate: _Candidate, gains: np.ndarray) -> PlateReading | None:
    """The plate at a candidate place: the second reading when it is sure, else the line text when that is."""
    readings: list[Reading] = []
    color = None
    if candidate.two_rows:
        two = read_two_rows(rgb, candidate.quad, candidate.top)
        if two is not None:
            readings.append(two)
    else:
        color = plate_color(rgb, *candidate.box, quad=candidate.quad, gains=gains)
        one = read_line(rgb, candidate.quad, color=color)
        if one is not None:
            readings.append(one)
        text = clean_text("".join(lines[i].text for i in candidate.used))
        if candidate.number is None and _looks_like_lower_row(text) and not _other_text_above(lines, candidate.used[0]):
            two = read_two_rows(rgb, candidate.quad)
            if two is not None:
                readings.append(two)
    best = max(readings, key=lambda r: r.confidence, default=None)
    line_number = candidate.number if candidate.certain and is_valid_plate(candidate.number) else None
    if line_number is not None and color in _CIVIL_COLORS and plate_kind(line_number) in _WHITE_ONLY_KINDS:
        # Military plates are white: on a blue, yellow or green plate, two letters and five digits are
        # a province lost and its neighbour ("沪A·78730" read "FA·78730"), not a military number.
        line_number = None
    agree = (
        best is not None
        and line_number is not None
        and canonical_plate_number(line_number) == canonical_plate_number(best.number)
    )
    # A second reading that contradicts a valid, confident line reading must be about as sure as it.
    overrules = line_number is None or candidate.score < LINE_ACCEPT or agree
    sure = best is not None and best.confidence >= ACCEPT and is_valid_plate(best.number)
    if best is not None and sure and (overrules or best.confidence >= candidate.score - 0.15):
        confidence = max(best.confidence, min(candidate.score, 0.99)) if agree else best.confidence
        return _plate(rgb, best.number, confidence, best.box, best.quad, gains)
    # The line text alone: only when it is the plate and nothing else (a plate cut out of a longer
    # reading is a guess at where it starts), and the second reading does not half-contradict it.
    exact = len(clean_text("".join(lines[i].text for i in candidate.used))) == len(line_number or "")
    doubted = best is not None and not agree and best.confidence >= DOUBT
    if line_number is not None and candidate.score >= LINE_ACCEPT and (agree or (exact and not doubted)):
        confidence = min(candidate.score, ACCEPT)
        if best is not None and agree:
            confidence = max(confidence, best.confidence)
        return _plate(rgb, line_number, confidence, candidate.box, candidate.quad, gains)
    return None


def _plate(
    rgb: np.ndarray,
    number: str,
    confidence: float,
    box: tuple[float, float, float, float],
    quad: tuple[tuple[float, float], ...],
    gains: np.ndarray,
) -> PlateReading:
    height, width = rgb.shape[:2]
    clipped = (max(0.0, box[0]), max(0.0, box[1]), min(float(width), box[2]), min(float(height), box[3]))
    color = plate_color(rgb, *clipped, quad=quad, gains=gains)
    if color == "white" and len(number) == 8 and number[0] in PROVINCES:
        # Eight characters after a province is a new-energy plate, printed on green (its pale gradient
        # often looks white in a photo); no white plate has that format.
        color = "green"
    return PlateReading(number, color, confidence, clipped)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over the smaller box."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / max(smaller, 1e-6)


def find_plates(rgb: np.ndarray, lines: Sequence[OcrLine]) -> list[PlateReading]:
    """Every plate in the image, left to right then top to bottom; one reading per number and per place."""
    candidates = _candidates(rgb, lines)
    gains = cast_gains(rgb)
    decided = [_decide(rgb, lines, candidate, gains) for candidate in candidates]
    kept: list[PlateReading] = []
    for reading in sorted((r for r in decided if r is not None), key=lambda r: r.confidence, reverse=True):
        key = canonical_plate_number(reading.number)
        if any(canonical_plate_number(k.number) == key or _overlap(k.box, reading.box) > 0.5 for k in kept):
            continue
        kept.append(reading)
    if not kept:
        kept = _plates_without_text(rgb, candidates, gains)
    return sorted(kept, key=lambda r: (r.box[0], r.box[1]))


def _plates_without_text(rgb: np.ndarray, candidates: Sequence[_Candidate], gains: np.ndarray) -> list[PlateReading]:
    """Plates read from plate-coloured rectangles where the detector found no plate text (see regions):
    only in a photo where nothing else was found, only away from every place already read, and only
    as sure as any other second reading."""
    found: list[PlateReading] = []
    for region in plate_regions(rgb, gains):
        if any(_overlap(region.box, candidate.box) > 0.3 for candidate in candidates):
            continue
        reading = read_line(rgb, region.quad, margin=REGION_MARGIN, color=region.color)
        if reading is None or reading.confidence < ACCEPT or not is_valid_plate(reading.number):
            continue
        plate = _plate(rgb, reading.number, reading.confidence, reading.box, reading.quad, gains)
        if not any(p.number == plate.number or _overlap(p.box, plate.box) > 0.5 for p in found):
            found.append(plate)
    return found


def _quad(
    lines: Sequence[OcrLine], used: Sequence[int], box: tuple[float, float, float, float]
) -> tuple[tuple[float, float], ...] | None:
    """The plate text's quadrilateral (tl, tr, br, bl): one line's own, or a row of lines' outer
    edges; None for a plate cut out of a longer line or read in two rows (the box is used)."""
    chosen = [lines[i] for i in used]
    if any(abs(a - b) > 0.5 for a, b in zip(box, _union_box(lines, used), strict=True)):
        return None  # a sub-box of a longer line
    ordered = sorted(chosen, key=lambda line: line.x0)
    first, last = ordered[0], ordered[-1]
    if len(chosen) > 1 and not all(_same_row(a, b) for a, b in itertools.pairwise(ordered)):
        return None
    return (first.box[0], last.box[1], last.box[2], first.box[3])


def _reread_province(rgb: np.ndarray, used: Sequence[OcrLine], number: str) -> str | None:
    """``number`` with its first character replaced by the province the recogniser finds likeliest in
    the plate's own box, or None when that cannot be told.

    The greedy reading took the likeliest character of all 18 000; here only the 31 province
    characters compete for that position (CTC likelihood of each full reading), which recovers a
    province blurred into a look-alike ("淘" for 闽) on small or soft plates.  One recognition-only
    call on the line's box, and only for plates whose first character is no province.
    """
    crop = _line_crop(rgb, used[0]) if len(used) == 1 else None
    if crop is None:
        return None
    result = recognize_probabilities(np.ascontiguousarray(crop[:, :, ::-1]))
    if result is None:
        return None
    probabilities, characters = result
    index = character_index(characters)
    text = "".join(line.text for line in used)
    first = next((i for i, char in enumerate(text) if "\u4e00" <= char <= "\u9fff"), None)
    if first is None:
        return None
    scores = sorted(
        ((ctc_log_likelihood(probabilities, text[:first] + province + text[first + 1 :], index), province))
        for province in PROVINCES
    )
    (best, province), (second, _) = scores[-1], scores[-2]
    # A clear winner only: two provinces about as likely means the character is simply not legible.
    if not math.isfinite(best) or best - second < 1.0:
        return None
    return province + number[1:]


def _line_crop(rgb: np.ndarray, line: OcrLine) -> np.ndarray | None:
    """The line's quadrilateral cut out and straightened, as the recogniser's own crops are."""
    points = np.array(line.box, dtype=np.float32)
    width = round(float(max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[3] - points[2]))))
    height = round(float(max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2]))))
    if width < 8 or height < 8:
        return None
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(points, target)
    return cv2.warpPerspective(rgb, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _sub_box(line: OcrLine, text: _Text, start: int, end: int, index: int) -> tuple[float, float, float, float]:
    """The part of a long line's box that holds characters start..end (by character count; ideographs count two)."""
    positions = [k for k, owner in enumerate(text.owners) if owner == index]
    chars = [text.chars[k] for k in positions]
    weights = [2.0 if "\u4e00" <= c <= "\u9fff" else 1.0 for c in chars]
    total = sum(weights)
    first, last = positions.index(start), positions.index(end - 1)
    before = sum(weights[:first])
    upto = sum(weights[: last + 1])
    width = line.x1 - line.x0
    return (line.x0 + width * before / total, line.y0, line.x0 + width * upto / total, line.y1)


class LocalPlateRecognizer:
    """Plates with the offline engine: payload is a list of ``{"number", "color", "confidence"}``."""

    name = PROVIDER
    kind = "plate"

    def __repr__(self) -> str:
        return "LocalPlateRecognizer()"

    def recognize(self, image: bytes) -> ProviderAnswer:
        page = read_page(image)
        plates = find_plates(page.rgb, page.lines)
        return ProviderAnswer(provider=self.name, payload=[plate.as_payload(page.scale) for plate in plates])
