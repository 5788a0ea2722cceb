"""Erasure markers: a subject erased by `vehicle-ocr erase` stays erased.

An upload that was already under way when its subject was erased (a recognition in flight, a
Lambda retry hours later) must not write its record back. Before anything else, the erasure
writes a marker (a tombstone) in the results table for every object version it removes and for
the plate numbers and VINs it erases; the pipeline's record write is conditional on no marker
covering the record (a ConditionCheck in the same transaction, ``storage.ResultsStore.create``).

A marker covers uploads made before the erasure started (S3's event time), so the same bytes
uploaded afterwards are recognised as a new upload. It holds no plate number or VIN, only a
digest of one, and none of the attributes an index is keyed on (invisible to the query API):

    pk = "ERASED#" + sha256("<what>:<value>"), sk = "ERASED", erased_at (epoch ms), expires_at (TTL)

When a marker stops a record, the upload is noted under the marker (``sk = "UPLOAD#<record id>"``,
with its bucket, key and version): its image may be one the erasure never saw (a new key still being
recognised), and the next `vehicle-ocr erase` of the same subject finds it there and removes it.

It expires after ``TOMBSTONE_TTL_S``: longer than anything can still deliver an old upload
(Lambda retries for up to 6 hours, queued messages live 14 days).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from vehicle_ocr.shapes import index_values, plate_numbers_named

TOMBSTONE_PREFIX = "ERASED#"
TOMBSTONE_SK = "ERASED"
UPLOAD_SK_PREFIX = "UPLOAD#"
TOMBSTONE_TTL_S = 15 * 24 * 3600
# What a marker names: one object version (by record id), a plate number, a VIN.
RECORD, PLATE, VIN = "record", "plate", "vin"

# The ConditionCheck every marker key gets in the record's transaction.
NOT_COVERED = "attribute_not_exists(pk) OR erased_at < :uploaded_ms"


class SubjectErased(RuntimeError):
    """The record belongs to a subject erased after the upload was made: it must not be written."""

    def __init__(self, message: str, markers: list[str]):
        super().__init__(message)
        self.markers = markers  # the markers that cover it


def tombstone_pk(what: str, value: str) -> str:
    return TOMBSTONE_PREFIX + hashlib.sha256(f"{what}:{value}".encode()).hexdigest()


def tombstone_pks(record: Mapping[str, Any]) -> list[str]:
    """Every marker that could cover this record: its object version, its plate numbers, its VIN."""
    pks = [tombstone_pk(RECORD, record["id"])]
    pks.extend(tombstone_pk(PLATE, number) for number in plate_numbers_named(record))
    vin = index_values(record).get("vin")
    if vin:
        pks.append(tombstone_pk(VIN, vin))
    return pks


def tombstone_item(pk: str, *, erased_at: datetime) -> dict[str, Any]:
    """A marker in DynamoDB's wire form."""
    return {
        "pk": {"S": pk},
        "sk": {"S": TOMBSTONE_SK},
        "erased_at": {"N": str(epoch_ms(erased_at))},
        "expires_at": {"N": str(int(erased_at.timestamp()) + TOMBSTONE_TTL_S)},
    }


def condition_checks(table_name: str, record: Mapping[str, Any], event_time: str | None) -> list[dict[str, Any]]:
    """TransactWriteItems ConditionChecks that fail when a marker covers the record."""
    uploaded = {":uploaded_ms": {"N": str(uploaded_ms(event_time))}}
    return [
        {
            "ConditionCheck": {
                "TableName": table_name,
                "Key": {"pk": {"S": pk}, "sk": {"S": TOMBSTONE_SK}},
                "ConditionExpression": NOT_COVERED,
                "ExpressionAttributeValues": uploaded,
            }
        }
        for pk in tombstone_pks(record)
    ]


def covering(markers: Iterable[dict[str, Any] | None], event_time: str | None) -> list[str]:
    """Which of these markers (wire form, None where absent) cover an upload made at ``event_time``."""
    made = uploaded_ms(event_time)
    return [marker["pk"]["S"] for marker in markers if marker is not None and made <= int(marker["erased_at"]["N"])]


def upload_note(marker: str, record: Mapping[str, Any], *, at: datetime) -> dict[str, Any]:
    """The note, under a marker, of an upload it stopped (wire form): where its image is."""
    source = record["source"]
    item = {
        "pk": {"S": marker},
        "sk": {"S": UPLOAD_SK_PREFIX + record["id"]},
        "bucket": {"S": source["bucket"]},
        "object_key": {"S": source["key"]},
        "expires_at": {"N": str(int(at.timestamp()) + TOMBSTONE_TTL_S)},
    }
    for name in ("version_id", "etag"):
        if source.get(name):
            item[name] = {"S": source[name]}
    return item


def uploaded_ms(event_time: str | None) -> int:
    """S3's event time in epoch milliseconds; 0 (covered by every marker) when the event has none."""
    if not event_time:
        return 0
    try:
        return epoch_ms(datetime.fromisoformat(event_time.replace("Z", "+00:00")))
    except ValueError:
        return 0


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
