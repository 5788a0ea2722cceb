"""Shared value parsers: full-width folding, dates, integers with units, dimensions."""

from __future__ import annotations

import datetime as dt

import pytest

from vehicle_ocr.normalize.values import (
    MASS_UNITS,
    PERSON_UNITS,
    parse_date,
    parse_dimensions,
    parse_int,
    to_half_width,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ＡＢ１２", "AB12"),
        ("ａｂｃ", "abc"),
        ("１９４５ｋｇ", "1945kg"),
        ("１，９４５", "1,945"),
        ("４８８５＊１８４０Ｘ１４５５", "4885*1840X1455"),
        ("２０２０／０６／０１", "2020/06/01"),
        ("京\u3000A", "京 A"),
        ("～！", "~!"),
        ("沪A12345", "沪A12345"),  # already half-width: unchanged
        ("×·", "×·"),  # not in the full-width ASCII block: unchanged
        ("", ""),
    ],
)
def test_given_full_width_text_when_folded_then_ascii_forms_are_half_width(text: str, expected: str) -> None:
    assert to_half_width(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-06-01", "2020-06-01"),
        ("2020-6-1", "2020-06-01"),
        ("2020年06月01日", "2020-06-01"),
        ("2020年6月1日", "2020-06-01"),
        ("2020年6月1", "2020-06-01"),
        ("2020 年 6 月 1 日", "2020-06-01"),
        ("2020/6/1", "2020-06-01"),
        ("2020/06/01", "2020-06-01"),
        ("2020.06.01", "2020-06-01"),
        ("20200601", "2020-06-01"),
        ("２０２０－０６－０１", "2020-06-01"),
        ("２０２０年６月１日", "2020-06-01"),
        ("  2020-06-01  ", "2020-06-01"),
        ("\u30002020-06-01\u3000", "2020-06-01"),
        ("2024-02-29", "2024-02-29"),  # leap day in a leap year
        (dt.date(2020, 6, 1), "2020-06-01"),
        (dt.datetime(2020, 6, 1, 8, 30), "2020-06-01"),
    ],
)
def test_given_a_real_world_date_spelling_when_parsed_then_iso_date(text: object, expected: str) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2020-02-30",  # no such day
        "2023-02-29",  # not a leap year
        "2020-13-01",
        "2020-00-10",
        "2020-06-00",
        "20201301",
        "2020-06",  # incomplete
        "06/01/2020",  # day-first or month-first: ambiguous, not a 行驶证 format
        "2020-06-01-02",
        "0001-01-01",  # calendar-valid but an OCR error on a vehicle document
        "2020年6月1日 发证",
        "--",
        "",
        "   ",
        None,
        20200601,
        ["2020-06-01"],
    ],
)
def test_given_an_impossible_or_unparseable_date_when_parsed_then_none(text: object) -> None:
    assert parse_date(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5人", 5),
        ("5 人", 5),
        ("5", 5),
        ("1945kg", 1945),
        ("1945 KG", 1945),
        ("1945Kg", 1945),
        ("1945千克", 1945),
        ("1945公斤", 1945),
        ("1,945", 1945),
        ("1，945kg", 1945),
        ("12,345,678", 12345678),
        ("１９４５", 1945),
        ("１９４５ｋｇ", 1945),
        ("1945.0", 1945),
        ("1945.00 kg", 1945),
        ("  1945  ", 1945),
        ("0", 0),
        (1945, 1945),
        (1945.0, 1945),
    ],
)
def test_given_a_number_with_unit_or_separators_when_parsed_then_int(text: object, expected: int) -> None:
    assert parse_int(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "--",
        "-",
        "/",
        "无",
        "",
        "   ",
        "1945.5",  # fractional: not silently rounded
        "19,45",  # misplaced thousands separator
        "1,9450",
        "-5",
        "1945 kg 5",
        "kg",
        "五人",
        "1945t",  # tonnes are not a 行驶证 unit
        None,
        True,
        -3,
        1945.5,
        ["5"],
    ],
)
def test_given_a_non_integer_when_parsed_then_none(text: object) -> None:
    assert parse_int(text) is None


@pytest.mark.parametrize(
    ("text", "units", "expected"),
    [
        ("5人", PERSON_UNITS, 5),
        ("5人", MASS_UNITS, None),  # a passenger count is not a mass
        ("1945kg", MASS_UNITS, 1945),
        ("1945kg", PERSON_UNITS, None),
        ("1945", MASS_UNITS, 1945),  # a bare number is always accepted
    ],
)
def test_given_restricted_units_when_parsed_then_only_those_units_may_trail(
    text: str, units: tuple[str, ...], expected: int | None
) -> None:
    assert parse_int(text, units) == expected


@pytest.mark.parametrize(
    "text",
    [
        "4885x1840x1455",
        "4885×1840×1455mm",
        "4885*1840*1455",
        "4885X1840X1455",
        "4885 × 1840 × 1455 mm",
        "4885x1840x1455MM",
        "4885x1840x1455毫米",
        "４８８５×１８４０×１４５５",
        "４８８５＊１８４０＊１４５５",
        "４８８５Ｘ１８４０Ｘ１４５５ｍｍ",
        "4885✕1840✕1455",
        "  4885x1840x1455  ",
        "4885x1840*1455",  # mixed separators still read as three numbers
    ],
)
def test_given_a_gabarite_spelling_when_parsed_then_length_width_height_in_mm(text: str) -> None:
    assert parse_dimensions(text) == {"length": 4885, "width": 1840, "height": 1455}


@pytest.mark.parametrize(
    "text",
    [
        "4885x1840",  # only two dimensions
        "4885x1840x1455x10",
        "4885x1840x",
        "4885,1840,1455",
        "4885x0x1455",  # zero is an OCR error
        "4885.5x1840x1455",
        "长4885宽1840高1455",
        "4885x1840x1455cm",  # wrong unit
        "--",
        "",
        None,
        4885,
    ],
)
def test_given_an_unparseable_gabarite_when_parsed_then_none(text: object) -> None:
    assert parse_dimensions(text) is None
