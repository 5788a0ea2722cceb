"""Turn an S3 notification into the objects it announces."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from vehicle_ocr.shapes import UploadedObject

# Top-level key that `vehicle-ocr redrive` adds to the S3-shaped events it sends.
REDRIVE_MARKER = "vehicleOcrRedrive"


@dataclass(frozen=True)
class MalformedRecord:
    """An event record we could not use, and why (told by its structure, never its values)."""

    record: Any  # the raw event record (or the whole event), for the failure message
    reason: str  # what is missing, described by structure only, never by value


@dataclass
class ParsedEvent:
    """What an invocation's event asks for: the uploads to handle, and what was left out."""

    objects: list[UploadedObject] = field(default_factory=list)
    malformed: list[MalformedRecord] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # event names we do not act on (deletes, test events)
    redrive: bool = False  # `vehicle-ocr redrive` re-runs FAILED uploads: such events may replace a FAILED record
    # Which redrive (the same for Lambda's retries of one redrive event): its attempts are counted once.
    redrive_id: str | None = None


def parse_s3_event(event: Any) -> ParsedEvent:
    """Read the records' fields directly, as S3's event notification documents them.

    Not Powertools' ``S3Event`` data class: importing it imports every event data class Powertools has,
    tens of milliseconds of every cold start for six fields; and not its parser model, which moto's
    events do not satisfy. Keys arrive URL-encoded with ``+`` for spaces (S3 writes a literal ``+`` as ``%2B``), so
    ``unquote_plus`` is the right decoding.
    """
    parsed = ParsedEvent()
    if not isinstance(event, dict):
        parsed.malformed.append(MalformedRecord(None, f"event is a {type(event).__name__}, not an object"))
        return parsed
    if event.get("Event") == "s3:TestEvent":  # S3 sends this once when the notification is configured
        parsed.ignored.append("s3:TestEvent")
        return parsed
    marker = event.get(REDRIVE_MARKER)
    parsed.redrive = bool(marker)
    parsed.redrive_id = json.dumps(marker, sort_keys=True, default=str) if marker else None
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        parsed.malformed.append(MalformedRecord(None, f"event has no Records list: {_outline(event)}"))
        return parsed
    for index, record in enumerate(records):
        try:
            event_name = str(record.get("eventName") or "")
            if event_name and not event_name.startswith("ObjectCreated:"):
                parsed.ignored.append(event_name)
                continue
            s3 = record["s3"]
            obj = s3["object"]
            size = obj.get("size")
            parsed.objects.append(
                UploadedObject(
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(obj["key"]),
                    size=int(size) if size is not None else None,
                    etag=obj.get("eTag") or None,
                    version_id=obj.get("versionId") or None,
                    sequencer=obj.get("sequencer"),
                    event_time=record.get("eventTime"),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            reason = f"record {index}: {type(exc).__name__} {exc} in {_outline(record)}"
            parsed.malformed.append(MalformedRecord(record, reason))
    return parsed


def _outline(record: Any) -> str:
    """The record's structure without its values, for an error message that cannot leak data."""

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: shape(item) for name, item in value.items()}
        return type(value).__name__

    return json.dumps(shape(record), sort_keys=True)[:500]
