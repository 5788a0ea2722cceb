"""Vehicle identification numbers (ISO 3779; China: GB 16735, same alphabet and check digit).

A VIN has 17 characters from the digits and the letters other than I, O and Q.  Because
those three letters can never occur, reading one is always an OCR confusion with a digit
(I→1, O→0, Q→0), so repairing them is certain rather than a guess.  No other look-alike
(S/5, B/8, Z/2) is touched: both sides of those pairs are legal VIN characters.
"""

from __future__ import annotations

import re
from typing import Any

from vehicle_ocr.normalize.values import to_half_width

VIN_LENGTH = 17

# ISO 3779 / 49 CFR 565 transliteration of letters to values; digits are their own value.
_TRANSLITERATION: dict[str, int] = {
    **{str(digit): digit for digit in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
# Position weights; position 9 (weight 0) is the check digit itself.
_WEIGHTS: tuple[int, ...] = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_CHECK_POSITION = 8  # zero-based index of position 9

_CERTAIN_REPAIRS = str.maketrans({"I": "1", "O": "0", "Q": "0"})
# Spaces and dash-like characters OCR inserts between groups of the printed VIN.
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—_]+")


def normalize_vin(text: Any) -> str | None:
    """Half-width, upper-case VIN without separators, with I/O/Q repaired; None when blank.

    The result is not guaranteed to be a valid VIN (length and check digit are reported by
    :func:`vin_check_digit_valid`), because a flagged reading is still worth keeping.
    """
    if not isinstance(text, str):
        return None
    cleaned = _SEPARATORS.sub("", to_half_width(text)).upper()
    return cleaned.translate(_CERTAIN_REPAIRS) or None


def vin_check_digit(vin: str) -> str | None:
    """The check character position 9 should hold ("0"-"9" or "X"), or None if ``vin`` is not VIN-shaped."""
    if not isinstance(vin, str) or len(vin) != VIN_LENGTH:
        return None
    try:
        total = sum(_TRANSLITERATION[char] * weight for char, weight in zip(vin, _WEIGHTS, strict=True))
    except KeyError:  # a character outside the VIN alphabet (lower case, I, O, Q, punctuation)
        return None
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def vin_check_digit_valid(vin: Any) -> bool:
    """True when ``vin`` is 17 VIN-alphabet characters and position 9 holds the right check digit.

    Strict on purpose: pass the output of :func:`normalize_vin`; lower case is not accepted.
    """
    expected = vin_check_digit(vin)
    return expected is not None and vin[_CHECK_POSITION] == expected
