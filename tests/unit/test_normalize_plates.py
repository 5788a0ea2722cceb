"""Plate numbers (GA 36-2018 layouts), colours (JT/T 697.7 codes) and one upstream plate."""

from __future__ import annotations

import pytest

from vehicle_ocr.normalize.plates import (
    COLOR_CODES,
    PROVINCES,
    PlateColor,
    PlateKind,
    canonical_plate_number,
    is_valid_plate,
    normalize_color,
    normalize_plate,
    plate_kind,
    province_of,
)

# ---------------------------------------------------------------------------------------------
# canonical_plate_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # separators
        ("沪A·0762学", "沪A0762学"),
        ("沪A0762学", "沪A0762学"),
        ("京A 12345", "京A12345"),
        ("京A-12345", "京A12345"),
        ("京A.12345", "京A12345"),
        ("京A•12345", "京A12345"),
        ("京A・12345", "京A12345"),
        ("京A･12345", "京A12345"),
        ("京A⋅12345", "京A12345"),
        ("京A\u300012345", "京A12345"),
        ("京A—12345", "京A12345"),
        ("京A－12345", "京A12345"),
        ("京A．12345", "京A12345"),
        ("京 A · 1 2 3 4 5", "京A12345"),
        ("  粤B 12345  ", "粤B12345"),
        ("\t苏E·D12345\n", "苏ED12345"),
        # width and case
        ("ＡＢ１２", "AB12"),
        ("京Ａ１２３４５", "京A12345"),
        ("京ａ１２３４５", "京A12345"),
        ("京a12345", "京A12345"),
        ("京Ａ·ＤＦ１２３４", "京ADF1234"),
        ("wj·京·12345", "WJ京12345"),
        # certain look-alike repair in the serial part (GA 36: no I or O in a serial)
        ("京A1234O", "京A12340"),
        ("京AO1234", "京A01234"),
        ("京AI2345", "京A12345"),
        ("京a·o12i4", "京A01214"),
        ("浙BOOOOI", "浙B00001"),
        ("使O14·578", "使014578"),
        ("WJ京1234O", "WJ京12340"),
        ("VA·1234O", "VA12340"),
        ("民航1234O", "民航12340"),
        ("0I4578使", "014578使"),  # no leading letter: everything is serial
        # new-energy: O -> 0 only when the D/F marker is visibly at the other end
        ("京AO1234D", "京A01234D"),
        ("京AD1234O", "京AD12340"),
        ("京ADO1234", "京AD01234"),
        ("京AO12345", "京AO12345"),  # marker position read as O: probably D, left as read
        ("京A12345O", "京A12345O"),
        ("京AI12345", "京AI12345"),
        # letter positions are never repaired
        ("京O·12345", "京O12345"),  # O is a genuine issuing-authority code (public security)
        ("京0·12345", "京012345"),  # could be O, D or Q: not guessed
        ("京I12345", "京I12345"),
        ("VO12345", "VO12345"),  # military unit code letters are kept
        ("O12345", "O12345"),  # province unread: the leading letter may be a real O
        # look-alikes that are legal on both sides stay as read
        ("京A8B5S2", "京A8B5S2"),
        # traditional-script readings of the same character
        ("滬A·12345", "沪A12345"),
        ("粵Z·1234港", "粤Z1234港"),
        ("湘A1234學", "湘A1234学"),
        ("遼B1234掛", "辽B1234挂"),
        # blank
        ("", ""),
        ("   ", ""),
        ("\u3000", ""),
        ("·-·", ""),
    ],
)
def test_given_a_plate_spelling_when_canonicalised_then_half_width_upper_without_separators(
    text: str, expected: str
) -> None:
    assert canonical_plate_number(text) == expected


@pytest.mark.parametrize("text", [None, 12345, ["京A12345"], {"number": "京A12345"}])
def test_given_a_non_string_when_canonicalised_then_empty(text: object) -> None:
    assert canonical_plate_number(text) == ""


@pytest.mark.parametrize("text", ["沪A·0762学", "京a·o12i4", "京AO12345", "ＡＢ１２", "滬A·12345", "京AD1234O"])
def test_given_a_canonical_number_when_canonicalised_again_then_unchanged(text: str) -> None:
    once = canonical_plate_number(text)
    assert canonical_plate_number(once) == once


# ---------------------------------------------------------------------------------------------
# kind, validity, province


