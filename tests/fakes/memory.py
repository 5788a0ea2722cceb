"""In-memory stand-ins for what ``vehicle_ocr.pipeline.Pipeline`` talks to, for unit tests that run in milliseconds.

* :class:`MemoryStore`: the results table as ``vehicle_ocr.storage.ResultsStore`` uses it.  Items go
  through the real ``to_item`` and the real DynamoDB serialisation (``_to_dynamo``), and are kept in
  DynamoDB's wire form, so a record DynamoDB would refuse (a float it cannot hold, a key attribute
  that is empty or too long, an item over 400 KB) fails here too; reads deserialise with the real
  ``from_dynamo``, so what the pipeline reads back is what it would read from the table.
* :class:`MemoryPublisher`: EventBridge entries and SQS messages built exactly as
  ``vehicle_ocr.publishing.Publisher`` builds them (JSON-encoded: a record that cannot be sent fails).
* :class:`MemoryS3`: ``get_object`` with ``VersionId`` / ``IfMatch`` and S3's error codes.
* :class:`StubRecognizer`: a provider that plays a script of answers and errors, and counts calls.
* :class:`TickingClock`: a clock that moves one millisecond per reading.

Each fake can be told to fail its next call(s) (``fail_next``), to simulate a crash at that point.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from vehicle_ocr.erasure import TOMBSTONE_SK, SubjectErased, covering, tombstone_pks, upload_note
from vehicle_ocr.providers.base import ProviderAnswer
from vehicle_ocr.shapes import (
    EVENT_SOURCE,
    detail_type,
    failure_message_attributes,
    plate_numbers_named,
    success_event_detail,
)
from vehicle_ocr.storage import (
    BOOKKEEPING_TTL_S,
    PLATE_SK_PREFIX,
    RECORD_SK,
    TRANSIENT_SK,
    AttemptHistory,
    StoredRecord,
    _to_dynamo,
    from_dynamo,
    from_item,
    indexable,
    to_item,
)

# DynamoDB's limits that a record could run into (template.yaml's key schema: every key attribute is S).
MAX_ITEM_BYTES = 400 * 1024
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
# Key attribute → whether it is a partition (hash) key somewhere: the table's or an index's.
KEY_ATTRIBUTES = {
    "pk": True,
    "sk": True,  # the table's sort key, and by-time's partition key
    "object_ref": True,
    "plate_number": True,
    "vin": True,
    "kind": True,
    "status": True,
    "created_sort": False,
    "object_sequence": False,
}


def client_error(code: str, message: str, operation: str, *, http_status: int = 400) -> ClientError:
    """A botocore ClientError shaped as the SDK raises it."""
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": http_status}},
        operation,
    )


class _Failures:
    """Exceptions queued for a fake's next calls, by method name."""

    def __init__(self) -> None:
        self._queued: dict[str, list[BaseException]] = {}

    def queue(self, method: str, errors: Iterable[BaseException]) -> None:
        self._queued.setdefault(method, []).extend(errors)

    def raise_if_queued(self, method: str) -> None:
        queued = self._queued.get(method)
        if queued:
            raise queued.pop(0)


