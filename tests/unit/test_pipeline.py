"""The pipeline's logic, driven directly against in-memory fakes (tests/fakes/memory.py): milliseconds per test.

The end-to-end tests (tests/integration) check the same rules against the emulated AWS; these pin down
the decisions themselves: one record per upload, one announcement, what each upstream answer costs,
how a provider chain falls back, and that what is recorded stays storable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from tests.conftest import load_event, make_jpeg
from tests.fakes.memory import MemoryPublisher, MemoryS3, MemoryStore, StubRecognizer, TickingClock
from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE
from vehicle_ocr import pipeline as pipeline_module
from vehicle_ocr import shapes
from vehicle_ocr.errors import PipelineError, UpstreamError
from vehicle_ocr.pipeline import OutcomeNotRecorded, Pipeline, TransientFailure
from vehicle_ocr.providers.base import ProviderAnswer
from vehicle_ocr.publishing import PublishError
from vehicle_ocr.s3_events import REDRIVE_MARKER, ParsedEvent, parse_s3_event
from vehicle_ocr.settings import Settings
from vehicle_ocr.storage import ANNOUNCE_LEASE_S

BUCKET = "vehicle-ocr-images"  # the bucket the sample events name
PLATE_KEY = "plates/cam1/car.jpg"
LICENSE_KEY = "vehicle-licenses/front.jpg"
SEQUENCER = "0A1B2C3D4E5F678901"
JPEG = make_jpeg(seed=11)


# --- building blocks ------------------------------------------------------------------------------

# The pipeline logs through a Powertools child logger, whose parent the Lambda handler creates at import.
# Here a logger of its own stands in for it, leaving the process-wide "vehicle-ocr" loggers untouched.
_LOGGER = Logger(service="vehicle-ocr-unit-pipeline")


@pytest.fixture(autouse=True)
def _pipeline_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "logger", _LOGGER)


@dataclass
class World:
    """One pipeline and every fake it talks to."""

    pipeline: Pipeline
    s3: MemoryS3
    store: MemoryStore
    publisher: MemoryPublisher
    plate: StubRecognizer
    licence: StubRecognizer
    local: StubRecognizer
    sleeps: list[float] = field(default_factory=list)
    clock: TickingClock = field(default_factory=TickingClock)

    def a_minute_later(self) -> None:
        """Lambda retries a failed asynchronous invocation after about a minute (then two)."""
        self.clock.now += timedelta(minutes=1)

    def upload(self, key: str, body: bytes = JPEG, *, bucket: str = BUCKET) -> shapes.UploadedObject:
        """Put an object in S3 and return what its event would announce."""
        written = self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        return shapes.UploadedObject(
            bucket=bucket,
            key=key,
            size=len(body),
            etag=written["ETag"].strip('"'),
            version_id=written.get("VersionId"),
            sequencer=SEQUENCER,
        )

    def stage(self, event_name: str, body: bytes = JPEG) -> ParsedEvent:
        """A sample event, its objects put in S3 with the ETags it names, parsed as the handler parses it."""
        parsed = parse_s3_event(load_event(event_name))
        for obj in parsed.objects:
            self.s3.put_object(Bucket=obj.bucket, Key=obj.key, Body=body, ETag=obj.etag)
        return parsed

    def record(self) -> dict[str, Any]:
        (record,) = self.store.records()
        return record


def world(
    *,
    plate: list[Any] | None = None,
    licence: list[Any] | None = None,
    local: list[Any] | None = None,
    chain: tuple[str, ...] = ("tianapi",),
    versioned: bool = False,
    **settings: Any,
) -> World:
    """A pipeline whose plate chain is ``chain`` (tianapi and/or local), with scripted providers.

    ``providers={}``: no provider is paced (pacing has its own tests and would sleep for real).
    """
    stubs = {
        "tianapi": StubRecognizer("tianapi", "plate", plate or []),
        "local": StubRecognizer("local", "plate", local or []),
    }
    licence_stub = StubRecognizer("apizero", "vehicle_license", licence or [])
    s3, store, publisher = MemoryS3(versioned=versioned), MemoryStore(), MemoryPublisher()
    sleeps: list[float] = []
    clock = TickingClock()
    pipeline = Pipeline(
        settings=Settings(
            results_table="t", failure_queue_url="q", event_bus_name="b", **{"providers": {}, **settings}
        ),
        s3_client=s3,
        store=store,
        publisher=publisher,
        recognizers={"plate": tuple(stubs[name] for name in chain), "vehicle_license": (licence_stub,)},
        clock=clock,
        sleep=sleeps.append,
    )
    return World(pipeline, s3, store, publisher, stubs["tianapi"], licence_stub, stubs["local"], sleeps, clock)


def plates(*numbers: str, provider: str = "tianapi") -> ProviderAnswer:
    return ProviderAnswer(provider, [{"number": number, "color": "blue"} for number in numbers], request_id="r-1")


def licence_answer(**fields: Any) -> ProviderAnswer:
    return ProviderAnswer("apizero", {**DEFAULT_VEHICLE_LICENSE, **fields})


def timeout() -> PipelineError:
    """A read timeout: the request went out, no answer came back; the provider may have billed it."""
    error = PipelineError("tianapi", "UPSTREAM_TIMEOUT", "no answer within 20s")
    error.possibly_billed = True
    return error


def code(number: int, provider: str = "tianapi") -> UpstreamError:
    return UpstreamError(provider, number)


# --- success, duplicates, crashes ------------------------------------------------------------------


def test_success_is_one_record_one_event_and_marked_notified():
    # Given tianapi reads one plate
    w = world(plate=[plates("沪A·12345")])
    parsed = w.stage("s3-put-plate.json")

    # When the sample S3 event is processed
    (outcome,) = w.pipeline.process_event(parsed)

    # Then one SUCCEEDED record holds the normalised plate, what it cost, and where it came from
    assert (outcome.status, outcome.detail, outcome.provider, outcome.upstream_calls) == (
        "SUCCEEDED",
        "recognised",
        "tianapi",
        1,
    )
    record = w.record()
    assert record["id"] == outcome.record_id == parsed.objects[0].record_id
    assert (record["status"], record["kind"], record["provider"]) == ("SUCCEEDED", "plate", "tianapi")
    assert [plate["number"] for plate in record["plates"]] == ["沪A12345"]
    assert (record["upstream_attempts"], record["possibly_billed"], record["reused"]) == (1, 0, False)
    assert record["source"]["sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert record["source"]["etag"] == "0123456789abcdef0123456789abcdef"
    assert "fallback" not in record and "truncated" not in record
    # And one plate sighting, one success event with identifiers only, no failure message
    assert [s["plate_number"] for s in w.store.sightings()] == ["沪A12345"]
    (event,) = w.publisher.events
    assert event["detail-type"] == "Plate Recognized"
    assert event["detail"] == {"id": record["id"], "kind": "plate", "source": record["source"], "plates": ["沪A12345"]}
    assert w.publisher.messages == []
    # And the record is marked announced; the exact version was read (IfMatch on an unversioned bucket)
    assert w.store.stored(record["id"]).notified
    assert w.s3.requests == [
        {"Bucket": BUCKET, "Key": PLATE_KEY, "VersionId": None, "IfMatch": "0123456789abcdef0123456789abcdef"}
    ]
    assert w.plate.calls == 1 and w.sleeps == []


def test_vehicle_licence_event_names_the_vehicle_but_not_its_owner():
    # Given apizero reads the document's example licence
    w = world(licence=[licence_answer()])

    # When the sample licence event is processed
    (outcome,) = w.pipeline.process_event(w.stage("s3-put-vehicle-license.json"))

    # Then the record holds the licence, indexed by plate and VIN; the event carries plate and VIN only
    record = w.record()
    assert (outcome.status, record["kind"], record["provider"]) == ("SUCCEEDED", "vehicle_license", "apizero")
    assert record["vehicle_license"]["owner"] == "张三"
    (item,) = [item for item in w.store.items() if item["sk"] == "RECORD"]
    assert item["vin"] == "LSVAU218XN2183294"
    assert [s["plate_number"] for s in w.store.sightings()] == ["沪A12345"]
    (event,) = w.publisher.events
    assert event["detail-type"] == "Vehicle License Recognized"
    assert (event["detail"]["plate_number"], event["detail"]["vin"]) == ("沪A12345", "LSVAU218XN2183294")
    assert "张三" not in json.dumps(event, ensure_ascii=False)


def test_duplicate_delivery_neither_calls_nor_announces_again():
    # Given an upload already recognised and announced
    w = world(plate=[plates("沪A12345")])
    obj = w.upload(PLATE_KEY)
    w.pipeline.process(obj)

    # When S3 delivers its event again
    outcome = w.pipeline.process(obj)

    # Then the stored outcome is reported, with no second call, record or announcement
    assert (outcome.status, outcome.detail, outcome.upstream_calls) == ("SUCCEEDED", "duplicate", 0)
    assert w.plate.calls == 1
    assert len(w.store.records()) == 1
    assert len(w.publisher.events) == 1


def test_crash_between_recording_and_announcing_is_announced_once_by_the_retry():
    # Given EventBridge fails the first announcement (the invocation dies after the record was written)
    w = world(plate=[plates("沪A12345")])
    parsed = w.stage("s3-put-plate.json")
    w.publisher.fail_next("announce_success", PublishError("EventBridge refused the event"))

    # When the event is processed, the invocation fails so that Lambda retries it
    with pytest.raises(OutcomeNotRecorded):
        w.pipeline.process_event(parsed)
    record_id = parsed.objects[0].record_id
    assert not w.store.stored(record_id).notified
    assert w.publisher.events == []

    # And Lambda's retry, a minute later, then a late duplicate, deliver the same event
    w.a_minute_later()
    (retried,) = w.pipeline.process_event(parsed)
    (late,) = w.pipeline.process_event(parsed)

    # Then the outcome was announced exactly once, and the upstream paid once
    assert (retried.detail, late.detail) == ("duplicate", "duplicate")
    assert len(w.publisher.events) == 1
    assert w.store.stored(record_id).notified
    assert w.plate.calls == 1
    assert len(w.store.records()) == 1 and len(w.store.sightings()) == 1


def test_crash_after_announcing_but_before_marking_announces_again_with_the_same_id():
    # Given DynamoDB fails to mark the record announced after the event went out
    w = world(plate=[plates("沪A12345")])
    obj = w.upload(PLATE_KEY)
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")
    w.store.fail_next("mark_notified", throttled)

    # When the object is processed, then by Lambda's retry
    with pytest.raises(ClientError):
        w.pipeline.process(obj)
    w.a_minute_later()
    w.pipeline.process(obj)

    # Then the retry publishes again, as docs/contract.md allows (consumers deduplicate on detail.id), and
    # does not pay again
    assert [e["detail"]["id"] for e in w.publisher.events] == [obj.record_id, obj.record_id]
    assert w.store.stored(obj.record_id).notified
    assert w.plate.calls == 1


def test_failure_message_lost_in_a_crash_is_sent_by_the_retry():
    # Given SQS fails the first failure message of a terminal failure
    w = world(plate=[code(150)])
    obj = w.upload(PLATE_KEY)
    w.publisher.fail_next("report_failure", ClientError({"Error": {"Code": "ServiceUnavailable"}}, "SendMessage"))

    # When the object is processed, then processed again by Lambda's retry
    with pytest.raises(ClientError):
        w.pipeline.process(obj)
    w.a_minute_later()
    outcome = w.pipeline.process(obj)

    # Then one FAILED record, one message, one call
    assert (outcome.status, outcome.detail) == ("FAILED", "duplicate")
    assert [m["body"]["error"]["code"] for m in w.publisher.messages] == ["150"]
    assert w.plate.calls == 1


def test_concurrent_delivery_that_records_first_announces_alone():
    # Given a second delivery of the same object records its outcome while the first is calling tianapi
    w = world()
    obj = w.upload(PLATE_KEY)
    inner: list[Any] = []

    def concurrent_delivery_first(image: bytes) -> ProviderAnswer:
        inner.append(w.pipeline.process(obj))
        return plates("沪A12345")

    w.plate.then(concurrent_delivery_first, plates("沪A12345"))

    # When the first delivery gets its answer and tries to record it
    outcome = w.pipeline.process(obj)

    # Then its conditional write loses: it announces nothing; the winner's record and event are the only ones
    assert (outcome.status, outcome.detail) == (None, "duplicate")
    assert inner[0].detail == "recognised"
    assert len(w.store.records()) == 1
    assert len(w.publisher.events) == 1


def test_duplicate_arriving_while_the_writer_announces_leaves_the_announcement_to_it():
    # Given a terminal failure, and a duplicate delivery of the same event (another invocation) that
    # arrives after the record was written but while the writing invocation sends its failure message
    w = world(plate=[code(150)])
    obj = w.upload(PLATE_KEY)
    send = w.publisher.report_failure
    during: list[Any] = []

    def duplicate_arrives_then_send(message: dict[str, Any]) -> None:
        during.append(w.pipeline.process(obj, request_id="duplicate-invocation"))
        send(message)

    w.publisher.report_failure = duplicate_arrives_then_send  # type: ignore[method-assign]

    # When the first delivery records and announces
    outcome = w.pipeline.process(obj, request_id="writing-invocation")

    # Then the duplicate announced nothing: one failure message in all, one paid call
    assert (outcome.status, outcome.detail) == ("FAILED", "failed")
    assert [o.detail for o in during] == ["duplicate"]
    assert [m["body"]["error"]["code"] for m in w.publisher.messages] == ["150"]
    assert w.plate.calls == 1


def written_but_not_announced(w, failure: BaseException):
    """An upload whose invocation ("writing-invocation") wrote its record, then failed at announcing it."""
    obj = w.upload(PLATE_KEY)
    w.publisher.fail_next("announce_success", failure)
    with pytest.raises(type(failure)):
        w.pipeline.process(obj, request_id="writing-invocation")
    return obj


def test_writer_that_crashed_before_announcing_is_announced_by_its_own_retry_not_by_a_duplicate():
    # Given an invocation that wrote its record and died before announcing (killed: nothing after the write ran)
    w = world(plate=[plates("沪A12345")])
    obj = written_but_not_announced(w, SystemExit("the invocation was killed here"))  # no except runs

    # When a duplicate delivery comes first, then Lambda's retry of the writer (same request id) a minute later
    duplicate = w.pipeline.process(obj, request_id="duplicate-invocation")
    assert w.publisher.events == []
    w.a_minute_later()
    retried = w.pipeline.process(obj, request_id="writing-invocation")

    # Then the outcome was announced once, by the retry, and paid once
    assert (duplicate.detail, retried.detail) == ("duplicate", "duplicate")
    assert len(w.publisher.events) == 1
    assert w.plate.calls == 1


def test_a_writer_that_failed_to_announce_lets_any_later_delivery_announce():
    # Given an invocation that wrote its record and then could not announce it (EventBridge refused)
    w = world(plate=[plates("沪A12345")])
    obj = written_but_not_announced(w, PublishError("EventBridge refused the event"))

    # When the event is sent again by someone else at once (the dead-letter queue's payload, resent)
    outcome = w.pipeline.process(obj, request_id="resent-by-the-operator")

    # Then that delivery announces it: once, without paying again
    assert outcome.detail == "duplicate"
    assert len(w.publisher.events) == 1
    assert w.plate.calls == 1


def test_a_record_whose_writer_is_gone_for_good_is_announced_by_a_later_delivery():
    # Given a record written by an invocation that died before announcing and ran out of retries
    w = world(plate=[plates("沪A12345")])
    obj = written_but_not_announced(w, PublishError("the invocation died here"))

    # When another delivery of the object comes after the writer's lease (ANNOUNCE_LEASE_S)
    w.clock.now += timedelta(seconds=ANNOUNCE_LEASE_S + 1)
    outcome = w.pipeline.process(obj, request_id="late-duplicate")

    # Then that delivery announces it, once, without paying again
    assert outcome.detail == "duplicate"
    assert len(w.publisher.events) == 1
    assert w.plate.calls == 1


class UnreachableBudget:
    """The fleet's rate budget when DynamoDB cannot be reached: every draw fails."""

    def wait(self, max_wait_s: float = float("inf")) -> float:
        raise ClientError({"Error": {"Code": "ServiceUnavailable"}}, "UpdateItem")


