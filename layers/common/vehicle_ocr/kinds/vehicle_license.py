"""The ``vehicle_license`` kind: the 行驶证, whose front names the owner and their address."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vehicle_ocr.bounded import within_budget
from vehicle_ocr.kinds.base import KindSpec, register_kind
from vehicle_ocr.normalize.vehicle_license import normalize_vehicle_license

if TYPE_CHECKING:
    from vehicle_ocr.shapes import VehicleLicense

# What a record keeps of the upstream's raw answer.
RAW_BUDGET_BYTES = 32_768


def normalize(answer: Any) -> tuple[VehicleLicense, None]:
    licence = normalize_vehicle_license(answer.payload)
    licence["raw"] = within_budget(answer.payload, RAW_BUDGET_BYTES)
    return licence, None


VEHICLE_LICENSE = register_kind(
    KindSpec(
        name="vehicle_license",
        settings_name="LICENSE",
        default_prefix="vehicle-licenses/",
        default_providers=("apizero",),
        record_field="vehicle_license",
        detail_type="Vehicle License Recognized",
        normalize=normalize,
        # Plate and VIN identify the vehicle; owner and address stay behind the IAM-authenticated API.
        event_detail=lambda licence: {"plate_number": licence.get("plate_number"), "vin": licence.get("vin")},
        plate_numbers=lambda licence: [licence.get("plate_number")],
        index_attributes=("vin",),
        index_values=lambda licence: {"vin": licence.get("vin")},
        summary=lambda licence: f"{licence.get('plate_number') or '-'}  VIN {licence.get('vin') or '-'}",
        personal_fields=("owner", "address"),
        one_vehicle_per_record=True,
    )
)
