"""Small value parsers shared by the plate and vehicle-licence normalisers.

Every function is total: it takes whatever the upstream OCR produced (usually a string,
sometimes a number or None) and returns a clean value or ``None``.  None of them raise.
OCR output from Chinese documents mixes full-width and half-width forms freely, so every
parser folds full-width characters first.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vehicle_ocr.shapes import Dimensions  # the record's types (shapes imports the normalisers)

# Full-width ASCII block U+FF01..U+FF5E sits exactly 0xFEE0 above printable ASCII; the
# ideographic space U+3000 is the full-width space.  An explicit table (not NFKC) keeps the
# fold predictable: NFKC would also rewrite things like "①" or "㎏" behind our back.
_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_HALF_WIDTH[0x3000] = 0x20

MASS_UNITS: tuple[str, ...] = ("kg", "千克", "公斤")
PERSON_UNITS: tuple[str, ...] = ("人",)
LENGTH_UNITS: tuple[str, ...] = ("mm", "毫米")
DEFAULT_UNITS: tuple[str, ...] = MASS_UNITS + PERSON_UNITS + LENGTH_UNITS

# A 行驶证 date outside this window is an OCR error, not a vehicle.
_MIN_YEAR, _MAX_YEAR = 1900, 2100

_DATE_SEPARATED = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
# Thousands separators are accepted only where they group correctly, so "19,45" is not 1945.
_INTEGER = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.0+)?")
_DIMENSIONS = re.compile(r"(\d+)\s*[x×*✕]\s*(\d+)\s*[x×*✕]\s*(\d+)\s*(?:mm|毫米)?")


def to_half_width(text: str) -> str:
    """Fold full-width ASCII (``"ＡＢ１２"``) and the ideographic space to their half-width forms."""
    return text.translate(_HALF_WIDTH)


def _clean(text: Any) -> str | None:
    """A stripped half-width string, or None for anything that is not text."""
    if not isinstance(text, str):
        return None
    return to_half_width(text).strip()


def parse_date(text: Any) -> str | None:
    """An ISO ``YYYY-MM-DD`` date from the spellings a 行驶证 OCR produces, or None.

    Accepts ``2020-06-01``, ``2020/6/1``, ``2020.06.01``, ``2020年6月1日``, ``20200601``
    and full-width digits.  Impossible calendar dates (2020-02-30) are None, not clamped.
    """
    if isinstance(text, _dt.datetime):
        text = text.date()
    if isinstance(text, _dt.date):
        return text.isoformat() if _MIN_YEAR <= text.year <= _MAX_YEAR else None
    cleaned = _clean(text)
    if not cleaned:
        return None
    match = _DATE_SEPARATED.fullmatch(cleaned) or _DATE_COMPACT.fullmatch(cleaned)
    if match is None:
        return None
    year, month, day = (int(part) for part in match.groups())
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return None
    try:
        return _dt.date(year, month, day).isoformat()
    except ValueError:
        return None


# No mass, size or head count on a licence comes near this: a larger reading is an OCR or upstream error.
MAX_MEASUREMENT = 10**9


def _strip_unit(text: str, units: tuple[str, ...]) -> str:
    """``text`` without one trailing unit (case-insensitive); anything else is left for the caller to reject."""
    lowered = text.lower()
    for unit in units:
        if unit and lowered.endswith(unit.lower()):
            return text[: len(text) - len(unit)].rstrip()
    return text


def parse_int(text: Any, units: Iterable[str] = DEFAULT_UNITS) -> int | None:
    """A non-negative integer from ``"5人"``, ``"1,945 kg"``, ``"１９４５"``, ``"1945.0"``; else None.

    Only the given ``units`` may trail the number, so a mass field rejects ``"5人"``.  A
    fractional value (``"1945.5"``) is None rather than silently rounded.
    """
    if isinstance(text, bool):  # bool is an int subclass, never a measurement
        return None
    if isinstance(text, int):
        return text if 0 <= text <= MAX_MEASUREMENT else None
    if isinstance(text, float):
        return int(text) if text.is_integer() and 0 <= text <= MAX_MEASUREMENT else None
    cleaned = _clean(text)
    if not cleaned:
        return None
    number = _strip_unit(cleaned, tuple(units))
    if not number:
        return None
    match = _INTEGER.fullmatch(number)
    if match is None:
        return None
    value = int(match.group(1).replace(",", ""))
    return value if value <= MAX_MEASUREMENT else None


def parse_dimensions(text: Any) -> Dimensions | None:
    """``{"length", "width", "height"}`` in mm from ``"4885x1840x1455"`` and its variants, else None.

    Separators x, X, ×, * (and their full-width forms) with optional spaces and a trailing
    ``mm``/``毫米``.  A zero dimension is an OCR error, so it is None.
    """
    cleaned = _clean(text)
    if not cleaned:
        return None
    match = _DIMENSIONS.fullmatch(cleaned.lower())
    if match is None:
        return None
    length, width, height = (int(part) for part in match.groups())
    if 0 in (length, width, height):
        return None
    return {"length": length, "width": width, "height": height}