class MemoryStore:
    """The results table, in memory, with ``ResultsStore``'s public methods and conditional semantics."""

    def __init__(self) -> None:
        # (pk, sk) → the item in DynamoDB's wire form ({"S": ...}, {"N": ...}), as the table holds it.
        self.table: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[str] = []  # every method called, in order
        self._failures = _Failures()

    def fail_next(self, method: str, *errors: BaseException) -> None:
        """The next call(s) of ``method`` raise these, before changing anything (a throttle, a crash)."""
        self._failures.queue(method, errors)

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        self._failures.raise_if_queued(method)

    # --- ResultsStore's interface -------------------------------------------------------------
    def load(self, record_id: str) -> StoredRecord | None:
        self._enter("load")
        item = self.table.get((record_id, RECORD_SK))
        return StoredRecord.from_item(from_dynamo(item)) if item else None

    def load_with_history(self, record_id: str) -> tuple[StoredRecord | None, AttemptHistory]:
        self._enter("load_with_history")
        stored, history = None, AttemptHistory()
        record_item = self.table.get((record_id, RECORD_SK))
        if record_item:
            stored = StoredRecord.from_item(from_dynamo(record_item))
        transient_item = self.table.get((record_id, TRANSIENT_SK))
        if transient_item:
            history = AttemptHistory.from_item(from_dynamo(transient_item))
        return stored, history

    def create(
        self,
        record: dict[str, Any],
        *,
        attempts: int,
        created_sort_at: datetime,
        sequencer: str | None = None,
        replace_failed: bool = False,
        event_time: str | None = None,
        announcer: str | None = None,
    ) -> bool:
        """Record and sightings, all or nothing; False when the record exists (unless a FAILED one is replaced).

        Raises ``SubjectErased`` when an erasure marker in the table covers the record, as the real
        transaction's ConditionChecks do, after noting the upload under the marker.
        """
        self._enter("create")
        item = to_item(
            record, attempts=attempts, created_sort_at=created_sort_at, sequencer=sequencer, announcer=announcer
        )
        # Serialise everything first, as the SDK does before sending: an unstorable item writes nothing.
        wire = _storable(item)
        sightings = [_storable(sighting) for sighting in _sightings(record, item["created_sort"])]
        existing = self.table.get((record["id"], RECORD_SK))
        if existing is not None and not (replace_failed and existing.get("status") == {"S": "FAILED"}):
            return False
        markers = covering((self.table.get((pk, TOMBSTONE_SK)) for pk in tombstone_pks(record)), event_time)
        for marker in markers:
            note = upload_note(marker, record, at=created_sort_at)
            self.table[(marker, note["sk"]["S"])] = note
        if markers:
            raise SubjectErased(record["id"], markers)
        self.table[(record["id"], RECORD_SK)] = wire
        for sighting in sightings:
            self.table[(sighting["pk"]["S"], sighting["sk"]["S"])] = sighting
        return True

    def put_sightings(self, stored: StoredRecord) -> None:
        self._enter("put_sightings")
        for sighting in _sightings(stored.record, stored.created_sort):
            wire = _storable(sighting)
            self.table[(wire["pk"]["S"], wire["sk"]["S"])] = wire

    def count_transient_failure(
        self, record_id: str, *, calls: int, possibly_billed: int, at: datetime
    ) -> AttemptHistory:
        """``ADD invocations 1, calls, possibly_billed; SET expires_at``, returning the new totals."""
        self._enter("count_transient_failure")
        current = from_dynamo(self.table.get((record_id, TRANSIENT_SK), {}))
        updated = {
            **current,
            "pk": record_id,
            "sk": TRANSIENT_SK,
            "invocations": int(current.get("invocations") or 0) + 1,
            "calls": int(current.get("calls") or 0) + calls,
            "possibly_billed": int(current.get("possibly_billed") or 0) + possibly_billed,
            "expires_at": int(at.timestamp()) + BOOKKEEPING_TTL_S,
        }
        self.table[(record_id, TRANSIENT_SK)] = _storable(updated)
        return AttemptHistory.from_item(updated)

    def start_redrive(self, record_id: str, redrive_id: str, history: AttemptHistory) -> AttemptHistory:
        """Reset the counters once per ``redrive_id`` (a conditional update_item); a repeat keeps ``history``."""
        self._enter("start_redrive")
        current = from_dynamo(self.table.get((record_id, TRANSIENT_SK), {}))
        if current.get("redrive_id") == redrive_id:
            return history
        updated = {
            **current,
            "pk": record_id,
            "sk": TRANSIENT_SK,
            "invocations": 0,
            "calls": 0,
            "possibly_billed": 0,
            "redrive_id": redrive_id,
        }
        self.table[(record_id, TRANSIENT_SK)] = _storable(updated)
        return AttemptHistory()

    def release_announcement(self, record_id: str) -> None:
        """``REMOVE announcer, announce_until``, conditional on the record existing."""
        self._enter("release_announcement")
        item = self.table.get((record_id, RECORD_SK))
        if item is None:
            raise client_error("ConditionalCheckFailedException", "The conditional request failed", "UpdateItem")
        item.pop("announcer", None)
        item.pop("announce_until", None)

    def mark_notified(self, record_id: str, at: datetime) -> None:
        """``SET notified_at``, conditional on the record existing."""
        self._enter("mark_notified")
        item = self.table.get((record_id, RECORD_SK))
        if item is None:
            raise client_error("ConditionalCheckFailedException", "The conditional request failed", "UpdateItem")
        item["notified_at"] = {"S": at.astimezone(UTC).isoformat()}

    # --- what tests look at -------------------------------------------------------------------
    def items(self) -> list[dict[str, Any]]:
        """Every item, deserialised as a scan would return it."""
        return [from_dynamo(item) for item in self.table.values()]

    def records(self) -> list[dict[str, Any]]:
        """Every record as a user sees it (bookkeeping attributes removed)."""
        return [from_item(item) for item in self.items() if item["sk"] == RECORD_SK]

    def stored(self, record_id: str) -> StoredRecord | None:
        item = self.table.get((record_id, RECORD_SK))
        return StoredRecord.from_item(from_dynamo(item)) if item else None

    def sightings(self) -> list[dict[str, Any]]:
        return [item for item in self.items() if item["sk"].startswith(PLATE_SK_PREFIX)]

    def history(self, record_id: str) -> AttemptHistory:
        item = self.table.get((record_id, TRANSIENT_SK))
        return AttemptHistory.from_item(from_dynamo(item)) if item else AttemptHistory()