def test_an_unreachable_rate_budget_ends_the_upload_failed_and_retryable_not_unrecorded():
    # Given the rate budget's table cannot be reached
    w = world(plate=[plates("沪A12345")])
    w.pipeline._recognition.pacers["tianapi"] = UnreachableBudget()  # type: ignore[assignment]
    obj = w.upload(PLATE_KEY)

    # When Lambda invokes the upload and retries it, up to its last attempt
    for _attempt in range(w.pipeline.settings.async_attempts - 1):
        with pytest.raises(TransientFailure):
            w.pipeline.process(obj)
    outcome = w.pipeline.process(obj)

    # Then the last attempt records it FAILED, retryable, with one failure message; the provider was never called
    assert (outcome.status, outcome.error_code) == ("FAILED", "RATE_BUDGET_UNAVAILABLE")
    assert w.record()["error"]["retryable"] is True
    assert [m["body"]["error"]["code"] for m in w.publisher.messages] == ["RATE_BUDGET_UNAVAILABLE"]
    assert w.plate.calls == 0


def test_one_failing_object_does_not_stop_the_others_of_an_event():
    # Given an event naming three objects, and EventBridge refusing the first announcement
    w = world(plate=[plates("沪A11111"), plates("沪A33333")], licence=[licence_answer()])
    parsed = w.stage("s3-put-multiple-records.json")
    w.publisher.fail_next("announce_success", PublishError("EventBridge refused the event"))

    # When it is processed, and retried by Lambda
    with pytest.raises(OutcomeNotRecorded) as caught:
        w.pipeline.process_event(parsed)
    announced_first = len(w.publisher.events)
    w.a_minute_later()
    retried = w.pipeline.process_event(parsed)

    # Then the first invocation still recorded and announced the other two, and named the one it could not
    assert parsed.objects[0].record_id in str(caught.value)
    assert parsed.objects[1].record_id not in str(caught.value)
    assert announced_first == 2
    assert [o.detail for o in retried] == ["duplicate"] * 3
    # And in the end: three records, three events, one call each
    assert sorted(r["status"] for r in w.store.records()) == ["SUCCEEDED"] * 3
    assert len(w.publisher.events) == 3
    assert (w.plate.calls, w.licence.calls) == (2, 1)


