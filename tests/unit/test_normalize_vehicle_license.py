"""The 20 apizero 行驶证 fields, normalised into the record's fixed shape."""

from __future__ import annotations

from typing import Any

import pytest

from vehicle_ocr.normalize.vehicle_license import VEHICLE_LICENSE_FIELDS, normalize_vehicle_license

# The response example of apizero ocr-vehicle-license (shared/seeds), verbatim.
DOCUMENTED_EXAMPLE: dict[str, str] = {
    "plate_number": "沪A12345",
    "vehicle_type": "小型轿车",
    "owner": "张三",
    "address": "上海市XX路XX号",
    "use_character": "非营运",
    "model": "丰田CAMRY",
    "vin": "LSXXXXXXXXXXXXXXXXX",
    "engine_number": "4A123456",
    "register_date": "2020-06-01",
    "issue_date": "2020-06-05",
    "license_issuing_authority": "上海市公安局交通警察总队",
    "document_id": "SHXXXXXXXXXX",
    "approved_passengers_capacity": "5人",
    "total_mass": "1945",
    "curb_weight": "1495",
    "ratified_load_capacity": "",
    "gabarite": "4885x1840x1455",
    "traction_mass": "",
    "remarks": "",
    "inspection_record": "2022 2024",
}

OUTPUT_KEYS = (
    "plate_number",
    "plate_valid",
    "vehicle_type",
    "owner",
    "address",
    "use_character",
    "model",
    "vin",
    "vin_valid",
    "engine_number",
    "register_date",
    "issue_date",
    "license_issuing_authority",
    "document_id",
    "approved_passengers",
    "total_mass_kg",
    "curb_weight_kg",
    "ratified_load_kg",
    "dimensions_mm",
    "traction_mass_kg",
    "remarks",
    "inspection_record",
)


def test_given_the_upstream_field_list_then_it_names_the_20_documented_fields_in_order() -> None:
    assert tuple(DOCUMENTED_EXAMPLE) == VEHICLE_LICENSE_FIELDS
    assert len(VEHICLE_LICENSE_FIELDS) == 20


def test_given_the_documented_example_when_normalised_then_every_field_is_typed() -> None:
    assert normalize_vehicle_license(DOCUMENTED_EXAMPLE) == {
        "plate_number": "沪A12345",
        "plate_valid": True,
        "vehicle_type": "小型轿车",
        "owner": "张三",
        "address": "上海市XX路XX号",
        "use_character": "非营运",
        "model": "丰田CAMRY",
        "vin": "LSXXXXXXXXXXXXXXXXX",
        "vin_valid": False,  # the placeholder has 19 characters: kept, but flagged
        "engine_number": "4A123456",
        "register_date": "2020-06-01",
        "issue_date": "2020-06-05",
        "license_issuing_authority": "上海市公安局交通警察总队",
        "document_id": "SHXXXXXXXXXX",
        "approved_passengers": 5,
        "total_mass_kg": 1945,
        "curb_weight_kg": 1495,
        "ratified_load_kg": None,
        "dimensions_mm": {"length": 4885, "width": 1840, "height": 1455},
        "traction_mass_kg": None,
        "remarks": None,
        "inspection_record": "2022 2024",
    }


@pytest.mark.parametrize(
    "data",
    [
        {},
        dict.fromkeys(VEHICLE_LICENSE_FIELDS, ""),
        dict.fromkeys(VEHICLE_LICENSE_FIELDS, "   "),
        dict.fromkeys(VEHICLE_LICENSE_FIELDS, "\u3000"),
        dict.fromkeys(VEHICLE_LICENSE_FIELDS),
        {key: [] for key in VEHICLE_LICENSE_FIELDS},
        {key: {} for key in VEHICLE_LICENSE_FIELDS},
        dict.fromkeys(VEHICLE_LICENSE_FIELDS, True),
        None,
        [],
        "沪A12345",
        42,
    ],
    ids=[
        "missing",
        "empty",
        "spaces",
        "ideographic-space",
        "nulls",
        "lists",
        "dicts",
        "bools",
        "None",
        "list",
        "str",
        "int",
    ],
)
def test_given_no_usable_values_when_normalised_then_all_none_and_flags_false(data: Any) -> None:
    result = normalize_vehicle_license(data)
    assert tuple(result) == OUTPUT_KEYS
    flags = {"plate_valid", "vin_valid"}
    assert {key: result[key] for key in flags} == {"plate_valid": False, "vin_valid": False}
    assert {key: value for key, value in result.items() if key not in flags} == dict.fromkeys(set(OUTPUT_KEYS) - flags)