def _sightings(record: dict[str, Any], created_sort: str) -> list[dict[str, Any]]:
    return [
        {
            "pk": record["id"],
            "sk": PLATE_SK_PREFIX + number,
            "plate_number": number,
            "created_sort": created_sort,
            "record_kind": record["kind"],
        }
        for number in plate_numbers_named(record)
        if indexable(number)
    ]


def _storable(item: dict[str, Any]) -> dict[str, Any]:
    """The item in DynamoDB's wire form, or the error DynamoDB (or the SDK before it) would raise."""
    wire = _to_dynamo(item)  # the SDK's own serialiser: TypeError / decimal errors for what it cannot send
    from_dynamo(wire)  # and what is written must read back
    for name, is_partition in KEY_ATTRIBUTES.items():
        if name not in wire:
            continue
        value = wire[name]
        if "S" not in value:
            raise client_error(
                "ValidationException",
                f"One or more parameter values were invalid: Type mismatch for key {name} expected: S",
                "TransactWriteItems",
            )
        size = len(value["S"].encode("utf-8"))
        limit = MAX_PARTITION_KEY_BYTES if is_partition else MAX_SORT_KEY_BYTES
        if size == 0 or size > limit:
            raise client_error(
                "ValidationException",
                f"One or more parameter values were invalid: key attribute {name} is {size} bytes "
                f"(1 to {limit} allowed)",
                "TransactWriteItems",
            )
    size = sum(len(name.encode("utf-8")) + _value_size(value) for name, value in wire.items())
    if size > MAX_ITEM_BYTES:
        raise client_error(
            "ValidationException", "Item size has exceeded the maximum allowed size", "TransactWriteItems"
        )
    return wire


def _value_size(value: dict[str, Any]) -> int:
    """DynamoDB's documented item-size accounting, for one attribute value in wire form."""
    ((tag, inner),) = value.items()
    if tag == "S":
        return len(inner.encode("utf-8"))
    if tag == "N":
        digits = Decimal(inner).as_tuple().digits
        return (len(digits) + 1) // 2 + 1
    if tag == "B":
        return len(inner)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "L":
        return 3 + sum(1 + _value_size(item) for item in inner)
    if tag == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + _value_size(item) for name, item in inner.items())
    if tag in ("SS", "NS", "BS"):
        return sum(_value_size({tag[0]: item}) for item in inner)
    raise ValueError(f"unknown DynamoDB type {tag}")