# --- what each upstream answer costs ---------------------------------------------------------------


@pytest.mark.parametrize("number", [150, 110, 270, 999])  # quota, withdrawn, bad image, undocumented
def test_terminal_upstream_code_fails_at_once(number):
    # Given tianapi answers a terminal code
    w = world(plate=[code(number)])
    obj = w.upload(PLATE_KEY)

    # When the object is processed
    outcome = w.pipeline.process(obj)

    # Then one call, one FAILED record carrying the code unchanged, one failure message
    assert (outcome.status, outcome.error_code, outcome.upstream_calls) == ("FAILED", str(number), 1)
    record = w.record()
    assert record["error"]["code"] == str(number)
    assert (record["error"]["source"], record["error"]["provider"], record["error"]["retryable"]) == (
        "upstream",
        "tianapi",
        False,
    )
    assert (record["upstream_attempts"], record["possibly_billed"]) == (1, 0)
    (message,) = w.publisher.messages
    assert message["body"]["error"] == record["error"]
    assert message["body"]["attempts"] == 1
    assert message["attributes"] == {"error_code": str(number), "kind": "plate", "retryable": "false"}
    assert w.publisher.events == []
    assert w.plate.calls == 1 and w.sleeps == []
    assert w.store.stored(record["id"]).notified