@pytest.mark.parametrize(
    ("number", "color", "kind", "valid", "province"),
    [
        ("京A12345", "blue", PlateKind.REGULAR, True, "京"),
        ("粤B8E6C5", "blue", PlateKind.REGULAR, True, "粤"),
        ("鲁Q12345", "yellow", PlateKind.REGULAR, True, "鲁"),
        ("京O12345", "blue", PlateKind.REGULAR, True, "京"),
        ("沪A0762学", "yellow", PlateKind.COACH, True, "沪"),
        ("鲁B1234挂", "yellow", PlateKind.TRAILER, True, "鲁"),
        ("京A0001警", "white", PlateKind.POLICE, True, "京"),
        ("粤Z1234港", "black", PlateKind.HONG_KONG, True, "粤"),
        ("粤Z1234澳", "black", PlateKind.MACAU, True, "粤"),
        ("沪A1234领", "black", PlateKind.CONSULATE, True, "沪"),
        ("使014578", "black", PlateKind.EMBASSY, True, None),
        ("京AD12345", "green", PlateKind.NEW_ENERGY_SMALL, True, "京"),
        ("沪AF12345", "green", PlateKind.NEW_ENERGY_SMALL, True, "沪"),
        ("粤BDA1234", "green", PlateKind.NEW_ENERGY_SMALL, True, "粤"),
        ("京AA12345", "green", PlateKind.NEW_ENERGY_SMALL, True, "京"),  # extended A-K marker letters
        ("苏E12345D", "yellow_green", PlateKind.NEW_ENERGY_LARGE, True, "苏"),
        ("苏E12345F", "yellowgreen", PlateKind.NEW_ENERGY_LARGE, True, "苏"),
        ("VA12345", "white", PlateKind.MILITARY, True, None),
        ("KB00001", "white", PlateKind.MILITARY, True, None),
        ("WJ京12345", "white", PlateKind.ARMED_POLICE, True, "京"),
        ("WJ粤1234X", "white", PlateKind.ARMED_POLICE, True, "粤"),
        ("WJ01警1234", "white", PlateKind.ARMED_POLICE, True, None),
        ("WJ0112345", "white", PlateKind.ARMED_POLICE, True, None),
        ("京A1234试", "white", PlateKind.OTHER, True, "京"),
        # shaped like a kind but not a valid layout
        ("014578使", "black", PlateKind.EMBASSY, False, None),  # 使 belongs in front
        ("使01457", "black", PlateKind.EMBASSY, False, None),
        ("粤A1234港", "black", PlateKind.HONG_KONG, False, "粤"),  # only 粤Z carries 港
        ("京Z1234澳", "black", PlateKind.MACAU, False, "京"),
        ("沪A12345领", "black", PlateKind.CONSULATE, False, "沪"),
        ("京A123学", "yellow", PlateKind.COACH, False, "京"),
        ("京I12345", "blue", PlateKind.REGULAR, False, "京"),  # I is never an authority code
        ("京012345", "blue", PlateKind.REGULAR, False, "京"),
        ("VO12345", "white", PlateKind.MILITARY, False, None),
        ("WJ京1234", "white", PlateKind.ARMED_POLICE, False, "京"),
        # colour decides only when the number's layout does not
        ("京A1234", "green", PlateKind.NEW_ENERGY_SMALL, False, "京"),
        ("京AO12345", "渐变绿", PlateKind.NEW_ENERGY_SMALL, False, "京"),
        ("京A123456", "黄绿", PlateKind.NEW_ENERGY_LARGE, False, "京"),
        ("京A123456", "blue", PlateKind.OTHER, False, "京"),
        ("京A1234", "blue", PlateKind.OTHER, False, "京"),
        ("京A12345", "green", PlateKind.REGULAR, True, "京"),  # a complete number wins over colour
        ("民航12345", "yellow", PlateKind.OTHER, False, None),
        ("台A12345", "blue", PlateKind.OTHER, False, None),
        ("A12345", "blue", PlateKind.OTHER, False, None),
        ("", "green", PlateKind.NEW_ENERGY_SMALL, False, None),
        ("", None, PlateKind.OTHER, False, None),
    ],
)
def test_given_a_plate_number_when_classified_then_kind_validity_and_province(
    number: str, color: str | None, kind: PlateKind, valid: bool, province: str | None
) -> None:
    assert plate_kind(number, color) == kind
    assert is_valid_plate(number) is valid
    assert province_of(number) == province


@pytest.mark.parametrize(
    "number",
    ["京ａ·１２３４５", "沪a-0762学", "京 a d 1 2 3 4 5", "苏e·12345d", "使 014·578", "wj 京 12345", "京a1234o"],
)
def test_given_a_messy_spelling_of_a_valid_plate_when_validated_then_valid(number: str) -> None:
    assert is_valid_plate(number) is True


