"""The ``plate`` kind: licence plates photographed in the street, at gates and in car parks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vehicle_ocr.errors import PipelineError
from vehicle_ocr.kinds.base import KindSpec, register_kind
from vehicle_ocr.normalize.plates import normalize_plate

if TYPE_CHECKING:
    from vehicle_ocr.shapes import Plate

# More plates than this in one image is not a real scene: the record keeps the first ones and says so.
MAX_PLATES_PER_RECORD = 20


def normalize(answer: Any) -> tuple[list[Plate], dict[str, int] | None]:
    plates = [normalize_plate(raw) for raw in answer.payload]
    plates = [plate for plate in plates if plate["number"]]
    if not plates:
        raise PipelineError(answer.provider, "NO_PLATE_FOUND")
    if len(plates) > MAX_PLATES_PER_RECORD:
        return plates[:MAX_PLATES_PER_RECORD], {"plates": len(plates)}
    return plates, None


def plate_numbers(plates: list[Plate]) -> list[str]:
    return [plate["number"] for plate in plates]


def summary(plates: list[Plate]) -> str:
    return ", ".join(f"{plate['number']} ({plate['color']}, {plate['kind']})" for plate in plates)


PLATE = register_kind(
    KindSpec(
        name="plate",
        settings_name="PLATE",
        default_prefix="plates/",
        default_providers=("tianapi",),
        record_field="plates",
        detail_type="Plate Recognized",
        normalize=normalize,
        event_detail=lambda plates: {"plates": plate_numbers(plates)},
        plate_numbers=plate_numbers,
        summary=summary,
    )
)
