"""`vehicle-ocr erase`: remove everything held about one vehicle or one object.

A subject is a plate number (with the VIN of any licence naming it), a VIN (with the plate
numbers its licences name), or one object key. What is held about it:

* the records and their plate sightings and bookkeeping (results table, one partition per record);
* every version of their images, and delete markers of keys left empty (under the same key, a
  version whose record names another vehicle is kept; a version whose record names none, a FAILED
  one, or that has no record yet, is removed: it may be the subject's, and names nobody else);
* the paid answers stored for those images (idempotency table, keyed as the pipeline keys them:
  kind, provider, image SHA-256 or record id; see ``vehicle_ocr.answers``);
* failure messages still queued for them (failure queue, its dead-letter queue, and Lambda's
  on-failure destination queue).

Order, so that an interrupted run leaves what a second run finds and completes:
find (read only) → erasure markers (``vehicle_ocr.erasure``: from now on the pipeline writes
nothing back for these versions, plates or VINs) → find again (records written meanwhile) →
image versions → paid answers → queued messages → the results-table items last (the record
and sightings carry the index entries the next run finds the subject by).

Reading a queue hides every message it receives: each one not ours is made visible again at
once (visibility 0), but the receive counts toward the queue's maxReceiveCount.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vehicle_ocr.answers import stored_answer_id
from vehicle_ocr.erasure import (
    PLATE,
    RECORD,
    TOMBSTONE_SK,
    TOMBSTONE_TTL_S,
    UPLOAD_SK_PREFIX,
    VIN,
    epoch_ms,
    tombstone_pk,
)
from vehicle_ocr.kinds import all_kinds
from vehicle_ocr.normalize.plates import canonical_plate_number
from vehicle_ocr.normalize.vin import normalize_vin
from vehicle_ocr.providers import providers_for
from vehicle_ocr.s3_events import parse_s3_event
from vehicle_ocr.shapes import index_values, plate_numbers_named, record_id
from vehicle_ocr.storage import PLATE_SK_PREFIX, RECORD_SK, from_dynamo, from_item

audit_log = logging.getLogger("vehicle_ocr_local.erase")

# How long a received message that is ours stays hidden until deleted (seconds).
RECEIVE_HOLD_S = 120
# At most this many messages are read per queue in one run.
QUEUE_SCAN_LIMIT = 10_000
# An image version without a record is read to find its paid answer (SHA-256); never more than this.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
TRANSACTION_ITEMS = 100


class ErasureIncomplete(RuntimeError):
    """AWS refused part of the removal; what was found is still found by the next run."""


@dataclass(frozen=True)
class Subject:
    plate: str | None = None  # canonical plate number
    vin: str | None = None  # normalised VIN
    bucket: str | None = None
    key: str | None = None

    @classmethod
    def of(cls, *, plate: str | None, vin: str | None, bucket: str | None, key: str | None) -> Subject:
        """The subject as the query API would look it up; ValueError for a value that names none."""
        if plate is not None:
            number = canonical_plate_number(plate)
            if not 2 <= len(number) <= 12:
                raise ValueError(f"--plate {plate!r} is not a plate number after normalisation")
            return cls(plate=number)
        if vin is not None:
            normalised = normalize_vin(vin)
            if not normalised or not normalised.isascii() or not normalised.isalnum() or len(normalised) > 17:
                raise ValueError("--vin must be at most 17 letters and digits")
            return cls(vin=normalised)
        if not bucket or not key:
            raise ValueError("--bucket and --key name one object: give both")
        return cls(bucket=bucket, key=key)

    def __str__(self) -> str:
        if self.plate:
            return f"plate {self.plate}"
        if self.vin:
            return f"VIN {self.vin}"
        return f"s3://{self.bucket}/{self.key}"

    @property
    def marker(self) -> str:
        """The subject's own erasure marker (an object's are per version)."""
        if self.plate:
            return tombstone_pk(PLATE, self.plate)
        if self.vin:
            return tombstone_pk(VIN, self.vin)
        return tombstone_pk("object", f"{self.bucket}/{self.key}")


@dataclass(frozen=True)
class Resources:
    """Where the stack keeps things (CloudFormation outputs, or the local stack's names)."""

    results_table: str
    answers_table: str | None
    queue_urls: tuple[str, ...]  # the failure queue first


@dataclass(frozen=True)
class ImageVersion:
    bucket: str
    key: str
    version_id: str | None  # None: an unversioned object
    etag: str | None
    delete_marker: bool = False
    listed_version_id: str | None = None  # as S3 lists it ("null" included)

    @property
    def record_id(self) -> str:
        return record_id(self.bucket, self.key, self.version_id, self.etag)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" + (f" version {self.version_id}" if self.version_id else "")


@dataclass
class Plan:
    """What is held about a subject: found, nothing removed yet."""

    subject: Subject
    plates: set[str] = field(default_factory=set)
    vins: set[str] = field(default_factory=set)
    record_ids: set[str] = field(default_factory=set)  # partitions of the results table
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # record id → record (for its answers)
    sightings: int = 0
    versions: list[ImageVersion] = field(default_factory=list)
    answer_ids: set[str] = field(default_factory=set)
    # Uploads a marker stopped while they were recognised, (marker, sort key): noted by the pipeline.
    stopped: set[tuple[str, str]] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (self.record_ids or self.versions or self.answer_ids or self.stopped)

    @property
    def markers(self) -> list[str]:
        pks = [self.subject.marker]
        pks += [tombstone_pk(PLATE, number) for number in sorted(self.plates)]
        pks += [tombstone_pk(VIN, vin) for vin in sorted(self.vins)]
        pks += [tombstone_pk(RECORD, rid) for rid in sorted(self.record_ids)]
        return list(dict.fromkeys(pks))

    def merge(self, other: Plan) -> None:
        self.plates |= other.plates
        self.vins |= other.vins
        self.record_ids |= other.record_ids
        self.records.update(other.records)
        self.sightings = max(self.sightings, other.sightings)
        known = {(v.bucket, v.key, v.version_id, v.delete_marker) for v in self.versions}
        self.versions += [v for v in other.versions if (v.bucket, v.key, v.version_id, v.delete_marker) not in known]
        self.answer_ids |= other.answer_ids
        self.stopped |= other.stopped

    def lines(self) -> list[str]:
        """What would be removed: counts and ids, never an owner or address."""
        images = [v for v in self.versions if not v.delete_marker]
        markers = len(self.versions) - len(images)
        return [
            f"records: {len(self.records)}" + (f" ({', '.join(sorted(self.records))})" if self.records else ""),
            f"plate sightings: {self.sightings}",
            f"image versions: {len(images)}" + (f", delete markers: {markers}" if markers else ""),
            *(f"  {version}" for version in images),
            f"paid answers: {len(self.answer_ids)}",
            *([f"uploads stopped while being recognised: {len(self.stopped)}"] if self.stopped else []),
            "failure messages: counted while removing (reading a queue hides its messages)",
        ]


@dataclass
class Report:
    records: int = 0
    sightings: int = 0
    other_items: int = 0
    image_versions: int = 0
    delete_markers: int = 0
    answers: int = 0
    messages: int = 0
    stopped: int = 0
    record_ids: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"removed {self.records} records, {self.sightings} plate sightings, {self.image_versions} image versions"
            + (f" ({self.delete_markers} delete markers)" if self.delete_markers else "")
            + f", {self.answers} paid answers, {self.messages} failure messages"
            + (f" ({self.stopped} uploads stopped while being recognised)" if self.stopped else "")
        )