@pytest.mark.parametrize("province", list(PROVINCES))
def test_given_each_of_the_31_provinces_when_a_regular_plate_is_validated_then_valid(province: str) -> None:
    assert is_valid_plate(f"{province}A12345") is True
    assert province_of(f"{province}A12345") == province


def test_given_the_province_table_then_it_holds_exactly_the_31_abbreviations() -> None:
    assert len(PROVINCES) == 31
    assert set(PROVINCES) == set("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼")


@pytest.mark.parametrize("number", ["港A12345", "黔A12345", "滇A12345", "蜀A12345", "X京12345"])
def test_given_a_non_plate_first_character_when_validated_then_invalid(number: str) -> None:
    assert is_valid_plate(number) is False
    assert province_of(number) is None


# ---------------------------------------------------------------------------------------------
# colours


def test_given_the_colour_table_then_codes_follow_jtt_697_7() -> None:
    assert {color.value: code for color, code in COLOR_CODES.items()} == {
        "blue": 1,
        "yellow": 2,
        "black": 3,
        "white": 4,
        "green": 5,
        "yellow_green": 93,
        "other": 9,
    }
    assert set(COLOR_CODES) == set(PlateColor)


@pytest.mark.parametrize(
    ("raw", "color"),
    [
        ("blue", PlateColor.BLUE),
        ("Blue", PlateColor.BLUE),
        (" BLUE ", PlateColor.BLUE),
        ("ｂｌｕｅ", PlateColor.BLUE),
        ("blue plate", PlateColor.BLUE),
        ("蓝", PlateColor.BLUE),
        ("蓝色", PlateColor.BLUE),
        ("蓝牌", PlateColor.BLUE),
        ("yellow", PlateColor.YELLOW),
        ("黄", PlateColor.YELLOW),
        ("黄色", PlateColor.YELLOW),
        ("黄牌", PlateColor.YELLOW),
        ("green", PlateColor.GREEN),
        ("绿", PlateColor.GREEN),
        ("绿色", PlateColor.GREEN),
        ("绿牌", PlateColor.GREEN),
        ("渐变绿", PlateColor.GREEN),
        ("渐变绿色", PlateColor.GREEN),
        ("gradient_green", PlateColor.GREEN),
        ("yellowgreen", PlateColor.YELLOW_GREEN),
        ("yellow_green", PlateColor.YELLOW_GREEN),
        ("yellow-green", PlateColor.YELLOW_GREEN),
        ("Yellow Green", PlateColor.YELLOW_GREEN),
        ("黄绿", PlateColor.YELLOW_GREEN),
        ("黄绿色", PlateColor.YELLOW_GREEN),
        ("黄绿双拼", PlateColor.YELLOW_GREEN),
        ("黄绿双拼色", PlateColor.YELLOW_GREEN),
        ("white", PlateColor.WHITE),
        ("白", PlateColor.WHITE),
        ("白色", PlateColor.WHITE),
        ("black", PlateColor.BLACK),
        ("黑", PlateColor.BLACK),
        ("黑色", PlateColor.BLACK),
        ("黑牌", PlateColor.BLACK),
        (1, PlateColor.BLUE),  # JT/T 697.7 codes
        ("2", PlateColor.YELLOW),
        (93, PlateColor.YELLOW_GREEN),
        (94, PlateColor.GREEN),  # 渐变绿 in the extended code set
        ("red", PlateColor.OTHER),
        ("紫", PlateColor.OTHER),
        ("", PlateColor.OTHER),
        (None, PlateColor.OTHER),
        (0, PlateColor.OTHER),
        (True, PlateColor.OTHER),
        (["blue"], PlateColor.OTHER),
    ],
)
def test_given_a_colour_spelling_when_normalised_then_enum(raw: object, color: PlateColor) -> None:
    assert normalize_color(raw) == color


# ---------------------------------------------------------------------------------------------
# normalize_plate