def test_transient_code_is_retried_then_handed_to_lambda_until_the_last_attempt():
    # Given tianapi is overloaded (130) for every call
    w = world(plate=[code(130) for _ in range(9)])
    obj = w.upload(PLATE_KEY)

    # When Lambda runs the first two asynchronous attempts
    for attempt in (1, 2):
        with pytest.raises(TransientFailure):
            w.pipeline.process(obj)
        # Then each makes 3 calls, with backoff between them, and records nothing yet
        assert w.plate.calls == 3 * attempt
        assert w.store.records() == [] and w.publisher.messages == []
        assert w.store.history(obj.record_id).invocations == attempt
    assert len(w.sleeps) == 4
    assert all(0 <= delay <= 0.5 * 2 for delay in w.sleeps)

    # When the last attempt (settings.async_attempts = 3) fails the same way
    outcome = w.pipeline.process(obj)

    # Then it records FAILED, retryable, with the calls of every attempt
    assert (outcome.status, outcome.error_code, outcome.upstream_calls) == ("FAILED", "130", 3)
    record = w.record()
    assert record["error"]["retryable"] is True
    assert (record["upstream_attempts"], record["possibly_billed"]) == (9, 0)
    (message,) = w.publisher.messages
    assert message["body"]["attempts"] == 9
    assert message["attributes"]["retryable"] == "true"
    assert w.plate.calls == 9


def test_transient_failure_in_process_event_fails_the_invocation():
    # Given tianapi is under maintenance (120) for the whole invocation
    w = world(plate=[code(120) for _ in range(3)], async_attempts=2)

    # When the event is processed
    # Then the invocation fails (Lambda retries it later) and nothing is recorded or announced
    with pytest.raises(OutcomeNotRecorded):
        w.pipeline.process_event(w.stage("s3-put-plate.json"))
    assert w.store.records() == [] and w.publisher.messages == [] and w.publisher.events == []


def test_single_async_attempt_records_failed_at_once():
    # Given Lambda makes a single asynchronous attempt
    w = world(plate=[code(130) for _ in range(3)], async_attempts=1)

    # When tianapi stays overloaded
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then the first attempt is the last: FAILED retryable after its 3 calls
    assert (outcome.status, outcome.error_code) == ("FAILED", "130")
    assert w.record()["upstream_attempts"] == 3


def test_transient_failure_recovering_on_lambdas_retry_counts_every_call():
    # Given tianapi is overloaded for the first invocation's 3 calls, then answers
    w = world(plate=[code(130), code(130), code(130), plates("沪A12345")])
    obj = w.upload(PLATE_KEY)

    # When Lambda runs the invocation, then its retry
    with pytest.raises(TransientFailure):
        w.pipeline.process(obj)
    outcome = w.pipeline.process(obj)

    # Then the retry succeeds, and the record counts the calls of both attempts
    assert (outcome.status, outcome.upstream_calls) == ("SUCCEEDED", 1)
    assert w.record()["upstream_attempts"] == 4
    assert w.publisher.messages == [] and len(w.publisher.events) == 1


def test_no_retry_without_time_left_in_the_invocation():
    # Given an invocation with too little time left for another call after backing off
    w = world(plate=[code(130)])
    obj = w.upload(PLATE_KEY)

    # When tianapi answers 130
    # Then the call is not retried in this invocation: Lambda retries it later
    with pytest.raises(TransientFailure):
        w.pipeline.process(obj, remaining_s=lambda: 10.0)
    assert w.plate.calls == 1 and w.sleeps == []


def test_possibly_billed_timeout_is_retried_once_then_fails_not_retryable():
    # Given every call to tianapi times out after the request went out (it may have been billed)
    w = world(plate=[timeout(), timeout(), timeout()])

    # When the object is processed (UPSTREAM_TIMEOUT_RETRIES=1, the default)
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then one retry, no more, not even by Lambda: FAILED, not retryable, saying what it may have cost
    assert (outcome.status, outcome.error_code, outcome.upstream_calls, outcome.possibly_billed) == (
        "FAILED",
        "UPSTREAM_TIMEOUT",
        2,
        2,
    )
    record = w.record()
    assert record["error"]["retryable"] is False
    assert "may have been billed" in record["error"]["message"]
    assert (record["upstream_attempts"], record["possibly_billed"]) == (2, 2)
    (message,) = w.publisher.messages
    assert (message["body"]["attempts"], message["attributes"]["retryable"]) == (2, "false")
    assert w.plate.calls == 2


