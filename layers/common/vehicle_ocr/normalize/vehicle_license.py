"""Vehicle licence (行驶证) fields from the apizero ``data`` object, in the record's shape.

The upstream returns 20 string fields, any of which may be empty or missing.  The output
has a fixed key set so consumers never test for presence: empty or unparseable values are
None.  The function is total: unexpected types (numbers, lists, None) never raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vehicle_ocr.bounded import cut_text

if TYPE_CHECKING:
    from vehicle_ocr.shapes import VehicleLicense  # the record's types (shapes imports the normalisers)
from vehicle_ocr.normalize.plates import MAX_NUMBER_CHARS, canonical_plate_number, is_valid_plate
from vehicle_ocr.normalize.values import (
    MASS_UNITS,
    PERSON_UNITS,
    parse_date,
    parse_dimensions,
    parse_int,
    to_half_width,
)
from vehicle_ocr.normalize.vin import normalize_vin, vin_check_digit_valid

# A licence's longest field (the address) is well under this; longer text is cut and marked.
MAX_TEXT_CHARS = 256

# The 20 fields of apizero ocr-vehicle-license, in its documented order.
VEHICLE_LICENSE_FIELDS: tuple[str, ...] = (
    "plate_number",
    "vehicle_type",
    "owner",
    "address",
    "use_character",
    "model",
    "vin",
    "engine_number",
    "register_date",
    "issue_date",
    "license_issuing_authority",
    "document_id",
    "approved_passengers_capacity",
    "total_mass",
    "curb_weight",
    "ratified_load_capacity",
    "gabarite",
    "traction_mass",
    "remarks",
    "inspection_record",
)


def _text(value: Any, limit: int = MAX_TEXT_CHARS) -> str | None:
    """Stripped text, cut past ``limit``; numbers become their decimal text; anything else, or blank, is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    return cut_text(value.strip(), limit) or None


def _code(value: Any) -> str | None:
    """An identifier printed in Latin letters and digits: half-width, upper case, stripped."""
    text = _text(value)
    if text is None:
        return None
    return cut_text(to_half_width(text).strip().upper(), MAX_NUMBER_CHARS) or None


def normalize_vehicle_license(data: Mapping[str, Any]) -> VehicleLicense:
    """The normalised 行驶证 record for one upstream ``data`` object (see module docstring)."""
    if not isinstance(data, Mapping):
        data = {}
    plate_number = canonical_plate_number(data.get("plate_number")) or None
    if plate_number is not None:
        plate_number = cut_text(plate_number, MAX_NUMBER_CHARS)
    vin = normalize_vin(data.get("vin"))
    if vin is not None:
        vin = cut_text(vin, MAX_NUMBER_CHARS)  # a VIN has 17 characters: a longer reading is cut and marked
    result: VehicleLicense = {
        "plate_number": plate_number,
        "plate_valid": plate_number is not None and is_valid_plate(plate_number),
        "vehicle_type": _text(data.get("vehicle_type")),
        "owner": _text(data.get("owner")),
        "address": _text(data.get("address")),
        "use_character": _text(data.get("use_character")),
        "model": _text(data.get("model")),
        "vin": vin,
        # A flag, not a rejection: a misread VIN is still worth storing for a human to check.
        "vin_valid": vin is not None and vin_check_digit_valid(vin),
        "engine_number": _code(data.get("engine_number")),
        "register_date": parse_date(data.get("register_date")),
        "issue_date": parse_date(data.get("issue_date")),
        "license_issuing_authority": _text(data.get("license_issuing_authority")),
        "document_id": _code(data.get("document_id")),
        "approved_passengers": parse_int(data.get("approved_passengers_capacity"), PERSON_UNITS),
        "total_mass_kg": parse_int(data.get("total_mass"), MASS_UNITS),
        "curb_weight_kg": parse_int(data.get("curb_weight"), MASS_UNITS),
        "ratified_load_kg": parse_int(data.get("ratified_load_capacity"), MASS_UNITS),
        "dimensions_mm": parse_dimensions(data.get("gabarite")),
        "traction_mass_kg": parse_int(data.get("traction_mass"), MASS_UNITS),
        "remarks": _text(data.get("remarks")),
        "inspection_record": _text(data.get("inspection_record")),
    }
    return result
