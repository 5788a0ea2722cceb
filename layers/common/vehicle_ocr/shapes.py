"""The shapes docs/contract.md fixes for the outside world: record, failure message, success event.

Everything a consumer can see is built here and nowhere else, so a change to the contract
is a change to this module and its tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vehicle_ocr.errors import PipelineError, RecognitionError
from vehicle_ocr.kinds import kind_spec

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
STATUSES = (SUCCEEDED, FAILED)

EVENT_SOURCE = "vehicle-ocr"
FAILURE_SCHEMA_VERSION = 1


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


def source_of(obj: UploadedObject, *, size: int | None = None, sha256: str | None = None) -> dict[str, Any]:
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
    source: dict[str, Any],
    result: Any,
    reused: bool = False,
) -> dict[str, Any]:
    """A SUCCEEDED record: ``result`` goes in the kind's field (the plate list, the vehicle-licence object).

    ``reused`` says the answer was not paid for by this upload: the same image bytes had been
    recognised before (content dedupe) or a retry found the answer an earlier attempt paid for.
    """
    record = _base(obj, kind=kind, status=SUCCEEDED, provider=provider, created_at=created_at, source=source)
    record[kind_spec(kind).record_field] = result
    record["reused"] = reused
    return record


def failed_record(
    obj: UploadedObject,
    *,
    kind: str | None,
    provider: str | None,
    created_at: datetime,
    source: dict[str, Any],
    error: RecognitionError,
) -> dict[str, Any]:
    record = _base(obj, kind=kind, status=FAILED, provider=provider, created_at=created_at, source=source)
    record["error"] = error.as_error()
    return record


def _base(obj, *, kind, status, provider, created_at, source) -> dict[str, Any]:
    return {
        "id": obj.record_id,
        "kind": kind,
        "status": status,
        "source": source,
        "provider": provider,
        "created_at": iso_seconds(created_at),
    }


def failure_message(record: dict[str, Any], *, attempts: int, failed_at: datetime) -> dict[str, Any]:
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


def detail_type(record: dict[str, Any]) -> str:
    return kind_spec(record["kind"]).detail_type


def success_event_detail(record: dict[str, Any]) -> dict[str, Any]:
    """EventBridge detail: identifiers only.  Owner and address stay behind the IAM-authenticated API."""
    spec = kind_spec(record["kind"])
    return {"id": record["id"], "kind": record["kind"], "source": record["source"]} | spec.event_detail(
        record[spec.record_field]
    )


def plate_numbers_named(record: dict[str, Any]) -> list[str]:
    """Every plate number a SUCCEEDED record names (plate sightings and a licence's plate)."""
    if record["status"] != SUCCEEDED:
        return []
    spec = kind_spec(record["kind"])
    return sorted({number for number in spec.plate_numbers(record[spec.record_field]) if number})


def index_values(record: dict[str, Any]) -> dict[str, str]:
    """Other values a SUCCEEDED record is found by (a VIN), by index attribute."""
    if record["status"] != SUCCEEDED:
        return {}
    spec = kind_spec(record["kind"])
    return {name: value for name, value in spec.index_values(record[spec.record_field]).items() if value}
