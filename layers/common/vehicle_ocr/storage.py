"""The results table.

Item layout (one table, composite key):

* the record: ``pk=<id>, sk=RECORD`` with the record's fields plus index attributes
  ``object_ref`` (bucket/key), ``created_sort`` (time#id, a stable order), ``vin``;
* one sighting per plate number a record names: ``pk=<id>, sk=PLATE#<number>`` with
  ``plate_number`` and ``created_sort``, so ``by-plate`` finds plate sightings and
  vehicle licences alike, several plates per image included.

Record and sightings are written in one transaction, conditional on the record not
existing: a duplicate delivery can never write a second record. A redrive may replace a
FAILED record (only a FAILED one) with the outcome of the re-run.

``object_sequence`` orders the records of one object key by S3's ``sequencer`` (the order
the writes happened), not by the order their events arrived, so an older object version
recognised late never becomes the object's "latest" record.
``notified_at`` is set once the outcome has been published; until then a retry
publishes again (an outbox on the record itself).

An erasure marker (``vehicle_ocr.erasure``: ``pk=ERASED#<digest>, sk=ERASED``) covering the record's
object version, plate numbers or VIN cancels the write: ``create`` checks them in the same transaction
and raises ``SubjectErased``, so a recognition in flight during `vehicle-ocr erase` never writes back.

``expires_at`` (the table's TTL attribute, epoch seconds): with a record retention, the record
and every one of its sightings carry the same value, the record's write time plus the
retention, so that DynamoDB deletes them together; without one, neither carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from vehicle_ocr.bounded import TRUNCATED, fits_dynamodb_number
from vehicle_ocr.erasure import SubjectErased, condition_checks, upload_note
from vehicle_ocr.kinds import all_kinds
from vehicle_ocr.shapes import Record, index_values, plate_numbers_named

RECORD_SK = "RECORD"
PLATE_SK_PREFIX = "PLATE#"
TRANSIENT_SK = "TRANSIENT_FAILURES"
# Attributes the table keeps for indexing and bookkeeping; never part of the record a user sees.
INTERNAL_ATTRIBUTES = (
    "pk",
    "sk",
    "object_ref",
    "object_sequence",
    "created_sort",
    "notified_at",
    "announcer",
    "announce_until",
    "attempts",
    "expires_at",
)
# S3 sequencers are hex strings of varying length: right-pad with zeros, then compare as text.
SEQUENCER_WIDTH = 32
# How long an unannounced record is left to the invocation that wrote it (and to that invocation's
# retries, which Lambda makes 1 and 2 minutes apart) before another delivery announces it instead.
ANNOUNCE_LEASE_S = 15 * 60
# Bookkeeping items expire on their own (the table's TTL attribute).
BOOKKEEPING_TTL_S = 14 * 24 * 3600
DAY_S = 24 * 3600

# Values that become index keys (plate numbers, VINs): real ones are 7-17 characters; a longer
# reading is kept in the record but never becomes a key (DynamoDB caps key sizes).
MAX_KEY_CHARS = 32
# One TransactWriteItems holds at most 100 items: the record and the first sightings go together.
TRANSACTION_ITEMS = 100

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class ResultsStore:
    def __init__(self, table_name: str, client: Any, *, record_retention_days: int | None = None):
        self.table_name = table_name
        self._client = client
        # Records and their sightings expire this many days after they are written (None: never).
        self.record_retention_days = record_retention_days

    def load(self, record_id: str) -> StoredRecord | None:
        response = self._client.get_item(TableName=self.table_name, Key=_key(record_id, RECORD_SK), ConsistentRead=True)
        item = response.get("Item")
        return StoredRecord.from_item(from_dynamo(item)) if item else None

    def load_with_history(self, record_id: str) -> tuple[StoredRecord | None, AttemptHistory]:
        """The record, if any, and what earlier invocations spent on it: one consistent query."""
        response = self._client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :id",
            ExpressionAttributeValues={":id": {"S": record_id}},
            ConsistentRead=True,
        )
        stored, history = None, AttemptHistory()
        for raw in response.get("Items", []):
            item = from_dynamo(raw)
            if item["sk"] == RECORD_SK:
                stored = StoredRecord.from_item(item)
            elif item["sk"] == TRANSIENT_SK:
                history = AttemptHistory.from_item(item)
        return stored, history

    def create(
        self,
        record: Record,
        *,
        attempts: int,
        created_sort_at: datetime,
        sequencer: str | None = None,
        replace_failed: bool = False,
        event_time: str | None = None,
        announcer: str | None = None,
    ) -> bool:
        """Write record and sightings atomically.  False when the record already existed.

        With ``replace_failed`` (a redrive) an existing FAILED record is replaced; a SUCCEEDED one never is.
        Raises ``SubjectErased`` when an erasure marker covers the record (uploaded at ``event_time``).
        """
        item = to_item(
            record,
            attempts=attempts,
            created_sort_at=created_sort_at,
            sequencer=sequencer,
            retention_days=self.record_retention_days,
            announcer=announcer,
        )
        condition = "attribute_not_exists(pk)"
        values: dict[str, Any] = {}
        if replace_failed:
            condition += " OR #status = :failed"
            values = {
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":failed": {"S": "FAILED"}},
            }
        record_put = {
            "Put": {
                "TableName": self.table_name,
                "Item": _to_dynamo(item),
                "ConditionExpression": condition,
                **values,
            }
        }
        checks = condition_checks(self.table_name, record, event_time)
        sightings = self._sighting_puts(record, item["created_sort"], item.get("expires_at"))
        room = TRANSACTION_ITEMS - 1 - len(checks)
        first, rest = sightings[:room], sightings[room:]
        try:
            self._client.transact_write_items(TransactItems=[record_put, *checks, *first])
        except ClientError as exc:
            if _record_already_exists(exc):
                return False
            markers = [
                check["ConditionCheck"]["Key"]["pk"]["S"]
                for index, check in enumerate(checks, start=1)
                if _failed_check(exc, index)
            ]
            if markers:
                self._note_erased_upload(record, markers, created_sort_at)
                raise SubjectErased(f"record {record['id']}: its subject was erased after the upload", markers) from exc
            raise
        # Sightings beyond one transaction: idempotent puts.  Should these fail, the record is not yet
        # notified, and the retry writes every sighting again before announcing (``put_sightings``).
        self._write_in_transactions(rest)
        return True

    def _note_erased_upload(self, record: Mapping[str, Any], markers: list[str], at: datetime) -> None:
        """Under each marker that stopped it, where the upload's image is: the next erase removes it."""
        for marker in markers:
            self._client.put_item(TableName=self.table_name, Item=upload_note(marker, record, at=at))

    def put_sightings(self, stored: StoredRecord) -> None:
        """Write (again) every sighting of a stored record, expiring with it: idempotent."""
        self._write_in_transactions(self._sighting_puts(stored.record, stored.created_sort, stored.expires_at))

    def _sighting_puts(
        self, record: Mapping[str, Any], created_sort: str, expires_at: int | None = None
    ) -> list[dict[str, Any]]:
        puts = []
        for number in plate_numbers_named(record):
            if not indexable(number):
                continue
            sighting = {
                "pk": record["id"],
                "sk": PLATE_SK_PREFIX + number,
                "plate_number": number,
                "created_sort": created_sort,
                "record_kind": record["kind"],
            }
            if expires_at is not None:  # the record's own expiry: record and sightings go together
                sighting["expires_at"] = expires_at
            puts.append({"Put": {"TableName": self.table_name, "Item": _to_dynamo(sighting)}})
        return puts

    def _write_in_transactions(self, puts: list[dict[str, Any]]) -> None:
        for start in range(0, len(puts), TRANSACTION_ITEMS):
            self._client.transact_write_items(TransactItems=puts[start : start + TRANSACTION_ITEMS])

    def count_transient_failure(
        self, record_id: str, *, calls: int, possibly_billed: int, at: datetime
    ) -> AttemptHistory:
        """One more invocation ended in a transient failure: the totals over every invocation so far."""
        response = self._client.update_item(
            TableName=self.table_name,
            Key=_key(record_id, TRANSIENT_SK),
            UpdateExpression="ADD invocations :one, calls :calls, possibly_billed :billed SET expires_at = :expires",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":calls": {"N": str(calls)},
                ":billed": {"N": str(possibly_billed)},
                ":expires": {"N": str(int(at.timestamp()) + BOOKKEEPING_TTL_S)},
            },
            ReturnValues="ALL_NEW",
        )
        return AttemptHistory.from_item(from_dynamo(response["Attributes"]))

    def start_redrive(self, record_id: str, redrive_id: str, history: AttemptHistory) -> AttemptHistory:
        """A redrive starts a fresh series of attempts (the operator chose to pay again), once.

        Lambda retries a failed redrive with the same event: those retries find ``redrive_id``
        already recorded and keep counting from ``history``, so its last attempt ends the series.
        """
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=_key(record_id, TRANSIENT_SK),
                UpdateExpression="SET invocations = :zero, calls = :zero, possibly_billed = :zero, redrive_id = :id",
                ConditionExpression="attribute_not_exists(redrive_id) OR redrive_id <> :id",
                ExpressionAttributeValues={":zero": {"N": "0"}, ":id": {"S": redrive_id}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return history
            raise
        return AttemptHistory()

    def release_announcement(self, record_id: str) -> None:
        """The writer could not announce the record: let any delivery announce it from now on."""
        self._client.update_item(
            TableName=self.table_name,
            Key=_key(record_id, RECORD_SK),
            UpdateExpression="REMOVE announcer, announce_until",
            ConditionExpression="attribute_exists(pk)",
        )

    def mark_notified(self, record_id: str, at: datetime) -> None:
        self._client.update_item(
            TableName=self.table_name,
            Key=_key(record_id, RECORD_SK),
            UpdateExpression="SET notified_at = :at",
            ExpressionAttributeValues={":at": {"S": at.astimezone(UTC).isoformat()}},
            ConditionExpression="attribute_exists(pk)",
        )


@dataclass(frozen=True)
class AttemptHistory:
    """What earlier invocations of one upload spent: invocations that failed transiently, upstream calls."""

    invocations: int = 0
    calls: int = 0
    possibly_billed: int = 0

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> AttemptHistory:
        return cls(
            invocations=int(item.get("invocations") or 0),
            calls=int(item.get("calls") or 0),
            possibly_billed=int(item.get("possibly_billed") or 0),
        )


class StoredRecord:
    """A record as read back, with the bookkeeping the pipeline needs beside it."""

    def __init__(
        self,
        record: dict[str, Any],
        *,
        notified_at: str | None,
        attempts: int,
        created_sort: str = "",
        expires_at: int | None = None,
        announce_until: int | None = None,
        announcer: str | None = None,
    ):
        self.record = record
        self.notified_at = notified_at  # ISO time the outcome was announced; None until then
        self.attempts = attempts
        self.created_sort = created_sort
        self.expires_at = expires_at  # TTL (epoch seconds) its sightings must share; None: kept forever
        self.announcer = announcer  # request id of the invocation that wrote it; None: anyone announces
        self.announce_until = announce_until  # epoch seconds: until then, left to that invocation

    @property
    def notified(self) -> bool:
        return bool(self.notified_at)

    def being_announced(self, now: datetime) -> bool:
        """Whether it is still left to the invocation that wrote it to announce (see ANNOUNCE_LEASE_S)."""
        return not self.notified and self.announce_until is not None and now.timestamp() < self.announce_until

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> StoredRecord:
        return cls(
            from_item(item),
            notified_at=item.get("notified_at"),
            attempts=int(item.get("attempts") or 1),
            created_sort=item.get("created_sort", ""),
            expires_at=int(item["expires_at"]) if item.get("expires_at") is not None else None,
            announce_until=int(item["announce_until"]) if item.get("announce_until") is not None else None,
            announcer=item.get("announcer"),
        )


def to_item(
    record: Record | dict[str, Any],
    *,
    attempts: int,
    created_sort_at: datetime,
    sequencer: str | None = None,
    retention_days: int | None = None,
    announcer: str | None = None,
) -> dict[str, Any]:
    item = dict(record)
    # Millisecond time then id: newest-first listings with a total, stable order.
    created_sort = f"{created_sort_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z#{record['id']}"
    item.update(
        pk=record["id"],
        sk=RECORD_SK,
        object_ref=f"{record['source']['bucket']}/{record['source']['key']}",
        object_sequence=f"{(sequencer or '').upper().ljust(SEQUENCER_WIDTH, '0')}#{created_sort}",
        created_sort=created_sort,
        attempts=attempts,
    )
    if announcer:
        # Who announces it: the writing invocation's request id, which Lambda's retries keep.
        item.update(announcer=announcer, announce_until=int(created_sort_at.timestamp()) + ANNOUNCE_LEASE_S)
    if retention_days:
        # The table's TTL attribute: DynamoDB deletes the item (usually within days) once this has passed.
        item["expires_at"] = int(created_sort_at.timestamp()) + retention_days * DAY_S
    item.update({name: value for name, value in index_values(record).items() if indexable(value)})
    # Index key attributes must be strings when present: leave them out rather than store NULL.
    for index_key in ("kind", "status"):
        if item.get(index_key) is None:
            item.pop(index_key, None)
    return item


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    internal = {*INTERNAL_ATTRIBUTES, *(name for kind in all_kinds() for name in kind.index_attributes)}
    record = {name: value for name, value in item.items() if name not in internal}
    record.setdefault("kind", None)
    return record


def indexable(value: Any) -> bool:
    """Whether a plate number or VIN may become an index key."""
    return isinstance(value, str) and 0 < len(value) <= MAX_KEY_CHARS and TRUNCATED not in value


def _key(record_id: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": record_id}, "sk": {"S": sk}}


def _record_already_exists(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    if error.get("Code") == "ConditionalCheckFailedException":
        return True
    if error.get("Code") != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    # The record put is the first item; its condition failing means a duplicate, anything else is real.
    if reasons:
        return reasons[0].get("Code") == "ConditionalCheckFailed"
    return "ConditionalCheckFailed" in str(error.get("Message", ""))


def _failed_check(exc: ClientError, index: int) -> bool:
    """Whether the condition of the transaction's item at ``index`` failed."""
    reasons = exc.response.get("CancellationReasons") or []
    return index < len(reasons) and reasons[index].get("Code") == "ConditionalCheckFailed"


def _to_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(_decimalize(value)) for name, value in item.items()}


def from_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _undecimalize(_deserializer.deserialize(value)) for name, value in item.items()}


def _decimalize(value: Any) -> Any:
    """DynamoDB numbers are Decimals; floats (confidences) go through str to keep their digits.

    A number DynamoDB cannot hold (NaN, infinities, over 38 digits, out of range) is kept as its text:
    the record must be written whatever the upstream answered.
    """
    if isinstance(value, int | float) and not isinstance(value, bool) and not fits_dynamodb_number(value):
        return str(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {name: _decimalize(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_decimalize(item) for item in value]
    return value


def _undecimalize(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {name: _undecimalize(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_undecimalize(item) for item in value]
    return value