@pytest.mark.parametrize(
    ("field", "raw", "key", "expected"),
    [
        # plate
        ("plate_number", "沪A·12345", "plate_number", "沪A12345"),
        ("plate_number", "沪ａ１２３４５", "plate_number", "沪A12345"),
        ("plate_number", " 京AD12345 ", "plate_number", "京AD12345"),
        ("plate_number", "京A1234O", "plate_number", "京A12340"),
        # VIN
        ("vin", " lsvau218xn2183294 ", "vin", "LSVAU218XN2183294"),
        ("vin", "LSVAU218XN2I83294", "vin", "LSVAU218XN2183294"),
        ("vin", "ＬＳＶＡＵ２１８ＸＮ２１８３２９４", "vin", "LSVAU218XN2183294"),
        ("vin", "LSVAU218XN2183295", "vin", "LSVAU218XN2183295"),  # wrong check digit: kept
        # engine number and document id: codes, folded to half-width upper case
        ("engine_number", " 4a123456 ", "engine_number", "4A123456"),
        ("engine_number", "４Ａ１２３４５６", "engine_number", "4A123456"),
        ("engine_number", 123456, "engine_number", "123456"),
        ("document_id", " 310000123456 ", "document_id", "310000123456"),
        ("document_id", "ｓｈ１２３", "document_id", "SH123"),
        # dates
        ("register_date", "2020年6月1日", "register_date", "2020-06-01"),
        ("register_date", "2020/06/01", "register_date", "2020-06-01"),
        ("register_date", "20200601", "register_date", "2020-06-01"),
        ("register_date", "2020-02-30", "register_date", None),
        ("issue_date", "２０２０．０６．０５", "issue_date", "2020-06-05"),
        ("issue_date", "--", "issue_date", None),
        # counts and masses
        ("approved_passengers_capacity", "5人", "approved_passengers", 5),
        ("approved_passengers_capacity", "5", "approved_passengers", 5),
        ("approved_passengers_capacity", 7, "approved_passengers", 7),
        ("approved_passengers_capacity", "5kg", "approved_passengers", None),
        ("total_mass", "1,945kg", "total_mass_kg", 1945),
        ("total_mass", "１９４５ ｋｇ", "total_mass_kg", 1945),
        ("total_mass", 1945, "total_mass_kg", 1945),
        ("total_mass", "5人", "total_mass_kg", None),
        ("curb_weight", "1495.0", "curb_weight_kg", 1495),
        ("curb_weight", "--", "curb_weight_kg", None),
        ("ratified_load_capacity", "1,000 KG", "ratified_load_kg", 1000),
        ("ratified_load_capacity", "-", "ratified_load_kg", None),
        ("traction_mass", "3500", "traction_mass_kg", 3500),
        ("traction_mass", "3500.5", "traction_mass_kg", None),
        # dimensions
        ("gabarite", "4885×1840×1455mm", "dimensions_mm", {"length": 4885, "width": 1840, "height": 1455}),
        ("gabarite", "４８８５＊１８４０＊１４５５", "dimensions_mm", {"length": 4885, "width": 1840, "height": 1455}),
        ("gabarite", "4885x1840", "dimensions_mm", None),
        # free text: stripped, never case- or width-folded
        ("owner", "  张三 ", "owner", "张三"),
        ("owner", "\u3000张三\u3000", "owner", "张三"),
        ("owner", 12345, "owner", "12345"),
        ("model", "丰田ｃａｍｒｙ", "model", "丰田ｃａｍｒｙ"),
        ("inspection_record", "  2022 2024 ", "inspection_record", "2022 2024"),
        ("inspection_record", "检验有效期至2024年06月沪A", "inspection_record", "检验有效期至2024年06月沪A"),
        ("remarks", " 无 ", "remarks", "无"),
        ("vehicle_type", "小型普通客车\n", "vehicle_type", "小型普通客车"),
        ("use_character", "营转非", "use_character", "营转非"),
        (
            "license_issuing_authority",
            "  北京市公安局公安交通管理局 ",
            "license_issuing_authority",
            "北京市公安局公安交通管理局",
        ),
        ("address", ["上海"], "address", None),
    ],
)
def test_given_one_real_world_field_value_when_normalised_then_that_output_key_is_clean(
    field: str, raw: Any, key: str, expected: Any
) -> None:
    data = {**DOCUMENTED_EXAMPLE, field: raw}
    assert normalize_vehicle_license(data)[key] == expected


@pytest.mark.parametrize(
    ("vin", "valid"),
    [
        ("LSVAU218XN2183294", True),
        ("lsvau218xn2183294", True),
        ("LSVAU218XN2I83294", True),  # I repaired to 1, then the check passes
        ("1M8GDM9AXKP042788", True),
        ("LSVAU2180N2183294", False),  # check digit corrupted
        ("LSVAU218XN218329", False),  # 16 characters
        ("", False),
        (None, False),
    ],
)
def test_given_a_vin_when_normalised_then_vin_valid_flags_the_check_digit(vin: Any, valid: bool) -> None:
    assert normalize_vehicle_license({**DOCUMENTED_EXAMPLE, "vin": vin})["vin_valid"] is valid


@pytest.mark.parametrize(
    ("plate", "valid"),
    [("沪A12345", True), ("沪a·12345", True), ("沪AD12345", True), ("沪A1234", False), ("A12345", False), ("", False)],
)
def test_given_a_plate_number_when_normalised_then_plate_valid_follows_ga36(plate: str, valid: bool) -> None:
    assert normalize_vehicle_license({**DOCUMENTED_EXAMPLE, "plate_number": plate})["plate_valid"] is valid


def test_given_extra_upstream_fields_when_normalised_then_they_are_not_passed_through() -> None:
    result = normalize_vehicle_license({**DOCUMENTED_EXAMPLE, "face": "front", "owner_id_number": "310..."})
    assert tuple(result) == OUTPUT_KEYS


def test_given_an_input_mapping_when_normalised_then_it_is_not_mutated() -> None:
    data = dict(DOCUMENTED_EXAMPLE)
    normalize_vehicle_license(data)
    assert data == DOCUMENTED_EXAMPLE
