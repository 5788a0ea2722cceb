"""Erasure markers against the pipeline, with the in-memory fakes (tests/fakes/memory.py).

An upload under way while `vehicle-ocr erase` removed its subject must not write its record back
(nor announce it, nor keep its paid answer); an upload made after the erasure is an upload like any other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from tests.conftest import make_jpeg
from tests.fakes.memory import MemoryPublisher, MemoryS3, MemoryStore, StubRecognizer, TickingClock
from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE
from vehicle_ocr import pipeline as pipeline_module
from vehicle_ocr import shapes
from vehicle_ocr.answers import PaidAnswer, PaidAnswers
from vehicle_ocr.erasure import PLATE, RECORD, VIN, tombstone_item, tombstone_pk
from vehicle_ocr.errors import UpstreamError
from vehicle_ocr.pipeline import Pipeline
from vehicle_ocr.providers.base import ProviderAnswer
from vehicle_ocr.s3_events import parse_s3_event
from vehicle_ocr.settings import Settings
from vehicle_ocr_local.redrive import redrive_event

BUCKET = "vehicle-ocr-images"
JPEG = make_jpeg(seed=31)
ERASED_AT = datetime(2026, 11, 30, 1, 0, 0, tzinfo=UTC)
BEFORE = "2026-11-30T00:59:59.000Z"  # S3's event time of an upload made before the erasure
AFTER = "2026-11-30T01:00:00.500Z"

_LOGGER = Logger(service="vehicle-ocr-unit-erasure")


@pytest.fixture(autouse=True)
def _pipeline_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "logger", _LOGGER)


class MemoryAnswers:
    """Paid answers as ``PaidAnswers`` keeps them (same keys), in a dict: stored once paid, reused after."""

    by_content = True
    key = PaidAnswers.key

    def __init__(self) -> None:
        self.stored: dict[str, ProviderAnswer] = {}

    def register_lambda_context(self, context: Any) -> None:
        """In-progress items do not exist here."""

    def get(self, key: str, call: Any, *, remaining_s: Any) -> PaidAnswer:
        if key in self.stored:
            return PaidAnswer(self.stored[key], reused=True, answered_at="2026-11-30T00:00:00Z")
        self.stored[key] = call()
        return PaidAnswer(self.stored[key], reused=False, answered_at="2026-11-30T00:00:00Z")

    def forget(self, key: str) -> None:
        self.stored.pop(key, None)


@dataclass
class World:
    pipeline: Pipeline
    s3: MemoryS3
    store: MemoryStore
    publisher: MemoryPublisher
    plate: StubRecognizer
    licence: StubRecognizer
    answers: MemoryAnswers

    def upload(self, key: str, *, at: str, body: bytes = JPEG) -> shapes.UploadedObject:
        written = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return shapes.UploadedObject(
            bucket=BUCKET,
            key=key,
            size=len(body),
            etag=written["ETag"].strip('"'),
            version_id=written.get("VersionId"),
            event_time=at,
        )

    def erase(self, what: str, value: str) -> None:
        """What `vehicle-ocr erase` writes first: the marker."""
        marker = tombstone_item(tombstone_pk(what, value), erased_at=ERASED_AT)
        self.store.table[(marker["pk"]["S"], marker["sk"]["S"])] = marker


def world(*, plate: list[Any] | None = None, licence: list[Any] | None = None) -> World:
    plate_stub = StubRecognizer("tianapi", "plate", plate or [])
    licence_stub = StubRecognizer("apizero", "vehicle_license", licence or [])
    s3, store, publisher, answers = MemoryS3(versioned=True), MemoryStore(), MemoryPublisher(), MemoryAnswers()
    pipeline = Pipeline(
        settings=Settings(results_table="t", failure_queue_url="q", event_bus_name="b", providers={}),
        s3_client=s3,
        store=store,
        publisher=publisher,
        recognizers={"plate": (plate_stub,), "vehicle_license": (licence_stub,)},
        answers=answers,  # type: ignore[arg-type]  # PaidAnswers' interface, in memory
        clock=TickingClock(),
        sleep=lambda seconds: None,
    )
    return World(pipeline, s3, store, publisher, plate_stub, licence_stub, answers)


def plates(*numbers: str) -> ProviderAnswer:
    return ProviderAnswer("tianapi", [{"number": number, "color": "blue"} for number in numbers], request_id="r-1")


def non_marker_items(w: World) -> list[dict[str, Any]]:
    """Items outside the erasure markers' partitions (the markers, and the uploads they stopped)."""
    return [item for item in w.store.items() if not item["pk"].startswith("ERASED#")]


def noted_uploads(w: World, what: str, value: str) -> list[tuple[str, str, str | None]]:
    """The uploads noted under a marker: where their images are, for the next erase."""
    marker = tombstone_pk(what, value)
    return [
        (item["bucket"], item["object_key"], item.get("version_id"))
        for item in w.store.items()
        if item["pk"] == marker and item["sk"].startswith("UPLOAD#")
    ]