def test_possibly_billed_timeout_is_not_retried_with_no_timeout_retries():
    # Given UPSTREAM_TIMEOUT_RETRIES=0 and a timeout
    w = world(plate=[timeout()], timeout_retries=0)

    # When the object is processed
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then one call, FAILED not retryable
    assert (outcome.status, outcome.error_code, outcome.upstream_calls) == ("FAILED", "UPSTREAM_TIMEOUT", 1)
    record = w.record()
    assert (record["error"]["retryable"], record["upstream_attempts"], record["possibly_billed"]) == (False, 1, 1)
    assert w.plate.calls == 1


def test_timeout_budget_spans_lambdas_retries():
    # Given the first invocation: a timeout (maybe billed), then 130 twice; the second: another timeout
    w = world(plate=[timeout(), code(130), code(130), timeout()])
    obj = w.upload(PLATE_KEY)

    # When Lambda runs the invocation, then its retry
    with pytest.raises(TransientFailure):
        w.pipeline.process(obj)
    outcome = w.pipeline.process(obj)

    # Then the retry's timeout was the upload's second possibly billed call: FAILED at once, not retryable
    assert (outcome.status, outcome.error_code) == ("FAILED", "UPSTREAM_TIMEOUT")
    record = w.record()
    assert record["error"]["retryable"] is False
    assert (record["upstream_attempts"], record["possibly_billed"]) == (4, 2)
    assert w.plate.calls == 4


def test_unusable_billed_answer_fails_not_retryable_and_keeps_the_answer():
    # Given tianapi answers code 200 with a result of an unknown shape (billed, unusable)
    payload = {"result": "oops", "code": 200}
    w = world(plate=[ProviderAnswer("tianapi", payload, unusable="result is a str")])

    # When the object is processed
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then FAILED UPSTREAM_BAD_RESPONSE, not retryable, the answer kept for the operator, one call
    assert (outcome.status, outcome.error_code, outcome.upstream_calls) == ("FAILED", "UPSTREAM_BAD_RESPONSE", 1)
    record = w.record()
    assert (record["error"]["source"], record["error"]["provider"], record["error"]["retryable"]) == (
        "pipeline",
        "tianapi",
        False,
    )
    assert "result is a str" in record["error"]["message"]
    assert record["raw_answer"] == payload
    assert record["upstream_attempts"] == 1
    (message,) = w.publisher.messages
    assert message["attributes"] == {"error_code": "UPSTREAM_BAD_RESPONSE", "kind": "plate", "retryable": "false"}
    assert "raw_answer" not in message["body"]
    assert w.plate.calls == 1


def test_answer_without_a_plate_fails_no_plate_found():
    # Given tianapi answers (and bills) an empty result
    w = world(plate=[ProviderAnswer("tianapi", [])])

    # When the object is processed
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then FAILED NO_PLATE_FOUND after that one call
    assert (outcome.status, outcome.error_code) == ("FAILED", "NO_PLATE_FOUND")
    assert w.record()["upstream_attempts"] == 1
    assert w.plate.calls == 1


# --- provider chains -------------------------------------------------------------------------------


def test_chain_falls_back_when_the_quota_is_spent():
    # Given the chain tianapi,local and tianapi out of quota (150)
    w = world(chain=("tianapi", "local"), plate=[code(150)], local=[plates("沪A12345", provider="local")])

    # When the object is processed
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then the offline engine answered, and the record says who could not
    assert (outcome.status, outcome.provider, outcome.fallbacks) == ("SUCCEEDED", "local", (("tianapi", "150"),))
    record = w.record()
    assert record["provider"] == "local"
    assert record["fallback"] == [{"provider": "tianapi", "code": "150"}]
    assert record["upstream_attempts"] == 2  # one request to each provider asked
    assert (w.plate.calls, w.local.calls) == (1, 1)
    assert w.publisher.messages == [] and len(w.publisher.events) == 1


@pytest.mark.parametrize(
    ("first", "calls", "fallback_code"),
    [
        ([code(130) for _ in range(3)], 3, "130"),  # still unavailable after its retries
        ([ProviderAnswer("tianapi", "<html>", unusable="an HTML page")], 1, "UPSTREAM_BAD_RESPONSE"),
        ([code(140)], 1, "140"),  # key or whitelist wrong
    ],
)
def test_chain_falls_back_for_reasons_not_the_images(first, calls, fallback_code):
    # Given the chain tianapi,local and tianapi unable to answer for a reason of its own
    w = world(chain=("tianapi", "local"), plate=first, local=[plates("沪A12345", provider="local")])

    # When the object is processed
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then the next provider answered, in the same invocation
    assert (outcome.status, outcome.provider) == ("SUCCEEDED", "local")
    assert w.record()["fallback"] == [{"provider": "tianapi", "code": fallback_code}]
    assert (w.plate.calls, w.local.calls) == (calls, 1)


@pytest.mark.parametrize("number", [250, 260, 290])
def test_chain_never_sends_an_unreadable_image_on(number):
    # Given the chain tianapi,local and tianapi saying the image cannot be read
    w = world(chain=("tianapi", "local"), plate=[code(number)])

    # When the object is processed
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then FAILED with tianapi's code; the offline engine never saw the image
    assert (outcome.status, outcome.error_code, outcome.fallbacks) == ("FAILED", str(number), ())
    record = w.record()
    assert (record["provider"], record["error"]["code"]) == ("tianapi", str(number))
    assert "fallback" not in record
    assert w.local.calls == 0


def test_chain_whose_last_provider_fails_records_its_error_and_the_fallback():
    # Given tianapi out of quota and the offline engine finding no plate
    w = world(
        chain=("tianapi", "local"), plate=[code(150)], local=[ProviderAnswer("local", [{"number": "", "color": ""}])]
    )

    # When the object is processed
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then FAILED with the last provider's error, and the fallback that led there
    assert (outcome.status, outcome.provider, outcome.error_code) == ("FAILED", "local", "NO_PLATE_FOUND")
    record = w.record()
    assert record["fallback"] == [{"provider": "tianapi", "code": "150"}]
    (message,) = w.publisher.messages
    assert message["body"]["error"]["code"] == "NO_PLATE_FOUND"


