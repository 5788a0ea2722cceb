"""The shapes docs/contract.md fixes for the outside world: record, failure message, success event.

Everything a consumer can see is typed and built here and nowhere else, so a change to the
contract is a change to this module and its tests. The record's types below are the one model
of it: the normalisers and builders return them (mypy checks every writer against them), and
``vehicle_ocr.api_schema`` turns the same types into the query API's OpenAPI document (pydantic
reads each TypedDict, and the docstring under a field is its description). They cost nothing at
run time: pydantic is imported by the query function only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

# typing_extensions' TypedDict: pydantic reads only this one on Python < 3.12 (Lambda runs 3.12, tests 3.11).
from typing_extensions import NotRequired, TypedDict  # noqa: UP035

from vehicle_ocr.errors import PipelineError, RecognitionError
from vehicle_ocr.kinds import kind_spec

SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
STATUSES = (SUCCEEDED, FAILED)

EVENT_SOURCE = "vehicle-ocr"
FAILURE_SCHEMA_VERSION = 1

# ---------------------------------------------------------------- the record's types
Kind = Literal["plate", "vehicle_license"]
Status = Literal["SUCCEEDED", "FAILED"]
PlateColorName = Literal["blue", "yellow", "green", "yellow_green", "white", "black", "other"]


class Source(TypedDict):
    bucket: str
    key: str
    """The decoded object key"""
    version_id: str | None
    etag: str | None
    size: int | None
    sha256: str | None
    """Hex SHA-256 of the image bytes; null when the object was never read"""


class Plate(TypedDict):
    number: str
    """Canonical plate number, e.g. 沪A0762学"""
    color: PlateColorName
    color_code: int
    """JT/T 697.7 plate colour code"""
    kind: str
    """regular, new_energy_small, new_energy_large, coach, trailer, police, ..."""
    province: str | None
    valid: bool
    """Whether the number matches a GA 36 format"""
    confidence: NotRequired[float | None]
    """0 to 1, when the provider gives one"""
    box: NotRequired[list[int] | None]
    """The plate in the image, [x1, y1, x2, y2] in pixels, when the provider gives it"""


class Dimensions(TypedDict):
    length: int
    width: int
    height: int


class VehicleLicense(TypedDict):
    plate_number: str | None
    plate_valid: bool
    vehicle_type: str | None
    owner: str | None
    """Personal data: never in logs, events or messages"""
    address: str | None
    """Personal data: never in logs, events or messages"""
    use_character: str | None
    model: str | None
    vin: str | None
    vin_valid: bool
    """Whether the VIN's check digit (position 9) is right"""
    engine_number: str | None
    register_date: str | None
    """ISO date"""
    issue_date: str | None
    """ISO date"""
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
    raw: NotRequired[dict[str, Any]]
    """The upstream's answer as it came (the kind adds it to every record; the normaliser alone does not)"""


class RecordError(TypedDict):
    code: str
    """Upstream code unchanged (e.g. 150) or a pipeline code (e.g. IMAGE_CORRUPT)"""
    source: Literal["upstream", "pipeline"]
    provider: str | None
    message: str
    retryable: bool


class FallbackStep(TypedDict):
    provider: str
    """A provider of the kind's chain that could not answer"""
    code: str
    """Why: its code (e.g. 150, quota spent) or a pipeline code"""


class Record(TypedDict):
    id: str
    kind: Kind | None
    """null only for objects outside both prefixes (UNROUTABLE)"""
    status: Status
    source: Source
    provider: str | None
    created_at: str
    """UTC, ISO 8601, seconds"""
    plates: NotRequired[list[Plate] | None]
    """Only for kind=plate and SUCCEEDED"""
    vehicle_license: NotRequired[VehicleLicense | None]
    """Only for kind=vehicle_license and SUCCEEDED"""
    error: NotRequired[RecordError | None]
    """Only for FAILED"""
    reused: NotRequired[bool | None]
    """SUCCEEDED only: the answer was reused from identical image bytes, not paid again"""
    upstream_attempts: NotRequired[int | None]
    """Requests sent to the provider for this upload, over every attempt (0: reused)"""
    possibly_billed: NotRequired[int | None]
    """Of those, requests that got no answer (timeout, dropped connection) and may have been billed"""
    truncated: NotRequired[dict[str, int] | None]
    """What was cut from the answer and how many there were, e.g. {"plates": 150}"""
    fallback: NotRequired[list[FallbackStep] | None]
    """Providers tried before the one that answered (PLATE_PROVIDERS chains), in order"""
    raw_answer: NotRequired[Any]
    """FAILED with UPSTREAM_BAD_RESPONSE only: the unusable answer, capped, for the operator"""


# ---------------------------------------------------------------- building them


