"""Failures end to end: each ends as one FAILED record and one failure message that says why.

Upstream codes pass through unchanged; bad images are stopped before any paid call;
AWS-side failures fail the invocation so that Lambda retries, without paying twice.
"""

from __future__ import annotations

import io
import json
import sys

import pytest
from PIL import Image

from tests.conftest import ROOT, invoke_async, load_event, load_function_module, make_jpeg
from tests.fakes.upstream import Reply
from tests.integration.test_recognize_events import stage_event
from vehicle_ocr.codes import documented
from vehicle_ocr.errors import ConfigurationError

PLATE_KEY = "plates/cam1/car.jpg"
LICENSE_KEY = "vehicle-licenses/front.jpg"


def run(stack, app, context, event_name, bodies=None):
    """Deliver the sample event the way S3 → Lambda does: asynchronously, with Lambda's retries."""
    event = stage_event(stack, load_event(event_name), bodies)
    return invoke_async(app, event, context)


def only_failure(stack):
    (record,) = stack.records()
    (message,) = stack.failure_messages()
    assert stack.success_events() == []
    return record, message


@pytest.mark.parametrize("code", [info.code for info in documented("tianapi")])
def test_tianapi_code_ends_failed_with_that_code(code, stack, recognize_app, lambda_context, fake_upstream):
    # Given tianapi answers one of its documented error codes, every time
    fake_upstream.script("tianapi", [Reply(code=int(code))] * 9)

    # When a plate image is processed
    run(stack, recognize_app, lambda_context, "s3-put-plate.json")

    # Then the record and the message carry the upstream code unchanged, with its classification
    record, message = only_failure(stack)
    info = {i.code: i for i in documented("tianapi")}[code]
    assert record["status"] == "FAILED"
    assert record["error"] == {
        "code": code,
        "source": "upstream",
        "provider": "tianapi",
        "message": info.message,
        "retryable": info.retryable,
    }
    assert message["body"]["error"] == record["error"]
    assert message["attributes"] == {"error_code": code, "kind": "plate", "retryable": str(info.retryable).lower()}
    assert message["body"]["schema_version"] == 1
    assert message["body"]["key"] == PLATE_KEY
    # Transient codes: 3 calls per invocation, 3 invocations (Lambda's two retries); terminal: one call
    assert message["body"]["attempts"] == (9 if info.retryable else 1)
    assert len(fake_upstream.calls) == (9 if info.retryable else 1)


@pytest.mark.parametrize("code", [info.code for info in documented("apizero")])
def test_apizero_code_ends_failed_with_that_code(code, stack, recognize_app, lambda_context, fake_upstream):
    # Given apizero answers one of its documented codes (with its non-2xx HTTP status), every attempt
    fake_upstream.script("apizero", [Reply(code=int(code))] * 9)

    # When a vehicle licence is processed
    run(stack, recognize_app, lambda_context, "s3-put-vehicle-license.json")

    # Then the FAILED record and the message carry apizero's code
    record, message = only_failure(stack)
    assert record["error"]["code"] == code
    assert record["error"]["source"] == "upstream"
    assert record["error"]["provider"] == "apizero"
    assert message["attributes"]["error_code"] == code
    assert message["attributes"]["kind"] == "vehicle_license"


def test_rate_limited_call_is_retried_and_succeeds(stack, recognize_app, lambda_context, fake_upstream):
    # Given tianapi refuses the first call as too frequent (130), then answers
    fake_upstream.script("tianapi", [Reply(code=130)])

    # When a plate image is processed
    run(stack, recognize_app, lambda_context, "s3-put-plate.json")

    # Then the upload succeeds after backing off, and only the successful call was billed
    (record,) = stack.records()
    assert record["status"] == "SUCCEEDED"
    assert stack.failure_messages() == []
    assert fake_upstream.billed() == 1


def test_exhausted_quota_is_not_retried(stack, recognize_app, lambda_context, fake_upstream):
    # Given tianapi says the quota is spent (150), then would answer normally
    fake_upstream.script("tianapi", [Reply(code=150)])

    # When a plate image is processed
    run(stack, recognize_app, lambda_context, "s3-put-plate.json")

    # Then it fails at once: one call, terminal, message says to top up (code 150, not retryable)
    record, message = only_failure(stack)
    assert record["error"]["code"] == "150"
    assert message["attributes"]["retryable"] == "false"
    assert len(fake_upstream.calls) == 1


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply(http_status=429, body=b"Too Many Requests"), "UPSTREAM_RATE_LIMITED"),
        (Reply(http_status=502, body=b"<html>Bad Gateway</html>"), "UPSTREAM_UNAVAILABLE"),
        (Reply(garbage=True, http_status=503), "UPSTREAM_UNAVAILABLE"),
    ],
)
def test_unbilled_transport_failure_ends_failed_retryable(
    reply, code, stack, recognize_app, lambda_context, fake_upstream
):
    # Given every call to tianapi is refused without a code (nothing billed)
    fake_upstream.script("tianapi", [reply] * 9)

    # When a plate image is delivered, and Lambda retries the failing invocation
    invocations = run(stack, recognize_app, lambda_context, "s3-put-plate.json")

    # Then the first two invocations fail (so Lambda retries later) and the last records
    # FAILED with the pipeline code, retryable, after 3 bounded calls per invocation
    assert invocations == 3
    record, message = only_failure(stack)
    assert record["error"]["code"] == code
    assert record["error"]["source"] == "pipeline"
    assert record["error"]["provider"] == "tianapi"
    assert record["error"]["retryable"] is True
    assert message["body"]["attempts"] == record["upstream_attempts"] == 9
    assert record["possibly_billed"] == 0
    assert fake_upstream.billed() == 0