# --- what is recorded stays bounded and storable ---------------------------------------------------


def test_more_than_twenty_plates_keep_the_first_twenty():
    # Given tianapi reads 151 plates in one image
    numbers = [f"沪A{n:05d}" for n in range(151)]
    w = world(plate=[plates(*numbers)])

    # When the object is processed
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then the record keeps the first 20 and says how many there were; 20 sightings, 20 in the event
    assert outcome.status == "SUCCEEDED"
    record = w.record()
    assert [p["number"] for p in record["plates"]] == numbers[:20]
    assert record["truncated"] == {"plates": 151}
    assert len(w.store.sightings()) == 20
    (event,) = w.publisher.events
    assert event["detail"]["plates"] == numbers[:20]


def test_licence_answer_with_numbers_dynamodb_cannot_hold_is_stored_as_text():
    # Given apizero's data holds NaN, 1e400 (infinity once parsed) and a 41-digit integer
    text = json.dumps(DEFAULT_VEHICLE_LICENSE, ensure_ascii=False)[:-1]
    text += ', "total_mass": NaN, "curb_weight": 1e400, "traction_mass": ' + str(10**40)
    text += ', "extra": {"score": NaN, "big": -1e400, "huge": ' + str(10**40) + ', "tiny": 1e-200}}'
    payload = json.loads(text)
    w = world(licence=[ProviderAnswer("apizero", payload)])

    # When the object is processed
    outcome = w.pipeline.process(w.upload(LICENSE_KEY))

    # Then it SUCCEEDED and was stored: such numbers are kept as their text, the rest as numbers
    assert outcome.status == "SUCCEEDED"
    licence = w.record()["vehicle_license"]
    assert (licence["total_mass_kg"], licence["curb_weight_kg"], licence["traction_mass_kg"]) == (None, None, None)
    assert licence["raw"]["extra"] == {"score": "nan", "big": "-inf", "huge": str(10**40), "tiny": "1e-200"}
    assert (licence["raw"]["total_mass"], licence["raw"]["traction_mass"]) == ("nan", str(10**40))
    assert licence["vin"] == "LSVAU218XN2183294"
    assert len(w.publisher.events) == 1


def test_huge_unusable_answer_is_kept_within_budget():
    # Given an unusable answer of ~1 MB (a long HTML page, a deep structure)
    payload = {"html": "<p>" * 400_000, "deep": [[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]], "n": float("nan")}
    w = world(plate=[ProviderAnswer("tianapi", payload, unusable="an HTML page")])

    # When the object is processed
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then the FAILED record is written (DynamoDB would refuse an item over 400 KB) with a cut answer
    assert outcome.error_code == "UPSTREAM_BAD_RESPONSE"
    raw = w.record()["raw_answer"]
    assert len(json.dumps(raw, ensure_ascii=False).encode()) <= 32_768
    assert raw["html"].endswith("…[truncated]") and raw["n"] == "nan"


def test_overlong_plate_number_is_kept_cut_and_never_indexed():
    # Given tianapi "reads" a 200-character plate number beside a real one
    w = world(plate=[plates("沪A12345", "沪" + "A" * 199)])

    # When the object is processed
    outcome = w.pipeline.process(w.upload(PLATE_KEY))

    # Then both are in the record, the long one cut; only the real one is a sighting
    assert outcome.status == "SUCCEEDED"
    numbers = [p["number"] for p in w.record()["plates"]]
    assert numbers[0] == "沪A12345" and numbers[1].endswith("…[truncated]") and len(numbers[1]) == 32
    assert [s["plate_number"] for s in w.store.sightings()] == ["沪A12345"]


# --- objects that are not (ours to) recognise ------------------------------------------------------


def test_object_from_another_bucket_is_reported_without_record_read_or_call():
    # Given the stack's bucket is set, and an event names another bucket
    w = world(images_bucket="stack-images")
    parsed = w.stage("s3-put-plate.json")

    # When the event is processed
    (outcome,) = w.pipeline.process_event(parsed)

    # Then one UNEXPECTED_BUCKET message, and nothing read, recorded or paid
    assert (outcome.status, outcome.error_code) == (None, "UNEXPECTED_BUCKET")
    (message,) = w.publisher.messages
    assert message["body"]["error"]["code"] == "UNEXPECTED_BUCKET"
    assert (message["body"]["bucket"], message["body"]["key"]) == (BUCKET, PLATE_KEY)
    assert message["attributes"] == {"error_code": "UNEXPECTED_BUCKET", "kind": "unknown", "retryable": "false"}
    assert w.store.records() == [] and w.store.calls == []
    assert w.s3.requests == [] and w.plate.calls == 0


def test_object_from_the_stacks_bucket_is_processed_when_the_bucket_is_set():
    # Given the stack's bucket is the one the event names
    w = world(images_bucket=BUCKET, plate=[plates("沪A12345")])

    # When the event is processed
    (outcome,) = w.pipeline.process_event(w.stage("s3-put-plate.json"))

    # Then it is recognised as usual
    assert outcome.status == "SUCCEEDED" and w.publisher.messages == []


def test_folder_marker_does_nothing():
    # Given the console's "Create folder" marker
    w = world()

    # When its event is processed
    (outcome,) = w.pipeline.process_event(w.stage("s3-put-folder-marker.json", body=b""))

    # Then nothing is read, recorded, paid or announced
    assert (outcome.status, outcome.detail) == (None, "folder marker")
    assert w.store.calls == [] and w.s3.requests == []
    assert w.publisher.messages == [] and w.publisher.events == []
    assert w.plate.calls == 0