@dataclass(frozen=True)
class UploadedObject:
    """One object an S3 event told us about.  ``key`` is already URL-decoded."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_time: str | None = None

    @property
    def is_folder_marker(self) -> bool:
        # The console's "Create folder" writes a zero-byte object whose key ends in "/".
        return self.key.endswith("/") and not self.size

    @property
    def record_id(self) -> str:
        return record_id(self.bucket, self.key, self.version_id, self.etag)


def record_id(bucket: str, key: str, version_id: str | None, etag: str | None) -> str:
    """Deterministic: the same object version always maps to the same record.

    A version id identifies the bytes in a versioned bucket; without one the ETag does.
    """
    revision = f"v:{version_id}" if version_id else f"e:{(etag or '').strip(chr(34))}"
    digest = hashlib.sha256("\x1f".join((bucket, key, revision)).encode("utf-8")).hexdigest()
    return digest[:32]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_of(obj: UploadedObject, *, size: int | None = None, sha256: str | None = None) -> Source:
    return {
        "bucket": obj.bucket,
        "key": obj.key,
        "version_id": obj.version_id,
        "etag": (obj.etag or "").strip('"') or None,
        "size": obj.size if size is None else size,
        "sha256": sha256,
    }


def succeeded_record(
    obj: UploadedObject,
    *,
    kind: str,
    provider: str,
    created_at: datetime,
    source: Source,
    result: Any,
    reused: bool = False,
) -> Record:
    """A SUCCEEDED record: ``result`` goes in the kind's field (the plate list, the vehicle-licence object).

    ``reused`` says the answer was not paid for by this upload: the same image bytes had been
    recognised before (content dedupe) or a retry found the answer an earlier attempt paid for.
    """
    record = _base(obj, kind=kind, status=SUCCEEDED, provider=provider, created_at=created_at, source=source)
    # The kind's declaration names the field (plates, vehicle_license): not a literal key mypy can check.
    cast(dict[str, Any], record)[kind_spec(kind).record_field] = result
    record["reused"] = reused
    return record


def failed_record(
    obj: UploadedObject,
    *,
    kind: str | None,
    provider: str | None,
    created_at: datetime,
    source: Source,
    error: RecognitionError,
) -> Record:
    record = _base(obj, kind=kind, status=FAILED, provider=provider, created_at=created_at, source=source)
    record["error"] = error.as_error()
    return record


def _base(
    obj: UploadedObject, *, kind: Any, status: Status, provider: str | None, created_at: datetime, source: Source
) -> Record:
    return {
        "id": obj.record_id,
        "kind": kind,
        "status": status,
        "source": source,
        "provider": provider,
        "created_at": iso_seconds(created_at),
    }


def failure_message(record: Mapping[str, Any], *, attempts: int, failed_at: datetime) -> dict[str, Any]:
    """The SQS failure message: identifies the object and says why; no personal data by construction."""
    source = record["source"]
    return {
        "schema_version": FAILURE_SCHEMA_VERSION,
        "id": record["id"],
        "kind": record["kind"],
        "bucket": source["bucket"],
        "key": source["key"],
        "version_id": source["version_id"],
        "etag": source["etag"],
        "error": dict(record["error"]),
        "attempts": attempts,
        "failed_at": iso_seconds(failed_at),
    }


def malformed_event_message(record: Any, reason: str, *, failed_at: datetime) -> dict[str, Any]:
    """A failure message for an event record that names no object: nothing else could carry it."""
    try:
        s3 = record["s3"]
        bucket, key = s3.get("bucket", {}).get("name"), s3.get("object", {}).get("key")
    except (AttributeError, KeyError, TypeError):
        bucket = key = None
    fingerprint = hashlib.sha256(repr(record).encode("utf-8")).hexdigest()[:32]
    return {
        "schema_version": FAILURE_SCHEMA_VERSION,
        "id": fingerprint,
        "kind": None,
        "bucket": bucket if isinstance(bucket, str) else None,
        "key": key if isinstance(key, str) else None,
        "version_id": None,
        "etag": None,
        "error": PipelineError("pipeline", "MALFORMED_EVENT", reason).as_error(),
        "attempts": 1,
        "failed_at": iso_seconds(failed_at),
    }


def unexpected_bucket_message(obj: UploadedObject, *, failed_at: datetime) -> dict[str, Any]:
    """A failure message for an object in a bucket this deployment does not read (no record is written)."""
    return {
        "schema_version": FAILURE_SCHEMA_VERSION,
        "id": obj.record_id,
        "kind": None,
        "bucket": obj.bucket,
        "key": obj.key,
        "version_id": obj.version_id,
        "etag": (obj.etag or "").strip('"') or None,
        "error": PipelineError("pipeline", "UNEXPECTED_BUCKET").as_error(),
        "attempts": 1,
        "failed_at": iso_seconds(failed_at),
    }


def failure_message_attributes(message: dict[str, Any]) -> dict[str, dict[str, str]]:
    """SQS message attributes so consumers can filter without parsing the body."""
    return {
        "error_code": {"DataType": "String", "StringValue": message["error"]["code"]},
        # SQS rejects empty attribute values; an unroutable object has no kind.
        "kind": {"DataType": "String", "StringValue": message["kind"] or "unknown"},
        "retryable": {"DataType": "String", "StringValue": "true" if message["error"]["retryable"] else "false"},
    }


def detail_type(record: Mapping[str, Any]) -> str:
    return kind_spec(record["kind"]).detail_type


def success_event_detail(record: Mapping[str, Any]) -> dict[str, Any]:
    """EventBridge detail: identifiers only.  Owner and address stay behind the IAM-authenticated API."""
    spec = kind_spec(record["kind"])
    return {"id": record["id"], "kind": record["kind"], "source": record["source"]} | spec.event_detail(
        record[spec.record_field]
    )


def plate_numbers_named(record: Mapping[str, Any]) -> list[str]:
    """Every plate number a SUCCEEDED record names (plate sightings and a licence's plate)."""
    if record["status"] != SUCCEEDED:
        return []
    spec = kind_spec(record["kind"])
    return sorted({number for number in spec.plate_numbers(record[spec.record_field]) if number})


def index_values(record: Mapping[str, Any]) -> dict[str, str]:
    """Other values a SUCCEEDED record is found by (a VIN), by index attribute."""
    if record["status"] != SUCCEEDED:
        return {}
    spec = kind_spec(record["kind"])
    return {name: value for name, value in spec.index_values(record[spec.record_field]).items() if value}