class MemoryPublisher:
    """EventBridge entries and SQS messages, built as ``Publisher`` builds them, kept in lists."""

    def __init__(self, *, event_bus_name: str = "b", failure_queue_url: str = "q"):
        self.event_bus_name = event_bus_name
        self.failure_queue_url = failure_queue_url
        self.entries: list[dict[str, Any]] = []  # PutEvents entries
        self.sent: list[dict[str, Any]] = []  # SendMessage requests
        self._failures = _Failures()

    def fail_next(self, method: str, *errors: BaseException) -> None:
        """The next call(s) of ``announce_success`` / ``report_failure`` raise these; nothing is published."""
        self._failures.queue(method, errors)

    def announce_success(self, record: dict[str, Any]) -> None:
        self._failures.raise_if_queued("announce_success")
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": detail_type(record),
            "Detail": json.dumps(success_event_detail(record), ensure_ascii=False),
            "EventBusName": self.event_bus_name,
            "Resources": [],
        }
        self.entries.append(entry)

    def report_failure(self, message: dict[str, Any]) -> None:
        self._failures.raise_if_queued("report_failure")
        self.sent.append(
            {
                "QueueUrl": self.failure_queue_url,
                "MessageBody": json.dumps(message, ensure_ascii=False),
                "MessageAttributes": failure_message_attributes(message),
            }
        )

    # --- what tests look at -------------------------------------------------------------------
    @property
    def events(self) -> list[dict[str, Any]]:
        """Each success event as a consumer sees it: ``source``, ``detail-type``, ``detail``."""
        return [
            {"source": entry["Source"], "detail-type": entry["DetailType"], "detail": json.loads(entry["Detail"])}
            for entry in self.entries
        ]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Each failure message: its parsed ``body`` and its ``attributes`` as strings."""
        return [
            {
                "body": json.loads(sent["MessageBody"]),
                "attributes": {name: value["StringValue"] for name, value in sent["MessageAttributes"].items()},
            }
            for sent in self.sent
        ]


class _Body:
    """What ``get_object``'s ``Body`` offers the pipeline: a stream to read (at most n bytes) and close."""

    def __init__(self, data: bytes):
        self._data = data
        self._position = 0
        self.closed = False

    def read(self, amount: int | None = None) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed stream")
        end = len(self._data) if amount is None or amount < 0 else self._position + amount
        chunk = self._data[self._position : end]
        self._position += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryS3:
    """Objects by bucket and key, every version kept; ``get_object`` answers like S3."""

    def __init__(self, *, versioned: bool = False):
        self.versioned = versioned
        # (bucket, key) → its versions, oldest first: {"VersionId", "ETag" (unquoted), "Body"}
        self.objects: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.requests: list[dict[str, Any]] = []  # every get_object request
        self._failures = _Failures()

    def fail_next(self, method: str, *errors: BaseException) -> None:
        self._failures.queue(method, errors)

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ETag: str | None = None) -> dict[str, Any]:
        """Store an object (``ETag`` forces one, e.g. a sample event's); returns ETag (quoted) and VersionId."""
        etag = (ETag or hashlib.md5(Body).hexdigest()).strip('"')  # noqa: S324 - S3's own ETag for a simple put
        versions = self.objects.setdefault((Bucket, Key), [])
        version_id = f"v{len(versions) + 1}" if self.versioned else None
        if not self.versioned:
            versions.clear()
        versions.append({"VersionId": version_id, "ETag": etag, "Body": bytes(Body)})
        response: dict[str, Any] = {"ETag": f'"{etag}"'}
        if version_id:
            response["VersionId"] = version_id
        return response

    def delete_object(self, *, Bucket: str, Key: str) -> None:
        self.objects.pop((Bucket, Key), None)

    def get_object(
        self,
        *,
        Bucket: str,
        Key: str,
        VersionId: str | None = None,
        IfMatch: str | None = None,
    ) -> dict[str, Any]:
        self.requests.append({"Bucket": Bucket, "Key": Key, "VersionId": VersionId, "IfMatch": IfMatch})
        self._failures.raise_if_queued("get_object")
        versions = self.objects.get((Bucket, Key))
        if VersionId is not None:
            found = [version for version in versions or [] if version["VersionId"] == VersionId]
            if not found:
                code = "NoSuchVersion" if versions else "NoSuchKey"
                raise client_error(code, "The specified version does not exist.", "GetObject", http_status=404)
            version = found[0]
        elif versions:
            version = versions[-1]
        else:
            raise client_error("NoSuchKey", "The specified key does not exist.", "GetObject", http_status=404)
        if IfMatch is not None and IfMatch.strip('"') != version["ETag"]:
            raise client_error(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                "GetObject",
                http_status=412,
            )
        response: dict[str, Any] = {
            "Body": _Body(version["Body"]),
            "ContentLength": len(version["Body"]),
            "ETag": f'"{version["ETag"]}"',
        }
        if version["VersionId"]:
            response["VersionId"] = version["VersionId"]
        return response


# One scripted call: the answer, the error to raise, or a function of the image doing either (a side effect).
Scripted = ProviderAnswer | BaseException | Callable[[bytes], ProviderAnswer]


class StubRecognizer:
    """A provider that plays ``script``: each call takes the next item, a ProviderAnswer to return, an
    exception instance to raise, or a callable given the image.  A call past the end of the script fails
    the test.  Give each call its own exception instance: the pipeline may change the one it catches."""

    def __init__(self, name: str, kind: str, script: Iterable[Scripted] = ()):
        self.name = name
        self.kind = kind
        self.script: list[Scripted] = list(script)
        self.images: list[bytes] = []  # what each call was sent

    @property
    def calls(self) -> int:
        return len(self.images)

    def then(self, *items: Scripted) -> StubRecognizer:
        """Append to the script (e.g. what a later invocation's calls answer)."""
        self.script.extend(items)
        return self

    def recognize(self, image: bytes) -> ProviderAnswer:
        self.images.append(image)
        if not self.script:
            raise AssertionError(f"{self.name} called {self.calls} times; its script had no answer left")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        if callable(item):
            return item(image)
        return item


class TickingClock:
    """``clock()`` → a UTC time one millisecond later than the previous reading."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(milliseconds=1)):
        self.now = start or datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


__all__ = [
    "MemoryPublisher",
    "MemoryS3",
    "MemoryStore",
    "StubRecognizer",
    "TickingClock",
    "client_error",
]