def test_unroutable_key_fails_unroutable_without_reading_the_object():
    # Given an object under a prefix no kind owns
    w = world()

    # When its event is processed
    (outcome,) = w.pipeline.process_event(w.stage("s3-put-unknown-prefix.json"))

    # Then FAILED UNROUTABLE, kind and provider unknown; nothing downloaded or paid
    assert (outcome.status, outcome.error_code) == ("FAILED", "UNROUTABLE")
    record = w.record()
    assert (record["kind"], record["provider"], record["upstream_attempts"]) == (None, None, 0)
    (message,) = w.publisher.messages
    assert message["attributes"] == {"error_code": "UNROUTABLE", "kind": "unknown", "retryable": "false"}
    assert message["body"]["attempts"] == 1
    assert w.s3.requests == [] and w.plate.calls == 0


def test_malformed_event_record_is_reported_and_the_rest_processed():
    # Given an event whose first record names no key, and whose second names an object that is gone
    w = world()
    event = load_event("s3-put-malformed.json")

    # When it is processed
    (outcome,) = w.pipeline.process_event(parse_s3_event(event))

    # Then one MALFORMED_EVENT message for the first, OBJECT_NOT_FOUND for the second
    assert outcome.error_code == "OBJECT_NOT_FOUND"
    assert [m["body"]["error"]["code"] for m in w.publisher.messages] == ["MALFORMED_EVENT", "OBJECT_NOT_FOUND"]
    assert w.plate.calls == 0


@pytest.mark.parametrize(
    ("setup", "error_code"),
    [
        (lambda w, obj: w.s3.delete_object(Bucket=BUCKET, Key=PLATE_KEY), "OBJECT_NOT_FOUND"),  # deleted
        (lambda w, obj: w.s3.put_object(Bucket=BUCKET, Key=PLATE_KEY, Body=make_jpeg(2)), "OBJECT_NOT_FOUND"),
        (lambda w, obj: w.s3.put_object(Bucket=BUCKET, Key=PLATE_KEY, Body=b"not an image"), "OBJECT_NOT_FOUND"),
    ],
    ids=["deleted", "overwritten", "overwritten-with-junk"],
)
def test_object_gone_or_replaced_since_its_event_is_not_read(setup, error_code):
    # Given the object was deleted or overwritten after its event was sent (unversioned bucket: IfMatch)
    w = world()
    obj = w.upload(PLATE_KEY)
    setup(w, obj)

    # When the event is processed
    outcome = w.pipeline.process(obj)

    # Then FAILED without a call: the bytes the event announced are not there any more
    assert (outcome.status, outcome.error_code) == ("FAILED", error_code)
    assert w.plate.calls == 0


def test_versioned_object_is_read_at_its_version():
    # Given a versioned bucket where the key was overwritten after the event's version
    w = world(versioned=True, plate=[plates("沪A12345")])
    obj = w.upload(PLATE_KEY, JPEG)
    w.upload(PLATE_KEY, make_jpeg(seed=99))

    # When the first version's event is processed
    w.pipeline.process(obj)

    # Then that version's bytes were read and recognised
    assert w.s3.requests[0]["VersionId"] == obj.version_id == "v1"
    assert w.record()["source"]["sha256"] == hashlib.sha256(JPEG).hexdigest()


@pytest.mark.parametrize(
    ("body", "size", "error_code"),
    [
        (b"", None, "IMAGE_EMPTY"),
        (b"plain text with a .jpg name\n", None, "IMAGE_UNSUPPORTED"),
        (JPEG[:-200], None, "IMAGE_CORRUPT"),
        (JPEG, 11 * 1024 * 1024, "IMAGE_TOO_LARGE"),  # from the event's size, before downloading
    ],
)
def test_bad_image_fails_without_a_paid_call(body, size, error_code):
    # Given an object that is not a usable image
    w = world()
    obj = w.upload(PLATE_KEY, body)
    if size is not None:
        obj = shapes.UploadedObject(obj.bucket, obj.key, size=size, etag=obj.etag, sequencer=SEQUENCER)

    # When it is processed
    outcome = w.pipeline.process(obj)

    # Then FAILED with the pipeline's code, and tianapi never called
    assert (outcome.status, outcome.error_code) == ("FAILED", error_code)
    assert w.record()["error"]["source"] == "pipeline"
    assert w.plate.calls == 0
    if error_code == "IMAGE_TOO_LARGE":
        assert w.s3.requests == []


# --- redrive -------------------------------------------------------------------------------------


def test_redrive_replaces_a_failed_record_with_the_new_outcome():
    # Given an upload that FAILED (quota spent) and was announced
    w = world(plate=[code(150), plates("沪A12345")])
    event = load_event("s3-put-plate.json")
    w.pipeline.process_event(w.stage("s3-put-plate.json"))
    assert w.record()["status"] == "FAILED"

    # When `vehicle-ocr redrive` re-sends its event after the quota was topped up
    (outcome,) = w.pipeline.process_event(parse_s3_event(event | {REDRIVE_MARKER: True}))

    # Then the record is replaced by the new outcome, announced, and the attempt counts start afresh
    assert (outcome.status, outcome.detail) == ("SUCCEEDED", "recognised")
    record = w.record()
    assert (record["status"], record["upstream_attempts"]) == ("SUCCEEDED", 1)
    assert "error" not in record
    assert len(w.publisher.events) == 1 and len(w.publisher.messages) == 1
    assert w.store.stored(record["id"]).notified
    assert w.store.history(record["id"]).invocations == 0


def test_redrive_never_replaces_a_succeeded_record():
    # Given a SUCCEEDED upload
    w = world(plate=[plates("沪A12345")])
    event = load_event("s3-put-plate.json")
    w.pipeline.process_event(w.stage("s3-put-plate.json"))

    # When a redrive event for it arrives
    (outcome,) = w.pipeline.process_event(parse_s3_event(event | {REDRIVE_MARKER: True}))

    # Then nothing is called, replaced or announced again
    assert outcome.detail == "duplicate"
    assert w.plate.calls == 1 and len(w.publisher.events) == 1


def _redrive_event(marker: Any = True) -> ParsedEvent:
    return parse_s3_event(load_event("s3-put-plate.json") | {REDRIVE_MARKER: marker})