@pytest.mark.parametrize(
    ("reply", "code", "billed"),
    [
        (Reply(stall_s=3.0), "UPSTREAM_TIMEOUT", 2),  # the answer came, late: the provider billed it
        (Reply(close=True), "UPSTREAM_UNAVAILABLE", 0),
    ],
)
def test_possibly_billed_failure_is_retried_once_then_ends_failed(
    reply, code, billed, stack, recognize_app, lambda_context, fake_upstream
):
    # Given every call to tianapi reaches it but gets no answer in time (it may have been billed)
    fake_upstream.script("tianapi", [reply] * 9)

    # When a plate image is delivered, with Lambda's retries
    invocations = run(stack, recognize_app, lambda_context, "s3-put-plate.json")

    # Then one retry (UPSTREAM_TIMEOUT_RETRIES=1), no more, and the record says what it may have cost
    assert invocations == 1
    record, message = only_failure(stack)
    assert record["error"]["code"] == code
    assert record["error"]["retryable"] is False
    assert "may have been billed" in record["error"]["message"]
    assert (record["upstream_attempts"], record["possibly_billed"]) == (2, 2)
    assert message["body"]["attempts"] == 2
    assert len(fake_upstream.calls) == 2
    assert fake_upstream.billed() == billed


def test_transient_failure_recovers_on_lambdas_retry(stack, recognize_app, lambda_context, fake_upstream):
    # Given tianapi is under maintenance (120) for the whole first invocation, then back
    fake_upstream.script("tianapi", [Reply(code=120)] * 3)

    # When the plate is delivered with Lambda's retries
    invocations = run(stack, recognize_app, lambda_context, "s3-put-plate.json")

    # Then the retry succeeds: one SUCCEEDED record, no failure message, one billed call
    assert invocations == 2
    (record,) = stack.records()
    assert record["status"] == "SUCCEEDED"
    assert stack.failure_messages() == []
    assert fake_upstream.billed() == 1


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), "blue").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "IMAGE_EMPTY"),
        (b"this is a text file with a .jpg name\n", "IMAGE_UNSUPPORTED"),
        (make_jpeg(seed=3)[:-300], "IMAGE_CORRUPT"),
        (b"GIF89a" + b"\x00" * 64, "IMAGE_CORRUPT"),  # GIFs are converted: this one cannot be decoded
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64, "IMAGE_UNSUPPORTED"),
        (_png()[:-20], "IMAGE_CORRUPT"),
    ],
)
def test_bad_image_fails_without_a_paid_call(body, code, stack, recognize_app, lambda_context, fake_upstream):
    # Given a plate object that is not a usable image
    # When it is processed
    run(stack, recognize_app, lambda_context, "s3-put-plate.json", {PLATE_KEY: body})

    # Then it ends FAILED with a pipeline code that says what is wrong, and nothing was sent upstream
    record, message = only_failure(stack)
    assert record["error"]["code"] == code
    assert record["error"]["source"] == "pipeline"
    assert message["attributes"]["error_code"] == code
    assert fake_upstream.calls == []


def test_oversized_object_is_rejected_from_the_event_size(
    stack, recognize_env, lambda_context, fake_upstream, monkeypatch
):
    # Given a deployment whose maximum is 10 MiB, and a 12 MB photo
    monkeypatch.setenv("MAX_IMAGE_BYTES", str(10 * 1024 * 1024))
    app = load_function_module("recognize", "recognize_app_10mib")
    photo = make_jpeg(seed=1) + b"\x00" * (12 * 1024 * 1024)

    # When it is processed
    run(stack, app, lambda_context, "s3-put-plate.json", {PLATE_KEY: photo})

    # Then it fails with IMAGE_TOO_LARGE and the message names the size
    record, message = only_failure(stack)
    assert record["error"]["code"] == message["attributes"]["error_code"] == "IMAGE_TOO_LARGE"
    assert str(len(photo)) in record["error"]["message"]
    assert fake_upstream.calls == []


def test_duplicate_delivery_calls_upstream_once(stack, recognize_app, lambda_context, fake_upstream):
    # Given one S3 event
    event = stage_event(stack, load_event("s3-put-plate.json"))

    # When it is delivered three times (S3 at-least-once delivery, Lambda retries)
    for _ in range(3):
        recognize_app.lambda_handler(event, lambda_context)

    # Then one upstream call, one record, one event
    assert len(fake_upstream.calls) == 1
    assert len(stack.records()) == 1
    assert len(stack.success_events()) == 1


