"""Pydantic models of what the query API returns, for its OpenAPI document.

The shapes themselves are built by ``vehicle_ocr.shapes`` (the one place that writes them);
these models describe them, and a test validates real records against them so the
document cannot drift from what the API sends.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["plate", "vehicle_license"]
Status = Literal["SUCCEEDED", "FAILED"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    bucket: str
    key: str = Field(description="The decoded object key")
    version_id: str | None
    etag: str | None
    size: int | None
    sha256: str | None = Field(description="Hex SHA-256 of the image bytes; null when the object was never read")


class Plate(_Strict):
    number: str = Field(description="Canonical plate number, e.g. 沪A0762学", examples=["沪A0762学"])
    color: Literal["blue", "yellow", "green", "yellow_green", "white", "black", "other"]
    color_code: int = Field(description="JT/T 697.7 plate colour code")
    kind: str = Field(description="regular, new_energy_small, new_energy_large, coach, trailer, police, ...")
    province: str | None
    valid: bool = Field(description="Whether the number matches a GA 36 format")
    confidence: float | None = None


class Dimensions(_Strict):
    length: int
    width: int
    height: int


class VehicleLicense(_Strict):
    plate_number: str | None
    plate_valid: bool
    vehicle_type: str | None
    owner: str | None = Field(description="Personal data: never in logs, events or messages")
    address: str | None = Field(description="Personal data: never in logs, events or messages")
    use_character: str | None
    model: str | None
    vin: str | None
    vin_valid: bool = Field(description="Whether the VIN's check digit (position 9) is right")
    engine_number: str | None
    register_date: str | None = Field(description="ISO date")
    issue_date: str | None = Field(description="ISO date")
    license_issuing_authority: str | None
    document_id: str | None
    approved_passengers: int | None
    total_mass_kg: int | None
    curb_weight_kg: int | None
    ratified_load_kg: int | None
    dimensions_mm: Dimensions | None
    traction_mass_kg: int | None
    remarks: str | None
    inspection_record: str | None
    raw: dict[str, Any] = Field(description="The upstream's answer as it came")


class RecordError(_Strict):
    code: str = Field(description="Upstream code unchanged (e.g. 150) or a pipeline code (e.g. IMAGE_CORRUPT)")
    source: Literal["upstream", "pipeline"]
    provider: str | None
    message: str
    retryable: bool


class FallbackStep(_Strict):
    provider: str = Field(description="A provider of the kind's chain that could not answer")
    code: str = Field(description="Why: its code (e.g. 150, quota spent) or a pipeline code")


class Record(_Strict):
    id: str
    kind: Kind | None = Field(description="null only for objects outside both prefixes (UNROUTABLE)")
    status: Status
    source: Source
    provider: str | None
    created_at: str = Field(description="UTC, ISO 8601, seconds")
    plates: list[Plate] | None = Field(default=None, description="Only for kind=plate and SUCCEEDED")
    vehicle_license: VehicleLicense | None = Field(default=None, description="Only for kind=vehicle_license")
    error: RecordError | None = Field(default=None, description="Only for FAILED")
    reused: bool | None = Field(
        default=None, description="SUCCEEDED only: the answer was reused from identical image bytes, not paid again"
    )
    upstream_attempts: int | None = Field(
        default=None, description="Requests sent to the provider for this upload, over every attempt (0: reused)"
    )
    possibly_billed: int | None = Field(
        default=None,
        description="Of those, requests that got no answer (timeout, dropped connection) and may have been billed",
    )
    truncated: dict[str, int] | None = Field(
        default=None, description='What was cut from the answer and how many there were, e.g. {"plates": 150}'
    )
    fallback: list[FallbackStep] | None = Field(
        default=None, description="Providers tried before the one that answered (PLATE_PROVIDERS chains), in order"
    )
    raw_answer: Any = Field(
        default=None,
        description="FAILED with UPSTREAM_BAD_RESPONSE only: the unusable answer, capped, for the operator",
    )


class RecordPage(_Strict):
    items: list[Record]
    cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class ApiErrorDetail(_Strict):
    code: str
    message: str


class ApiError(_Strict):
    error: ApiErrorDetail