def test_lambdas_retries_of_a_redrive_count_towards_its_last_attempt():
    # Given an upload that ended FAILED 150 (quota spent) and was announced
    w = world(plate=[code(150)])
    w.pipeline.process_event(w.stage("s3-put-plate.json"))

    # When it is redriven while tianapi is overloaded (130), and Lambda retries the failing redrive
    w.plate.then(*[code(130) for _ in range(9)])
    for _ in range(2):
        with pytest.raises(OutcomeNotRecorded):
            w.pipeline.process_event(_redrive_event())
    (outcome,) = w.pipeline.process_event(_redrive_event())

    # Then Lambda's last attempt of the redrive records the new outcome, as for any upload, and announces it
    assert (outcome.status, outcome.error_code) == ("FAILED", "130")
    record = w.record()
    assert (record["error"]["retryable"], record["upstream_attempts"]) == (True, 9)
    assert [m["body"]["error"]["code"] for m in w.publisher.messages] == ["150", "130"]


def test_possibly_billed_budget_of_a_redrive_spans_lambdas_retries():
    # Given an upload that ended FAILED 150 and was announced
    w = world(plate=[code(150)])
    w.pipeline.process_event(w.stage("s3-put-plate.json"))

    # When it is redriven: the first invocation times out once (maybe billed) then gets 130 twice,
    # and Lambda's retry of the redrive times out again
    w.plate.then(timeout(), code(130), code(130), timeout(), code(130), code(130))
    with pytest.raises(OutcomeNotRecorded):
        w.pipeline.process_event(_redrive_event())
    (outcome,) = w.pipeline.process_event(_redrive_event())

    # Then that second possibly billed call of the redrive is its last (UPSTREAM_TIMEOUT_RETRIES=1)
    assert (outcome.status, outcome.error_code) == ("FAILED", "UPSTREAM_TIMEOUT")
    assert w.record()["possibly_billed"] == 2
    assert w.plate.calls == 1 + 4


def test_a_later_redrive_starts_a_fresh_series_of_attempts():
    # Given an upload whose first redrive (failure message m1) ended FAILED 130 after Lambda's three attempts
    w = world(plate=[code(150)])
    w.pipeline.process_event(w.stage("s3-put-plate.json"))
    w.plate.then(*[code(130) for _ in range(9)])
    for _ in range(2):
        with pytest.raises(OutcomeNotRecorded):
            w.pipeline.process_event(_redrive_event({"message_id": "m1"}))
    w.pipeline.process_event(_redrive_event({"message_id": "m1"}))

    # When the operator redrives it again (failure message m2) and tianapi answers
    w.plate.then(plates("沪A12345"))
    (outcome,) = w.pipeline.process_event(_redrive_event({"message_id": "m2"}))

    # Then the new redrive was not charged the old one's attempts: it succeeded on its first call
    assert outcome.status == "SUCCEEDED"
    assert w.record()["upstream_attempts"] == 1


# --- the fakes behave as the services they stand for ----------------------------------------------


def _record(record_id: str = "r1", status: str = "FAILED", **extra: Any) -> dict[str, Any]:
    obj = shapes.UploadedObject(BUCKET, PLATE_KEY, etag="e")
    record = shapes.failed_record(
        obj,
        kind="plate",
        provider="tianapi",
        created_at=TickingClock()(),
        source=shapes.source_of(obj),
        error=UpstreamError("tianapi", 150),
    )
    return record | {"id": record_id, "status": status} | extra


def test_memory_store_create_is_conditional_like_the_table():
    # Given a FAILED record and a SUCCEEDED one
    store, at = MemoryStore(), TickingClock()()
    assert store.create(_record("f"), attempts=1, created_sort_at=at) is True
    assert store.create(_record("s", "SUCCEEDED", plates=[]), attempts=1, created_sort_at=at) is True

    # When they are written again, plainly or as a redrive
    # Then only a redrive replaces, and only a FAILED record
    assert store.create(_record("f"), attempts=1, created_sort_at=at) is False
    assert store.create(_record("f", upstream_attempts=5), attempts=1, created_sort_at=at, replace_failed=True)
    assert store.stored("f").record["upstream_attempts"] == 5
    assert store.create(_record("s", "SUCCEEDED", plates=[]), attempts=1, created_sort_at=at, replace_failed=True) is (
        False
    )


def test_memory_store_refuses_what_dynamodb_refuses_and_writes_nothing():
    store, at = MemoryStore(), TickingClock()()
    # An item over 400 KB
    with pytest.raises(ClientError, match="maximum allowed size"):
        store.create(_record(note="x" * 500_000), attempts=1, created_sort_at=at)
    # An empty string as an index key
    with pytest.raises(ClientError, match="key attribute kind"):
        store.create(_record(kind=""), attempts=1, created_sort_at=at)
    # A type the SDK cannot serialise
    with pytest.raises(TypeError):
        store.create(_record(note=object()), attempts=1, created_sort_at=at)
    assert store.table == {}
    # And mark_notified is conditional on the record existing
    with pytest.raises(ClientError, match="conditional"):
        store.mark_notified("missing", at)


def test_memory_s3_answers_like_s3():
    s3 = MemoryS3()
    etag = s3.put_object(Bucket="b", Key="k", Body=b"abc")["ETag"]
    with s3.get_object(Bucket="b", Key="k", IfMatch=etag)["Body"] as body:
        assert (body.read(2), body.read(5), body.read(5)) == (b"ab", b"c", b"")
    for request, error in [
        ({"Key": "other"}, "NoSuchKey"),
        ({"Key": "k", "IfMatch": '"nope"'}, "PreconditionFailed"),
        ({"Key": "k", "VersionId": "v9"}, "NoSuchVersion"),
    ]:
        with pytest.raises(ClientError) as caught:
            s3.get_object(Bucket="b", **request)
        assert caught.value.response["Error"]["Code"] == error


def test_stub_recognizer_fails_the_test_on_an_unscripted_call():
    stub = StubRecognizer("tianapi", "plate", [plates("沪A12345")])
    assert stub.recognize(b"x").payload == [{"number": "沪A12345", "color": "blue"}]
    with pytest.raises(AssertionError, match="no answer left"):
        stub.recognize(b"x")
    assert stub.calls == 2