class Eraser:
    def __init__(self, *, s3: Any, dynamodb: Any, sqs: Any, resources: Resources):
        self._s3 = s3
        self._dynamodb = dynamodb
        self._sqs = sqs
        self._resources = resources

    # ---------------------------------------------------------------------------------------- finding
    def find(self, subject: Subject) -> Plan:
        """Everything held about the subject, from the records and from the object keys (read only)."""
        plan = Plan(subject)
        if subject.plate or subject.vin:
            if subject.plate:
                plan.plates.add(subject.plate)
            if subject.vin:
                plan.vins.add(subject.vin)
            self._add_records(plan, self._by_identifiers(plan.plates, plan.vins))
            # What an interrupted run had found: its second hop may no longer be reachable from what is left.
            self._add_records(plan, self._remembered_record_ids(plan.subject))
            # One hop: the VINs of licences naming the plate, the plate numbers of the VIN's licences.
            plates, vins = self._identifiers(plan.records.values())
            self._add_records(plan, self._by_identifiers(plates - plan.plates, vins - plan.vins))
            plan.plates |= plates
            plan.vins |= vins
        else:
            self._add_records(plan, self._query_index("by-object", "object_ref", f"{subject.bucket}/{subject.key}"))
        objects = {(r["source"]["bucket"], r["source"]["key"]) for r in plan.records.values()}
        if subject.key and subject.bucket:
            objects.add((subject.bucket, subject.key))
        for bucket, key in sorted(objects):
            self._add_versions(plan, bucket, key, everything=subject.key is not None)
            self._add_object_records(plan, bucket, key)
        self._add_stopped_uploads(plan)
        for rid in sorted(plan.record_ids):
            self._add_answers(plan, rid)
        return plan

    def _remembered_record_ids(self, subject: Subject) -> set[str]:
        """The record ids an earlier run of this erasure planned to remove (kept on the subject's marker)."""
        item = self._dynamodb.get_item(
            TableName=self._resources.results_table,
            Key={"pk": {"S": subject.marker}, "sk": {"S": TOMBSTONE_SK}},
            ConsistentRead=True,
        ).get("Item", {})
        return set(item.get("record_ids", {}).get("SS", []))

    def _add_stopped_uploads(self, plan: Plan) -> None:
        """Uploads an earlier erasure's markers stopped: their images may lie under keys no record names."""
        subject_marker = self._dynamodb.get_item(
            TableName=self._resources.results_table,
            Key={"pk": {"S": plan.subject.marker}, "sk": {"S": TOMBSTONE_SK}},
            ConsistentRead=True,
        ).get("Item", {})
        markers = {*plan.markers, *subject_marker.get("related", {}).get("SS", [])}
        for marker in sorted(markers):
            for note in self._query(
                KeyConditionExpression="pk = :m AND begins_with(sk, :upload)",
                ExpressionAttributeValues={":m": {"S": marker}, ":upload": {"S": UPLOAD_SK_PREFIX}},
                ConsistentRead=True,
            ):
                plan.stopped.add((marker, note["sk"]["S"]))
                bucket, key = note["bucket"]["S"], note["object_key"]["S"]
                version_id = note.get("version_id", {}).get("S")
                versions, _ = self._versions(bucket, key)
                known = {(v.bucket, v.key, v.version_id) for v in plan.versions}
                plan.versions += [
                    v for v in versions if v.version_id == version_id and (bucket, key, version_id) not in known
                ]
                plan.record_ids.add(note["sk"]["S"][len(UPLOAD_SK_PREFIX) :])

    def _by_identifiers(self, plates: Iterable[str], vins: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for number in plates:
            found |= self._query_index("by-plate", "plate_number", number)
        for vin in vins:
            found |= self._query_index("by-vin", "vin", vin)
        return found

    @staticmethod
    def _identifiers(records: Iterable[dict[str, Any]]) -> tuple[set[str], set[str]]:
        """The plate numbers and VINs named by records of one vehicle each (licences; a street photo's plates
        are strangers to each other)."""
        one_vehicle = {spec.name for spec in all_kinds() if spec.one_vehicle_per_record}
        plates, vins = set(), set()
        for record in records:
            if record.get("kind") in one_vehicle:
                plates |= set(plate_numbers_named(record))
                if vin := index_values(record).get("vin"):
                    vins.add(vin)
        return plates, vins

    def _query_index(self, index: str, attribute: str, value: str) -> set[str]:
        return {
            item["pk"]["S"]
            for item in self._query(
                IndexName=index,
                KeyConditionExpression="#a = :v",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":v": {"S": value}},
                ProjectionExpression="pk",
            )
        }

    def _partition(self, rid: str) -> list[dict[str, Any]]:
        return [
            from_dynamo(item)
            for item in self._query(
                KeyConditionExpression="pk = :id", ExpressionAttributeValues={":id": {"S": rid}}, ConsistentRead=True
            )
        ]

    def _query(self, **request: Any) -> Iterator[dict[str, Any]]:
        paginator = self._dynamodb.get_paginator("query")
        for page in paginator.paginate(TableName=self._resources.results_table, **request):
            yield from page.get("Items", [])

    def _add_records(self, plan: Plan, rids: Iterable[str]) -> None:
        for rid in sorted(set(rids) - plan.record_ids):
            items = self._partition(rid)
            if not items:
                continue
            plan.record_ids.add(rid)
            for item in items:
                if item["sk"] == RECORD_SK:
                    plan.records[rid] = from_item(item)
            plan.sightings += sum(item["sk"].startswith(PLATE_SK_PREFIX) for item in items)

    def _add_versions(self, plan: Plan, bucket: str, key: str, *, everything: bool) -> None:
        """The key's versions that are the subject's (all of them for an object subject)."""
        versions, markers = self._versions(bucket, key)
        subject_images = {record["source"].get("sha256") for record in plan.records.values()} - {None}
        kept = 0
        for version in versions:
            items = self._partition(version.record_id)
            record = next((from_item(item) for item in items if item["sk"] == RECORD_SK), None)
            if record is not None and not everything and _someone_else(record, plan):
                kept += 1  # another vehicle's photo under the same key
                continue
            sha256 = self._sha256(version) if record is None else None
            if record is None and not everything and sha256 not in subject_images:
                # Not recorded yet, under a key others may share (a gate camera's): maybe another car's upload
                # being recognised now, which must not end unrecorded. If it is this vehicle's, the plate and
                # VIN markers stop it and note it, and the next erase removes it.
                kept += 1
                continue
            plan.versions.append(version)
            if record is not None:
                self._add_records(plan, [version.record_id])
            else:  # never recorded (still being recognised, or lost): its answer is found by its bytes
                plan.record_ids.add(version.record_id)
                plan.answer_ids |= self._answer_ids(None, version.record_id, sha256)
        if not kept:
            plan.versions += markers

    def _add_object_records(self, plan: Plan, bucket: str, key: str) -> None:
        """The key's other records that name nobody else (a FAILED one): found even once its image is gone."""
        for rid in sorted(self._query_index("by-object", "object_ref", f"{bucket}/{key}") - plan.record_ids):
            record = next((from_item(item) for item in self._partition(rid) if item["sk"] == RECORD_SK), None)
            if record is not None and not _someone_else(record, plan):
                self._add_records(plan, [rid])

    def _versions(self, bucket: str, key: str) -> tuple[list[ImageVersion], list[ImageVersion]]:
        versions, markers = [], []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
            for entry in page.get("Versions", []):
                if entry["Key"] == key:
                    etag = entry.get("ETag", "").strip('"')
                    versions.append(ImageVersion(bucket, key, _version(entry), etag, False, entry.get("VersionId")))
            for entry in page.get("DeleteMarkers", []):
                if entry["Key"] == key:
                    markers.append(ImageVersion(bucket, key, _version(entry), None, True, entry.get("VersionId")))
        return versions, markers

    def _sha256(self, version: ImageVersion) -> str:
        request = {"Bucket": version.bucket, "Key": version.key}
        if version.version_id:
            request["VersionId"] = version.version_id
        with self._s3.get_object(**request)["Body"] as body:
            return hashlib.sha256(body.read(MAX_IMAGE_BYTES)).hexdigest()

    def _add_answers(self, plan: Plan, rid: str) -> None:
        record = plan.records.get(rid)
        if record is not None:
            plan.answer_ids |= self._answer_ids(record.get("kind"), rid, record["source"].get("sha256"))

    def _answer_ids(self, kind: str | None, rid: str, sha256: str | None) -> set[str]:
        """The paid answers stored for this image and record, of every provider that could have answered."""
        kinds = [kind] if kind else [spec.name for spec in all_kinds()]
        keys = {
            f"{each}#{provider.name}#{scope}"
            for each in kinds
            for provider in providers_for(each)
            for scope in ([f"sha256:{sha256}"] if sha256 else []) + [f"record:{rid}"]
        }
        return self._existing_answers({stored_answer_id(key) for key in keys})

    def _existing_answers(self, ids: set[str]) -> set[str]:
        table = self._resources.answers_table
        if not table or not ids:
            return set()
        found: set[str] = set()
        pending = [{"id": {"S": answer_id}} for answer_id in sorted(ids)]
        while pending:
            batch, pending = pending[:100], pending[100:]
            response = self._dynamodb.batch_get_item(
                RequestItems={table: {"Keys": batch, "ProjectionExpression": "id", "ConsistentRead": True}}
            )
            found |= {item["id"]["S"] for item in response.get("Responses", {}).get(table, [])}
            pending += response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        return found

    # ---------------------------------------------------------------------------------------- removing
    def erase(self, plan: Plan, *, on_progress: Callable[[str], None] = lambda line: None) -> Report:
        """Remove what ``plan`` found, after marking it erased; finds again first (records written since)."""
        erased_at = datetime.now(UTC)
        self.mark(plan, erased_at)
        again = self.find(plan.subject)
        plan.merge(again)
        self.mark(plan, erased_at)
        report = Report(record_ids=sorted(plan.records))
        report.image_versions, report.delete_markers = self._delete_versions(plan.versions)
        on_progress(f"image versions removed: {report.image_versions}")
        report.answers = self._delete_answers(plan.answer_ids)
        rids = plan.record_ids
        objects = {(v.bucket, v.key, v.version_id) for v in plan.versions if not v.delete_marker}
        for queue_url in self._resources.queue_urls if rids else ():
            report.messages += self._delete_messages(queue_url, lambda body: _names(body, rids, objects))
        on_progress(f"failure messages removed: {report.messages}")
        for rid in sorted(rids):
            records, sightings, others = self._delete_partition(rid)
            report.records += records
            report.sightings += sightings
            report.other_items += others
        for marker, sort_key in sorted(plan.stopped):  # last: they lead a later run to the images
            self._dynamodb.delete_item(
                TableName=self._resources.results_table, Key={"pk": {"S": marker}, "sk": {"S": sort_key}}
            )
        report.stopped = len({sort_key for _, sort_key in plan.stopped})
        audit_log.info(
            "erase audit %s",
            json.dumps(
                {
                    "subject_marker": plan.subject.marker,
                    "at": erased_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "records": report.records,
                    "record_ids": report.record_ids,
                    "plate_sightings": report.sightings,
                    "image_versions": report.image_versions,
                    "delete_markers": report.delete_markers,
                    "paid_answers": report.answers,
                    "failure_messages": report.messages,
                    "stopped_uploads": report.stopped,
                }
            ),
        )
        return report

    def mark(self, plan: Plan, erased_at: datetime | None = None) -> None:
        """Write the plan's erasure markers: from now on the pipeline records nothing they cover.

        The subject's own marker, written last, lists the others (digests) and the record ids found, so
        that a later run finds the uploads they stopped, and a run interrupted after it removed the
        licence linking a plate to a VIN still finds that VIN's other records.
        """
        erased_at = erased_at or datetime.now(UTC)
        markers = plan.markers
        for pk in markers[1:]:
            self._put_marker(pk, erased_at, set())
        self._put_marker(markers[0], erased_at, set(markers[1:]), record_ids=plan.record_ids)

    def _put_marker(
        self, pk: str, erased_at: datetime, related: set[str], *, record_ids: set[str] | None = None
    ) -> None:
        values: dict[str, Any] = {
            ":at": {"N": str(epoch_ms(erased_at))},
            ":expires": {"N": str(int(erased_at.timestamp()) + TOMBSTONE_TTL_S)},
        }
        update = "SET erased_at = :at, expires_at = :expires"
        added = []
        if related:
            added.append("related :related")
            values[":related"] = {"SS": sorted(related)}
        if record_ids:  # record ids are digests of bucket, key and version: nothing personal
            added.append("record_ids :record_ids")
            values[":record_ids"] = {"SS": sorted(record_ids)}
        if added:
            update += " ADD " + ", ".join(added)
        self._dynamodb.update_item(
            TableName=self._resources.results_table,
            Key={"pk": {"S": pk}, "sk": {"S": TOMBSTONE_SK}},
            UpdateExpression=update,
            ExpressionAttributeValues=values,
        )

    def _delete_versions(self, versions: list[ImageVersion]) -> tuple[int, int]:
        by_bucket: dict[str, list[ImageVersion]] = {}
        for version in versions:
            by_bucket.setdefault(version.bucket, []).append(version)
        images = markers = 0
        for bucket, listed in by_bucket.items():
            for start in range(0, len(listed), 1000):
                chunk = listed[start : start + 1000]
                response = self._s3.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": [_object_identifier(v) for v in chunk], "Quiet": True},
                )
                if errors := response.get("Errors"):
                    first = errors[0]
                    raise ErasureIncomplete(
                        f"S3 refused to delete {len(errors)} versions, e.g. {first.get('Key')}: "
                        f"{first.get('Code')} {first.get('Message')}"
                    )
                images += sum(not v.delete_marker for v in chunk)
                markers += sum(v.delete_marker for v in chunk)
        return images, markers

    def _delete_answers(self, answer_ids: set[str]) -> int:
        table = self._resources.answers_table
        for answer_id in sorted(answer_ids):
            self._dynamodb.delete_item(TableName=table, Key={"id": {"S": answer_id}})
        return len(answer_ids)

    def _delete_messages(self, queue_url: str, ours: Callable[[dict[str, Any]], bool]) -> int:
        """Delete the queue's messages that are ours; every other one is made visible again at once."""
        removed, seen, others = 0, set[str](), list[str]()
        while len(seen) < QUEUE_SCAN_LIMIT:
            batch = self._sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=RECEIVE_HOLD_S, WaitTimeSeconds=1
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                if message["MessageId"] in seen:  # back after RECEIVE_HOLD_S: not ours, release it again
                    others.append(message["ReceiptHandle"])
                    continue
                seen.add(message["MessageId"])
                if ours(_json(message.get("Body"))):
                    self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    removed += 1
                else:
                    others.append(message["ReceiptHandle"])
        for start in range(0, len(others), 10):
            self._sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
                    for index, receipt in enumerate(others[start : start + 10])
                ],
            )
        return removed

    def _delete_partition(self, rid: str) -> tuple[int, int, int]:
        """Every item of one record: bookkeeping first, then record and sightings together."""
        items = self._partition(rid)
        # Index-bearing items (record, sightings) last, so an interrupted run is found again by them.
        items.sort(key=lambda item: item["sk"] == RECORD_SK or item["sk"].startswith(PLATE_SK_PREFIX))
        table = self._resources.results_table
        deletes = [
            {"Delete": {"TableName": table, "Key": {"pk": {"S": rid}, "sk": {"S": item["sk"]}}}} for item in items
        ]
        for chunk in _chunks_ending_with_last(deletes, TRANSACTION_ITEMS):
            self._dynamodb.transact_write_items(TransactItems=chunk)
        records = sum(item["sk"] == RECORD_SK for item in items)
        sightings = sum(item["sk"].startswith(PLATE_SK_PREFIX) for item in items)
        return records, sightings, len(items) - records - sightings


