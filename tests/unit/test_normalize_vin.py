"""VIN normalisation and the ISO 3779 / GB 16735 check digit."""

from __future__ import annotations

import pytest

from vehicle_ocr.normalize.vin import normalize_vin, vin_check_digit, vin_check_digit_valid

# An independent implementation for cross-checking: the classic "index in this string,
# modulo 10" transliteration, where the dots are the letters (I, O, Q) the standard skips.
_INDEPENDENT_ALPHABET = "0123456789.ABCDEFGH..JKLMN.P.R..STUVWXYZ"
_INDEPENDENT_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def _independent_check_digit(vin: str) -> str:
    total = sum((_INDEPENDENT_ALPHABET.index(c) % 10) * w for c, w in zip(vin, _INDEPENDENT_WEIGHTS, strict=True))
    return "X" if total % 11 == 10 else str(total % 11)


# Published valid VINs, and Chinese-style (WMI L...) VINs whose check digit was worked out by
# hand.  Worked example for LFV2A21K5C4012345:
#   L3*8 + F6*7 + V5*6 + 2*5 + A1*4 + 2*3 + 1*2 + K2*10 + C3*9 + 4*8 + 0*7 + 1*6 + 2*5 + 3*4 + 4*3 + 5*2
#   = 24+42+30+10+4+6+2+20+27+32+0+6+10+12+12+10 = 247;  247 mod 11 = 5  -> position 9 is "5".
VALID_VINS = [
    "1M8GDM9AXKP042788",  # the textbook example (49 CFR 565), check digit X
    "1HGCM82633A004352",
    "JH4KA7561PC008269",
    "11111111111111111",  # 89 mod 11 = 1
    "LFV2A21K5C4012345",  # worked above
    "LSVAU218XN2183294",  # remainder 10 -> X
    "LGBH52E08DY123456",
    "LSGKB54H5KS087325",
    "LVSHCAMB7CE012345",
    "LHGCR2654E8012345",
    "LB1WA5889A8000000",
]


@pytest.mark.parametrize("vin", VALID_VINS)
def test_given_a_vin_with_the_right_check_digit_when_checked_then_valid(vin: str) -> None:
    assert _independent_check_digit(vin) == vin[8]  # the fixture itself is right
    assert vin_check_digit(vin) == vin[8]
    assert vin_check_digit_valid(vin) is True


def _corruptions() -> list[tuple[str, int]]:
    """Every VALID_VINS entry with one position changed to a character of a different value."""
    cases = []
    for vin in VALID_VINS:
        for position in range(17):
            if position == 8:
                # the check digit itself: any other check character
                replacement = "0" if vin[8] != "0" else "1"
            else:
                value = _INDEPENDENT_ALPHABET.index(vin[position]) % 10
                replacement = str((value + 1) % 10)
            cases.append((vin[:position] + replacement + vin[position + 1 :], position))
    return cases


@pytest.mark.parametrize(("vin", "position"), _corruptions())
def test_given_a_single_character_corruption_when_checked_then_invalid(vin: str, position: int) -> None:
    assert vin_check_digit_valid(vin) is False, f"corruption at position {position + 1} not detected"


@pytest.mark.parametrize(
    "vin",
    [
        "1M8GDM9AXKP04278",  # 16 characters
        "1M8GDM9AXKP0427888",  # 18 characters
        "1M8GDM9AXKP04278I",  # I is not in the VIN alphabet
        "1M8GDM9AXKP04278O",
        "1M8GDM9AXKP04278Q",
        "1m8gdm9axkp042788",  # lower case: pass normalize_vin output
        "1M8GDM9AXKP04278-",
        "LSXXXXXXXXXXXXXXXXX",  # the upstream's placeholder example
        "",
        None,
        17,
    ],
)
def test_given_a_string_that_is_not_vin_shaped_when_checked_then_invalid(vin: object) -> None:
    assert vin_check_digit_valid(vin) is False


def test_given_a_transposition_of_different_values_when_checked_then_invalid() -> None:
    # Given two adjacent characters of different value and weight swapped (a common typing slip)
    swapped = "1M8GDM9AXKP042878"
    # When / Then: the weighted sum changes, so the check fails
    assert vin_check_digit_valid(swapped) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1M8GDM9AXKP042788", "1M8GDM9AXKP042788"),
        ("1m8gdm9axkp042788", "1M8GDM9AXKP042788"),
        ("  1M8GDM9AXKP042788\n", "1M8GDM9AXKP042788"),
        ("1M8 GDM9AX KP042788", "1M8GDM9AXKP042788"),
        ("1M8-GDM9AX-KP042788", "1M8GDM9AXKP042788"),
        ("1M8—GDM9AX–KP042788", "1M8GDM9AXKP042788"),
        ("１Ｍ８ＧＤＭ９ＡＸＫＰ０４２７８８", "1M8GDM9AXKP042788"),
        ("1M8GDM9AXKP\u3000042788", "1M8GDM9AXKP042788"),
        ("1M8GDM9AXKPO42788", "1M8GDM9AXKP042788"),  # O -> 0
        ("1M8GDM9AXKPQ42788", "1M8GDM9AXKP042788"),  # Q -> 0
        ("1M8GDM9AXKP0427BB", "1M8GDM9AXKP0427BB"),  # B is legal: no 8 guessed
        ("IM8GDM9AXKP042788", "1M8GDM9AXKP042788"),  # I -> 1
        ("lsvau218xn2183294", "LSVAU218XN2183294"),
        ("LSVAU218XN2I83294", "LSVAU218XN2183294"),
        ("LS", "LS"),  # too short, still returned: validity is a separate flag
    ],
)
def test_given_an_ocr_vin_when_normalised_then_canonical_with_certain_repairs(text: str, expected: str) -> None:
    assert normalize_vin(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "\u3000", "- -", None, 12345, ["1M8GDM9AXKP042788"]])
def test_given_no_vin_when_normalised_then_none(text: object) -> None:
    assert normalize_vin(text) is None


@pytest.mark.parametrize(
    "text",
    ["1m8gdm9axkp042788", "1M8 GDM9AX KPO42788", "１Ｍ８ＧＤＭ９ＡＸＫＰ０４２７８８", "lsvau218xn2i83294"],
)
def test_given_a_messy_reading_of_a_valid_vin_when_normalised_then_the_check_passes(text: str) -> None:
    assert vin_check_digit_valid(normalize_vin(text)) is True
