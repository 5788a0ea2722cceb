"""Chinese licence-plate numbers and colours.

Formats follow GA 36-2018 (机动车号牌) for the public-security plates; military and
armed-police plates are not in GA 36 and are matched by their published layouts.

Canonical form: half-width, upper case, no separators (``沪A·0762学`` → ``沪A0762学``).

Look-alike repair, and why it is limited to what is certain:

* GA 36 never uses the letters I and O in a serial number, so an ``I`` or ``O`` read in
  the serial part is never the true character, and ``1`` / ``0`` are their only twins
  among the characters allowed there.  That repair is applied.
* Except where the layout may demand a letter: the first or last serial position of an
  8-character new-energy plate holds the D/F (A-K) marker, so an ``O`` there is repaired
  only when the marker is visibly in the other position; otherwise it is probably a misread
  D and is left for the validity check to flag.
* The issuing-authority letter after the province (``京A``) is a letter position and O is
  a real authority code there (``京O`` is issued to public-security and government units),
  so nothing is changed in it.  A digit read there (``京0…``) could be O, D or Q: it is
  left alone and the plate is reported invalid instead of guessed at.
* Military and armed-police plates start with a two-letter code (``VA``, ``WJ``); those
  letters are never changed either.
* Other pairs (S/5, B/8, Z/2, D/0) are legal on both sides in most positions: no repair.

Traditional-script readings of the province or suffix character (``滬``, ``學``) are the
same character and are mapped to the simplified form plates carry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from vehicle_ocr.bounded import cut_text
from vehicle_ocr.normalize.values import to_half_width

if TYPE_CHECKING:
    from vehicle_ocr.shapes import Plate, PlateColorName  # the record's types (shapes imports the normalisers)

# The longest plate numbers are 8-9 characters; anything past this is not a plate number.
MAX_NUMBER_CHARS = 32

# The 31 province-level abbreviations plates carry (GA 36-2018 appendix).
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"


class PlateColor(StrEnum):
    BLUE = "blue"
    YELLOW = "yellow"
    GREEN = "green"  # 渐变绿: small new-energy vehicles
    YELLOW_GREEN = "yellow_green"  # 黄绿双拼: large new-energy vehicles
    WHITE = "white"
    BLACK = "black"
    OTHER = "other"


class PlateKind(StrEnum):
    REGULAR = "regular"
    NEW_ENERGY_SMALL = "new_energy_small"
    NEW_ENERGY_LARGE = "new_energy_large"
    COACH = "coach"  # 学
    TRAILER = "trailer"  # 挂
    POLICE = "police"  # 警
    HONG_KONG = "hong_kong"  # 港
    MACAU = "macau"  # 澳
    CONSULATE = "consulate"  # 领
    EMBASSY = "embassy"  # 使
    MILITARY = "military"
    ARMED_POLICE = "armed_police"  # WJ
    OTHER = "other"


# Plate colour codes, one table.  1-5 and 9 are JT/T 697.7-2014 (the code set JT/T 808-2019
# uses for the terminal's 车牌颜色); 93 黄绿色 is the extension of that code set used by the
# Ministry of Transport's platforms (91 农黄色, 92 农绿色, 93 黄绿色, 94 渐变绿).  Green keeps
# 5 rather than 94: an upstream "green" does not say it is the gradient new-energy green,
# and 5 is the value every JT/T 808 terminal and platform understands.
COLOR_CODES: dict[PlateColor, int] = {
    PlateColor.BLUE: 1,
    PlateColor.YELLOW: 2,
    PlateColor.BLACK: 3,
    PlateColor.WHITE: 4,
    PlateColor.GREEN: 5,
    PlateColor.YELLOW_GREEN: 93,
    PlateColor.OTHER: 9,
}
_COLOR_BY_CODE = {code: color for color, code in COLOR_CODES.items()} | {94: PlateColor.GREEN}

# Spellings seen from tianapi (English words), other engines (Chinese) and people, after
# lower-casing and dropping spaces, "_", "-", "色", "牌", "plate".
_COLOR_WORDS: dict[str, PlateColor] = {
    "blue": PlateColor.BLUE,
    "蓝": PlateColor.BLUE,
    "yellow": PlateColor.YELLOW,
    "黄": PlateColor.YELLOW,
    "green": PlateColor.GREEN,
    "绿": PlateColor.GREEN,
    "渐变绿": PlateColor.GREEN,
    "gradientgreen": PlateColor.GREEN,
    "新能源": PlateColor.GREEN,
    "yellowgreen": PlateColor.YELLOW_GREEN,
    "greenyellow": PlateColor.YELLOW_GREEN,
    "黄绿": PlateColor.YELLOW_GREEN,
    "黄绿双拼": PlateColor.YELLOW_GREEN,
    "white": PlateColor.WHITE,
    "白": PlateColor.WHITE,
    "black": PlateColor.BLACK,
    "黑": PlateColor.BLACK,
}
_COLOR_NOISE = re.compile(r"[\s_\-]+|色|牌|plate")

# Separators printed on or read off plates: middle dots of every flavour, dots, dashes, spaces.
_SEPARATORS = re.compile(r"[\s·•・･‧∙⋅.。\-‐‑‒–—_]+")
_TRADITIONAL = str.maketrans("滬遼貴雲陝閩粵寧甯瓊晉蘇魯贛學掛領", "沪辽贵云陕闽粤宁宁琼晋苏鲁赣学挂领")
_CERTAIN_REPAIRS = str.maketrans({"O": "0", "I": "1"})

_P = f"[{PROVINCES}]"
_AUTH = "[A-HJ-Z]"  # issuing authority: any letter but I (O is a real code)
_S = "[A-HJ-NP-Z0-9]"  # serial character: digits and letters but I and O
_NE = "[A-HJK]"  # new-energy marker: D/F in GA 36-2018, later extended to D/A/B/C/E (electric), F/G/H/J/K
_LETTER = "[A-HJ-NP-Z]"

# Kind -> layouts that make a number valid, matched whole (fullmatch). Pattern strings, compiled by
# re's own cache when first matched: compiling a class of 31 Chinese characters takes 0.75 ms, and a
# cold start compiled eleven of them, where most containers only ever meet the first layouts.
_VALID_LAYOUTS: dict[PlateKind, tuple[str, ...]] = {
    PlateKind.REGULAR: (f"{_P}{_AUTH}{_S}{{5}}",),
    PlateKind.NEW_ENERGY_SMALL: (f"{_P}{_AUTH}{_NE}{_S}[0-9]{{4}}",),
    PlateKind.NEW_ENERGY_LARGE: (f"{_P}{_AUTH}[0-9]{{5}}{_NE}",),
    PlateKind.COACH: (f"{_P}{_AUTH}{_S}{{4}}学",),
    PlateKind.TRAILER: (f"{_P}{_AUTH}{_S}{{4}}挂",),
    PlateKind.POLICE: (f"{_P}{_AUTH}{_S}{{4}}警",),
    PlateKind.HONG_KONG: (f"粤Z{_S}{{4}}港",),
    PlateKind.MACAU: (f"粤Z{_S}{{4}}澳",),
    PlateKind.CONSULATE: (f"{_P}{_AUTH}[0-9]{{4}}领",),
    PlateKind.EMBASSY: ("使[0-9]{6}",),
    # 2012 military plates: red two-letter unit code, then five digits ("VA12345").
    PlateKind.MILITARY: (f"{_LETTER}{{2}}[0-9]{{5}}",),
    # Armed police: 2012 layout WJ + province + 5 ("WJ京12345"), older WJ + unit no. ("WJ01警1234").
    PlateKind.ARMED_POLICE: (
        f"WJ{_P}{_S}{{5}}",
        "WJ[0-9]{2}[警0-9][0-9]{4}",
    ),
    # GA 36 plates without a kind of their own: 试 (test vehicles), 超 (oversize trial).
    PlateKind.OTHER: (f"{_P}{_AUTH}{_S}{{4}}[试超]",),
}

_SUFFIX_KINDS: dict[str, PlateKind] = {
    "学": PlateKind.COACH,
    "挂": PlateKind.TRAILER,
    "警": PlateKind.POLICE,
    "港": PlateKind.HONG_KONG,
    "澳": PlateKind.MACAU,
    "领": PlateKind.CONSULATE,
    "使": PlateKind.EMBASSY,
    "试": PlateKind.OTHER,
    "超": PlateKind.OTHER,
}
_SMALL_NE_SHAPE = f"{_P}.{_NE}.[0-9]{{4}}"  # strings too: compiled when first matched
_LARGE_NE_SHAPE = f"{_P}.[0-9]{{5}}{_NE}"
_MILITARY_SHAPE = re.compile("[A-Z]{2}[0-9]{5}")


def _is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


def _serial_start(number: str) -> int:
    """Index where the serial (I/O-free) part starts; letters before it are never repaired."""
    if number[0] in PROVINCES:
        return 2  # province + issuing-authority letter
    if _is_cjk(number[0]):
        # 使 / 民航 prefixes: only digits follow the Chinese characters.
        return next((i for i, char in enumerate(number) if not _is_cjk(char)), len(number))
    # WJ, military unit codes, or a plate whose province was not read: up to two leading
    # letters are a code in which O may be genuine, so they are kept.
    letters = 0
    while letters < min(2, len(number)) and "A" <= number[letters] <= "Z":
        letters += 1
    return letters


def canonical_plate_number(text: Any) -> str:
    """Half-width, upper-case plate number without separators, I/O repaired in the serial; "" when blank."""
    if not isinstance(text, str):
        return ""
    number = _SEPARATORS.sub("", to_half_width(text)).upper().translate(_TRADITIONAL)
    if not number:
        return ""
    start = _serial_start(number)
    repaired = number[:start] + number[start:].translate(_CERTAIN_REPAIRS)
    if len(number) == 8 and number[0] in PROVINCES:
        # New-energy plates carry their letter marker either first (small: 京AD12345) or last
        # (large: 京A12345D) in the serial.  An O/I in one marker position is a digit only when
        # the other position already holds the marker; otherwise it is a misread marker letter
        # (O for D), so it is left as read and the plate reports invalid.
        chars = list(repaired)
        for here, other in ((2, 7), (7, 2)):
            if number[here] in "OI" and not re.fullmatch(_NE, number[other]):
                chars[here] = number[here]
        repaired = "".join(chars)
    return repaired


def province_of(number: Any) -> str | None:
    """The province abbreviation a plate was issued under (also inside ``WJ京…``), else None."""
    canonical = canonical_plate_number(number)
    if canonical[:1] and canonical[0] in PROVINCES:
        return canonical[0]
    if canonical.startswith("WJ") and canonical[2:3] and canonical[2] in PROVINCES:
        return canonical[2]
    return None


def normalize_color(raw: Any) -> PlateColor:
    """Colour enum from an English/Chinese spelling or a JT/T 697.7 code; OTHER when unknown."""
    if isinstance(raw, bool):
        return PlateColor.OTHER
    if isinstance(raw, int):
        return _COLOR_BY_CODE.get(raw, PlateColor.OTHER)
    if not isinstance(raw, str):
        return PlateColor.OTHER
    word = _COLOR_NOISE.sub("", to_half_width(raw).strip().lower())
    if word.isdigit():
        return _COLOR_BY_CODE.get(int(word), PlateColor.OTHER)
    return _COLOR_WORDS.get(word, PlateColor.OTHER)


def _kind_by_shape(number: str) -> PlateKind | None:
    """The kind a number's layout claims, without checking every character."""
    if number.startswith("WJ"):
        return PlateKind.ARMED_POLICE
    if number.startswith("使"):
        return PlateKind.EMBASSY
    if number[-1] in _SUFFIX_KINDS:
        return _SUFFIX_KINDS[number[-1]]
    if number[0] in PROVINCES:
        if len(number) == 7:
            return PlateKind.REGULAR
        if re.fullmatch(_SMALL_NE_SHAPE, number):
            return PlateKind.NEW_ENERGY_SMALL
        if re.fullmatch(_LARGE_NE_SHAPE, number):
            return PlateKind.NEW_ENERGY_LARGE
        return None
    if _MILITARY_SHAPE.fullmatch(number):
        return PlateKind.MILITARY
    return None