def test_given_the_documented_tianapi_plate_when_normalised_then_record_shape() -> None:
    assert normalize_plate({"number": "沪A·0762学", "color": "yellow"}) == {
        "number": "沪A0762学",
        "color": "yellow",
        "color_code": 2,
        "kind": "coach",
        "province": "沪",
        "valid": True,
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"number": "京ＡＤ·１２３４５", "color": "渐变绿"},
            {"number": "京AD12345", "color": "green", "color_code": 5, "kind": "new_energy_small"},
        ),
        (
            {"number": "苏E 12345D", "color": "yellowgreen"},
            {"number": "苏E12345D", "color": "yellow_green", "color_code": 93, "kind": "new_energy_large"},
        ),
        (
            {"number": "使014578", "color": "black"},
            {"number": "使014578", "color": "black", "color_code": 3, "kind": "embassy"},
        ),
        (
            {"number": "WJ京12345", "color": "white"},
            {"number": "WJ京12345", "color": "white", "color_code": 4, "kind": "armed_police"},
        ),
        (
            {"number": "京A12345", "color": "蓝色"},
            {"number": "京A12345", "color": "blue", "color_code": 1, "kind": "regular"},
        ),
        (
            {"number": "京A12345", "color": "purple"},
            {"number": "京A12345", "color": "other", "color_code": 9, "kind": "regular"},
        ),
        (
            {"number": "京A12345"},
            {"number": "京A12345", "color": "other", "color_code": 9, "kind": "regular"},
        ),
    ],
)
def test_given_an_upstream_plate_when_normalised_then_colour_code_and_kind(
    raw: dict[str, object], expected: dict[str, object]
) -> None:
    result = normalize_plate(raw)
    assert {key: result[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("raw", "confidence"),
    [
        ({"confidence": 0.93}, 0.93),
        ({"confidence": 1}, 1.0),
        ({"score": 87.5}, 0.875),  # a percentage: the record's confidence is 0 to 1
        ({"score": "0.8"}, 0.8),
        ({"confidence": 0.5, "score": 0.9}, 0.5),  # confidence is preferred
        ({"confidence": "high", "score": 0.7}, 0.7),
    ],
)
def test_given_a_numeric_confidence_when_normalised_then_it_is_a_float_from_0_to_1(
    raw: dict[str, object], confidence: float
) -> None:
    result = normalize_plate({"number": "京A12345", "color": "blue", **raw})
    assert result["confidence"] == confidence
    assert isinstance(result["confidence"], float)


@pytest.mark.parametrize(
    "raw",
    [{}, {"confidence": None}, {"confidence": True}, {"score": "high"}, {"score": float("nan")}, {"score": [0.9]}],
)
def test_given_no_numeric_confidence_when_normalised_then_no_confidence_key(raw: dict[str, object]) -> None:
    result = normalize_plate({"number": "京A12345", "color": "blue", **raw})
    assert "confidence" not in result
    assert set(result) == {"number", "color", "color_code", "kind", "province", "valid"}


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ([10, 20, 110, 52], [10, 20, 110, 52]),
        ([10.4, 20.6, 110.5, 52.2], [10, 21, 110, 52]),  # whole pixels
        ([[12, 20], [110, 24], [108, 52], [10, 48]], [10, 20, 110, 52]),  # corners of a rotated plate
        ([-3, 5, 40, 20], [0, 5, 40, 20]),  # a plate cut by the image's edge starts at 0
    ],
)
def test_given_a_box_when_normalised_then_the_record_has_its_rectangle(box: list, expected: list[int]) -> None:
    # Given an upstream plate with its place in the image
    # When it is normalised
    result = normalize_plate({"number": "京A12345", "color": "blue", "box": box})
    # Then the record says where it is, as [x1, y1, x2, y2]
    assert result["box"] == expected


@pytest.mark.parametrize(
    "box",
    [
        None,
        [1, 2, 3],
        [10, 20, 10, 52],
        [10, 52, 110, 20],
        ["10", 20, 110, 52],
        [True, 0, 5, 5],
        "10,20,110,52",
        [10, 20, float("nan"), 52],
        [[1, 2], [3, 4], [5]],
    ],
)
def test_given_a_box_that_is_no_rectangle_when_normalised_then_there_is_no_box(box: object) -> None:
    # Given an upstream plate whose box is not four numbers or four points, or is empty
    result = normalize_plate({"number": "京A12345", "color": "blue", "box": box})
    # Then the plate is kept, without a box
    assert result["number"] == "京A12345"
    assert "box" not in result


@pytest.mark.parametrize("raw", [{}, {"number": None}, {"number": 12345}, {"number": ""}, None, ["京A12345"]])
def test_given_a_plate_without_a_usable_number_when_normalised_then_empty_invalid_record(raw: object) -> None:
    result = normalize_plate(raw)  # type: ignore[arg-type]
    assert result["number"] == ""
    assert result["valid"] is False
    assert result["province"] is None
    assert result["kind"] == "other"