def _someone_else(record: dict[str, Any], plan: Plan) -> bool:
    """Whether a record names a vehicle, and not this one (a FAILED record names nobody)."""
    if record["id"] in plan.record_ids:
        return False
    plates = set(plate_numbers_named(record))
    vin = index_values(record).get("vin")
    names = plates | ({vin} if vin else set())
    return bool(names) and not (plates & plan.plates or (vin and vin in plan.vins))


def _chunks_ending_with_last(items: list[Any], size: int) -> list[list[Any]]:
    """Chunks of at most ``size``, in order, the last one full: its items go together."""
    chunks: list[list[Any]] = []
    end = len(items)
    while end > 0:
        chunks.insert(0, items[max(0, end - size) : end])
        end -= size
    return chunks


def _names(body: dict[str, Any], rids: set[str], objects: set[tuple[str, str, str | None]]) -> bool:
    """Whether a queued message names one of these records or object versions.

    A failure message names its record id and object; Lambda's on-failure record carries the S3 event.
    """
    if body.get("id") in rids:
        return True
    if (body.get("bucket"), body.get("key"), body.get("version_id")) in objects:
        return True
    payload = body.get("requestPayload")
    if isinstance(payload, dict):
        return any(obj.record_id in rids for obj in parse_s3_event(payload).objects)
    return False


def _json(text: Any) -> dict[str, Any]:
    try:
        body = json.loads(text or "")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _version(entry: dict[str, Any]) -> str | None:
    """The version id a record id is made from: none for an object written while versioning was off."""
    version_id = entry.get("VersionId")
    return None if not version_id or version_id == "null" else version_id


def _object_identifier(version: ImageVersion) -> dict[str, str]:
    identifier = {"Key": version.key}
    # "null" names the version written while versioning was off: without it, S3 would only add a delete marker.
    if version.listed_version_id or version.version_id:
        identifier["VersionId"] = version.listed_version_id or version.version_id or ""
    return identifier