def test_object_deleted_before_processing_fails_clearly(stack, recognize_app, lambda_context, fake_upstream):
    # Given an event for an object version that no longer exists
    event = stage_event(stack, load_event("s3-put-plate.json"))
    s3 = stack.client("s3")
    obj = event["Records"][0]["s3"]["object"]
    s3.delete_object(Bucket=stack.bucket, Key=PLATE_KEY, VersionId=obj["versionId"])

    # When it is processed
    recognize_app.lambda_handler(event, lambda_context)

    # Then it ends FAILED OBJECT_NOT_FOUND, no upstream call
    record, _ = only_failure(stack)
    assert record["error"]["code"] == "OBJECT_NOT_FOUND"
    assert fake_upstream.calls == []


def test_unannounced_outcome_is_announced_on_retry_without_paying_again(
    stack, recognize_app, lambda_context, fake_upstream
):
    # Given the event bus is missing when the first invocation wants to announce
    events = stack.client("events")
    bus = stack.resources.refs["EventBus"]
    events.remove_targets(Rule="watch-all", EventBusName=bus, Ids=["queue"])
    events.delete_rule(Name="watch-all", EventBusName=bus)
    events.delete_event_bus(Name=bus)
    event = stage_event(stack, load_event("s3-put-plate.json"))

    # When the first invocation runs, it fails (so Lambda will retry) after recording the paid answer
    with pytest.raises(Exception):  # noqa: B017 - whatever botocore raises for the missing bus
        recognize_app.lambda_handler(event, lambda_context)
    assert [r["status"] for r in stack.records()] == ["SUCCEEDED"]

    # And once the bus is back, Lambda's retry announces it
    events.create_event_bus(Name=bus)
    queue_arn = stack.client("sqs").get_queue_attributes(QueueUrl=stack.events_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(Name="watch-all", EventBusName=bus, EventPattern=json.dumps({"source": ["vehicle-ocr"]}))
    events.put_targets(Rule="watch-all", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    recognize_app.lambda_handler(event, lambda_context)

    # Then the upstream was paid once, and the success announced once
    assert fake_upstream.billed() == 1
    assert len(stack.success_events()) == 1
    assert len(stack.records()) == 1


def test_local_provider_without_engine_fails_the_cold_start(recognize_env, monkeypatch):
    # Given PLATE_PROVIDER=local in a deployment without the offline engine installed (the Lambda layer)
    monkeypatch.setenv("PLATE_PROVIDER", "local")
    monkeypatch.setitem(sys.modules, "vehicle_ocr_local.engine", None)  # import fails as if absent

    # When the function starts
    with pytest.raises(ConfigurationError) as caught:
        load_function_module("recognize", "recognize_app_local")

    # Then the cold start fails at once, saying how to install the engine (not a FAILED record per upload)
    assert "vehicle-ocr[engine]" in str(caught.value)


def test_chain_falls_back_to_the_offline_engine_when_the_quota_is_spent(
    stack, recognize_env, lambda_context, fake_upstream, monkeypatch
):
    # Given the chain tianapi,local and tianapi out of quota (150)
    monkeypatch.setenv("PLATE_PROVIDERS", "tianapi,local")
    app = load_function_module("recognize", "recognize_app_chain")
    fake_upstream.script("tianapi", [Reply(code=150)] * 3)
    photo = (ROOT / "samples" / "plates" / "001-blue-regular.jpg").read_bytes()
    expected = json.loads((ROOT / "samples" / "ground_truth.json").read_text(encoding="utf-8"))

    # When a plate photo is processed
    run(stack, app, lambda_context, "s3-put-plate.json", {PLATE_KEY: photo})

    # Then the offline engine answered, and the record says who could not
    (record,) = stack.records()
    assert record["status"] == "SUCCEEDED"
    assert record["provider"] == "local"
    assert record["fallback"] == [{"provider": "tianapi", "code": "150"}]
    assert [p["number"] for p in record["plates"]] == [
        p["number"] for p in expected["plates/001-blue-regular.jpg"]["plates"]
    ]
    assert len(fake_upstream.calls) == 1 and fake_upstream.billed() == 0
    assert stack.failure_messages() == []
    (event,) = stack.success_events()
    assert event["detail"]["id"] == record["id"]


def test_chain_never_sends_an_unreadable_image_on(stack, recognize_env, lambda_context, fake_upstream, monkeypatch):
    # Given the chain tianapi,local, and tianapi says the image cannot be read (250)
    monkeypatch.setenv("PLATE_PROVIDERS", "tianapi,local")
    app = load_function_module("recognize", "recognize_app_chain")
    fake_upstream.script("tianapi", [Reply(code=250)])

    # When a plate image is processed
    run(stack, app, lambda_context, "s3-put-plate.json")

    # Then it ends FAILED with tianapi's code: the image's fault is not the provider's
    record, message = only_failure(stack)
    assert (record["provider"], record["error"]["code"]) == ("tianapi", "250")
    assert message["attributes"]["error_code"] == "250"
    assert "fallback" not in record