def plate_kind(number: Any, color: Any = None) -> PlateKind:
    """Kind of plate: from the number's layout, else from the colour (green / yellow-green), else OTHER."""
    canonical = canonical_plate_number(number)
    kind = _kind_by_shape(canonical) if canonical else None
    if kind is not None:
        return kind
    # A green plate that was misread is still a new-energy plate; other colours are shared by kinds.
    by_color = {
        PlateColor.GREEN: PlateKind.NEW_ENERGY_SMALL,
        PlateColor.YELLOW_GREEN: PlateKind.NEW_ENERGY_LARGE,
    }
    return by_color.get(normalize_color(color), PlateKind.OTHER)


def is_valid_plate(number: Any) -> bool:
    """True when the whole canonical number matches one published layout."""
    canonical = canonical_plate_number(number)
    return any(re.fullmatch(layout, canonical) for layouts in _VALID_LAYOUTS.values() for layout in layouts)


def _confidence(raw: Mapping[str, Any]) -> float | None:
    for key in ("confidence", "score"):
        value = raw.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                continue
        # A score is a probability or a percentage (the record says 0 to 1); anything else is not a confidence.
        if isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= 100:
            return float(value) if value <= 1 else round(value / 100, 6)
    return None


def _box(raw: Mapping[str, Any]) -> list[int] | None:
    """Where the plate is in the image, as [x1, y1, x2, y2] in whole pixels.

    Taken from ``box`` as four numbers, or as four corner points (a rotated plate), whose
    bounding rectangle it becomes; anything else, or an empty rectangle, is no box.
    """
    value = raw.get("box")
    if not isinstance(value, list | tuple) or len(value) != 4:
        return None
    if all(isinstance(point, list | tuple) and len(point) == 2 for point in value):
        xs, ys = [point[0] for point in value], [point[1] for point in value]
        value = [min(xs), min(ys), max(xs), max(ys)] if _all_numbers(xs + ys) else None
    if value is None or not _all_numbers(value):
        return None
    x1, y1, x2, y2 = (max(0, round(v)) for v in value)
    return [x1, y1, x2, y2] if x2 > x1 and y2 > y1 else None


def _all_numbers(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def normalize_plate(raw: Mapping[str, Any]) -> Plate:
    """One upstream plate (``{"number": "沪A·0762学", "color": "yellow"}``) in the record's shape."""
    if not isinstance(raw, Mapping):
        raw = {}
    number = canonical_plate_number(raw.get("number"))
    if len(number) > MAX_NUMBER_CHARS:
        # No plate is this long: keep what was read, cut and marked, so the record stays small.
        number = cut_text(number, MAX_NUMBER_CHARS)
    color = normalize_color(raw.get("color"))
    result: Plate = {
        "number": number,
        "color": cast("PlateColorName", color.value),  # PlateColor's values are the Literal's
        "color_code": COLOR_CODES[color],
        "kind": plate_kind(number, color).value,
        "province": province_of(number),
        "valid": is_valid_plate(number),
    }
    confidence = _confidence(raw)
    if confidence is not None:
        result["confidence"] = confidence
    if (box := _box(raw)) is not None:
        result["box"] = box
    return result