def test_plate_erased_while_its_photo_was_recognised_is_not_written_back():
    # Given a plate photo uploaded before its plate was erased, recognised only after the erasure
    w = world(plate=[plates("沪A12345")])
    obj = w.upload("plates/cam1/car.jpg", at=BEFORE)
    w.erase(PLATE, "沪A12345")

    # When the pipeline finishes recognising it
    outcome = w.pipeline.process(obj)

    # Then nothing is recorded or announced, and the answer it paid for is not kept
    assert (outcome.status, outcome.detail) == (None, "erased")
    assert non_marker_items(w) == []
    assert w.publisher.events == [] and w.publisher.messages == []
    assert w.answers.stored == {}
    assert w.plate.calls == 1
    # And the upload is noted under the plate's marker, so the next erase of the plate removes its image
    assert noted_uploads(w, PLATE, "沪A12345") == [(BUCKET, "plates/cam1/car.jpg", obj.version_id)]
    assert "沪A12345" not in json.dumps(w.store.items(), ensure_ascii=False)


def test_same_bytes_uploaded_after_the_erasure_are_recognised_and_paid_again():
    # Given a photo recognised (and paid) before its plate was erased, the erasure dropping its answer
    w = world(plate=[plates("沪A12345"), plates("沪A12345")])
    w.pipeline.process(w.upload("plates/cam1/car.jpg", at=BEFORE))
    w.store.table.clear()  # what the erasure removes: records, sightings, the paid answer
    w.answers.stored.clear()
    w.erase(PLATE, "沪A12345")

    # When the same bytes are uploaded again after the erasure
    outcome = w.pipeline.process(w.upload("plates/cam1/car.jpg", at=AFTER))

    # Then they are recognised as a new upload: paid again, recorded, announced
    assert (outcome.status, outcome.detail) == ("SUCCEEDED", "recognised")
    assert w.plate.calls == 2
    assert [record["plates"][0]["number"] for record in w.store.records()] == ["沪A12345"]
    assert len(w.publisher.events) == 2


def test_vin_marker_stops_a_licence_and_its_plate_sighting():
    # Given a licence uploaded before its VIN was erased
    w = world(licence=[ProviderAnswer("apizero", DEFAULT_VEHICLE_LICENSE)])
    obj = w.upload("vehicle-licenses/front.jpg", at=BEFORE)
    w.erase(VIN, "LSVAU218XN2183294")

    # When it is recognised after the erasure
    outcome = w.pipeline.process(obj)

    # Then neither the record nor its plate sighting is written, nothing names the owner anywhere
    assert outcome.detail == "erased"
    assert non_marker_items(w) == []
    assert w.publisher.events == [] and w.publisher.messages == []
    assert "张三" not in json.dumps(w.store.items(), ensure_ascii=False)


def test_lambda_retry_of_an_erased_version_records_no_failure_and_sends_no_message():
    # Given an upload whose image `vehicle-ocr erase` removed (with a marker for the version) before Lambda retried it
    w = world()
    obj = w.upload("plates/cam1/car.jpg", at=BEFORE)
    w.s3.objects.clear()
    w.erase(RECORD, obj.record_id)

    # When the retry runs: the object is gone, which would otherwise end as a FAILED record and a message
    outcome = w.pipeline.process(obj)

    # Then nothing is recorded and no failure message is sent; no provider was called
    assert outcome.detail == "erased"
    assert non_marker_items(w) == []
    assert w.publisher.messages == []
    assert w.plate.calls == 0


def test_marker_of_another_plate_changes_nothing():
    # Given another plate erased
    w = world(plate=[plates("沪B99999")])
    w.erase(PLATE, "沪A12345")

    # When a photo of this plate, uploaded before, is recognised
    outcome = w.pipeline.process(w.upload("plates/cam2/other.jpg", at=BEFORE))

    # Then it is recorded and announced as usual, its answer kept
    assert outcome.status == "SUCCEEDED"
    assert [s["plate_number"] for s in w.store.sightings()] == ["沪B99999"]
    assert len(w.answers.stored) == 1


def test_marker_holds_no_plate_number_and_nothing_an_index_is_keyed_on():
    # Given a marker for a plate
    marker = tombstone_item(tombstone_pk(PLATE, "沪A12345"), erased_at=ERASED_AT)

    # Then it names the plate only by a digest, carries a TTL, and no index attribute
    assert "沪A12345" not in json.dumps(marker, ensure_ascii=False)
    assert set(marker) == {"pk", "sk", "erased_at", "expires_at"}
    assert int(marker["expires_at"]["N"]) > (ERASED_AT + timedelta(days=14)).timestamp()


def test_a_redrive_after_the_erasure_does_not_write_the_erased_plate_back():
    # Given a plate photo that failed (quota spent) before its plate was erased, its failure message queued
    w = world(plate=[UpstreamError("tianapi", 150), plates("沪A12345")])
    w.pipeline.process(w.upload("plates/cam1/car.jpg", at=BEFORE))
    (message,) = w.publisher.messages
    w.erase(PLATE, "沪A12345")

    # When the quota is topped up and the operator redrives the failure (`vehicle-ocr redrive`, the console)
    redriven = parse_s3_event(redrive_event(message["body"], message_id="m-1"))
    (outcome,) = w.pipeline.process_event(redriven)

    # Then the plate the redrive read is not written back: no record, sighting or event names it
    assert outcome.detail == "erased"
    assert "沪A12345" not in json.dumps(w.store.items(), ensure_ascii=False)
    assert w.publisher.events == []
