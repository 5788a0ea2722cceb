"""apizero vehicle-licence recogniser against the fake upstream, over real sockets."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
import requests

# Fixtures fake_upstream, upstream_session, refused_url: tests/fakes/fixtures.py (plugin in tests/conftest.py).
from tests.fakes.fixtures import APIZERO_TEST_KEY
from tests.fakes.upstream import APIZERO_ERRORS, DEFAULT_VEHICLE_LICENSE, FakeUpstream, Reply
from vehicle_ocr.codes import Action, CodeInfo, documented, lookup
from vehicle_ocr.errors import PipelineError, UpstreamError
from vehicle_ocr.providers.apizero import ApizeroVehicleLicenseRecognizer

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3
FAST = (1.0, 0.3)  # connect, read


def make(up: FakeUpstream, session: requests.Session, key: str = APIZERO_TEST_KEY, timeout=(1.0, 5.0), url=None):
    return ApizeroVehicleLicenseRecognizer(url or up.apizero_url, lambda: key, session, timeout)


def raw_post(up: FakeUpstream, headers: dict[str, str], **kwargs) -> requests.Response:
    return requests.post(up.apizero_url, headers=headers, timeout=5, **kwargs)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------------- success


def test_default_answer_is_the_full_vehicle_licence(fake_upstream, upstream_session):
    """Given an unregistered image,
    when it is recognised,
    then the payload is apizero's data object with all 20 documented fields, the request id is kept,
    and one call was billed."""
    answer = make(fake_upstream, upstream_session).recognize(IMAGE)

    assert answer.provider == "apizero"
    assert answer.payload == DEFAULT_VEHICLE_LICENSE and len(answer.payload) == 20
    assert answer.request_id is not None and answer.request_id.startswith("req_")
    assert fake_upstream.billed("apizero") == 1


def test_registered_answer_is_returned_for_its_image(fake_upstream, upstream_session):
    """Given a registered data object for one image,
    when that image is recognised,
    then exactly that data object comes back."""
    data = dict(DEFAULT_VEHICLE_LICENSE, plate_number="京N88888", vin="LFV2A21K0A3000001")
    fake_upstream.set_answer(IMAGE, data)

    assert make(fake_upstream, upstream_session).recognize(IMAGE).payload == data


def test_request_is_json_with_base64_and_the_key_in_both_headers(fake_upstream, upstream_session):
    """Given a recogniser with the right key,
    when an image is recognised,
    then the fake saw a JSON POST with input_type/input_data whose base64 decodes to the image,
    and the right key in both Authorization (Bearer) and X-Api-Key."""
    make(fake_upstream, upstream_session).recognize(IMAGE)

    (seen,) = fake_upstream.requests
    assert seen.method == "POST"
    assert seen.content_type.startswith("application/json")
    assert seen.fields == {"input_type", "input_data"}
    assert seen.key_ok is True
    assert seen.key_via == {"authorization", "x-api-key"}
    assert fake_upstream.calls[0].image_sha256 == hashlib.sha256(IMAGE).hexdigest()


@pytest.mark.parametrize(
    ("headers", "via"),
    [
        ({"Authorization": f"Bearer {APIZERO_TEST_KEY}"}, {"authorization"}),
        ({"X-Api-Key": APIZERO_TEST_KEY}, {"x-api-key"}),
    ],
    ids=["authorization-only", "x-api-key-only"],
)
def test_fake_accepts_each_header_form_alone(fake_upstream, headers, via):
    """Given a request carrying the key in only one of the two documented headers,
    when the fake apizero receives it,
    then it answers success (so sending both is safe whichever the real service reads)."""
    response = raw_post(fake_upstream, headers, json={"input_type": "base64", "input_data": b64(IMAGE)})

    assert response.status_code == 200 and response.json()["code"] == 0
    assert fake_upstream.requests[0].key_via == via


def test_fake_accepts_a_data_uri_prefix(fake_upstream):
    """Given base64 with a data:image/...;base64, prefix (allowed by the document),
    when the fake apizero receives it,
    then it decodes the same image."""
    data = "data:image/png;base64," + b64(IMAGE)
    response = raw_post(
        fake_upstream, {"X-Api-Key": APIZERO_TEST_KEY}, json={"input_type": "base64", "input_data": data}
    )

    assert response.json()["code"] == 0
    assert fake_upstream.calls[0].image_sha256 == hashlib.sha256(IMAGE).hexdigest()


# --------------------------------------------------------------------------- documented codes


def assert_classified(error: UpstreamError, info: CodeInfo, message: str | None = None) -> None:
    assert isinstance(error, UpstreamError)
    assert error.provider == "apizero"
    assert error.code == info.code and isinstance(error.code, str)
    assert error.message == (message or info.message)
    assert error.retryable is info.retryable
    assert error.action is info.action


@pytest.mark.parametrize("info", documented("apizero"), ids=lambda info: info.code)
def test_every_documented_code_becomes_a_classified_upstream_error(fake_upstream, upstream_session, info):
    """Given apizero answers documented code `info.code` with its non-2xx HTTP status,
    when an image is recognised,
    then the JSON code is read despite the status and UpstreamError carries the table's classification."""
    fake_upstream.script("apizero", [Reply(code=int(info.code))])

    with pytest.raises(UpstreamError) as caught:
        make(fake_upstream, upstream_session).recognize(IMAGE)

    assert_classified(caught.value, info)
    assert fake_upstream.requests[0].http_status == APIZERO_ERRORS[int(info.code)][0] >= 400
    assert fake_upstream.billed() == 0


def test_documented_codes_cover_the_whole_seed_table():
    """Given the seed's 错误码 table,
    when the code table is read,
    then exactly its five codes are documented for apizero, each with an HTTP status in the fake."""
    assert {info.code for info in documented("apizero")} == {"4000", "4015", "5020", "5021", "5030"}
    assert {int(info.code) for info in documented("apizero")} == set(APIZERO_ERRORS)


def test_undocumented_code_is_terminal_and_passed_through(fake_upstream, upstream_session):
    """Given apizero answers HTTP 500 with a code it never documented,
    when an image is recognised,
    then the code and message pass through unchanged and the error is terminal."""
    fake_upstream.script("apizero", [Reply(code=999, msg="unknown failure", http_status=500)])

    with pytest.raises(UpstreamError) as caught:
        make(fake_upstream, upstream_session).recognize(IMAGE)

    assert (caught.value.code, caught.value.message) == ("999", "unknown failure")
    assert caught.value.retryable is False
    assert caught.value.action is Action.CONTACT_PROVIDER


# --------------------------------------------------------------------------- real protocol checks


def test_wrong_key_is_refused_with_4015(fake_upstream, upstream_session):
    """Given a recogniser configured with the wrong key,
    when an image is recognised,
    then the fake answers HTTP 401 with 4015 (fix the configuration) and does not keep the key."""
    with pytest.raises(UpstreamError) as caught:
        make(fake_upstream, upstream_session, key="not-the-key").recognize(IMAGE)

    assert_classified(caught.value, lookup("apizero", 4015))
    assert fake_upstream.requests[0].http_status == 401
    assert fake_upstream.requests[0].key_ok is False
    assert "not-the-key" not in repr(fake_upstream.requests) + repr(fake_upstream.calls)


@pytest.mark.parametrize(
    ("headers", "kwargs", "status", "code"),
    [
        ({}, {"json": {"input_type": "base64", "input_data": "aGVsbG8="}}, 401, 4015),
        ({"Authorization": "Bearer wrong"}, {"json": {"input_type": "base64", "input_data": "aGVsbG8="}}, 401, 4015),
        ({"X-Api-Key": APIZERO_TEST_KEY}, {"data": b"{not json"}, 400, 4000),
        ({"X-Api-Key": APIZERO_TEST_KEY}, {"json": {"input_data": "aGVsbG8="}}, 400, 4000),
        ({"X-Api-Key": APIZERO_TEST_KEY}, {"json": {"input_type": "base64"}}, 400, 4000),
        ({"X-Api-Key": APIZERO_TEST_KEY}, {"json": {"input_type": "base64", "input_data": "%%%"}}, 400, 4000),
        ({"X-Api-Key": APIZERO_TEST_KEY}, {"json": {"input_type": "file", "input_data": "aGVsbG8="}}, 400, 4000),
        ({"X-Api-Key": APIZERO_TEST_KEY}, {"json": {"input_type": "base64", "input_data": "aGVsbG8="}}, 200, 0),
    ],
    ids=["no-key", "wrong-key", "bad-json", "no-type", "no-data", "bad-base64", "bad-type", "ok"],
)
def test_fake_checks_the_documented_protocol(fake_upstream, headers, kwargs, status, code):
    """Given a raw request with `headers` and body,
    when the fake apizero receives it,
    then it answers `status` with the documented code and message."""
    response = raw_post(fake_upstream, headers, **kwargs)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["msg"] == ("成功" if code == 0 else lookup("apizero", code).message)


def test_rate_limit_answers_plain_429_and_is_rate_limited(fake_upstream, upstream_session):
    """Given the fake limits apizero to 2 requests per second (the documented QPS),
    when three images are recognised at once,
    then the third gets HTTP 429 without JSON → UPSTREAM_RATE_LIMITED, and two were billed."""
    fake_upstream.rate_limit("apizero", 2)
    recognizer = make(fake_upstream, upstream_session)
    recognizer.recognize(IMAGE)
    recognizer.recognize(IMAGE)

    with pytest.raises(PipelineError) as caught:
        recognizer.recognize(IMAGE)

    assert (caught.value.provider, caught.value.code, caught.value.retryable) == (
        "apizero",
        "UPSTREAM_RATE_LIMITED",
        True,
    )
    assert fake_upstream.billed("apizero") == 2


# --------------------------------------------------------------------------- malformed answers and transport


def test_success_code_without_data_is_a_bad_response(fake_upstream, upstream_session):
    """Given apizero answers code 0 without a data object,
    when an image is recognised,
    then the billed answer comes back marked unusable (never an empty result, never a retry)."""
    fake_upstream.script("apizero", [Reply(body='{"code":0,"msg":"成功","data":null}'.encode())])

    answer = make(fake_upstream, upstream_session).recognize(IMAGE)

    assert answer.unusable == "success code with no data object"
    assert answer.payload["body"]["code"] == 0
    assert fake_upstream.billed("apizero") == 1


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (429, b"Too Many Requests", "UPSTREAM_RATE_LIMITED"),
        (500, b"Internal Server Error", "UPSTREAM_UNAVAILABLE"),
        (502, b"<html>Bad Gateway</html>", "UPSTREAM_UNAVAILABLE"),
        (503, b"Service Unavailable", "UPSTREAM_UNAVAILABLE"),
        (401, b'{"detail":"unauthorized"}', "UPSTREAM_HTTP_ERROR"),
    ],
)
def test_http_errors_without_a_code_are_mapped_by_status(fake_upstream, upstream_session, status, body, code):
    """Given apizero answers HTTP `status` without a JSON code,
    when an image is recognised,
    then a PipelineError with `code` names apizero and the status."""
    fake_upstream.script("apizero", [Reply(http_status=status, body=body)])

    with pytest.raises(PipelineError) as caught:
        make(fake_upstream, upstream_session).recognize(IMAGE)

    assert (caught.value.provider, caught.value.code) == ("apizero", code)
    assert f"HTTP {status}" in caught.value.message


def test_garbage_200_is_kept_as_an_unusable_answer(fake_upstream, upstream_session):
    """Given apizero answers HTTP 200 with HTML,
    when an image is recognised,
    then it comes back marked unusable with the start of the page for the operator."""
    fake_upstream.script("apizero", [Reply(garbage=True)])

    answer = make(fake_upstream, upstream_session).recognize(IMAGE)

    assert "not a JSON object" in answer.unusable
    assert answer.payload["body"].startswith("<html>")


def test_stall_beyond_read_timeout_is_a_timeout_and_is_not_repeated(fake_upstream, upstream_session):
    """Given apizero stalls 2 s and the read timeout is 0.3 s,
    when an image is recognised,
    then UPSTREAM_TIMEOUT comes quickly and the request reached the server once."""
    fake_upstream.script("apizero", [Reply(stall_s=2.0)])
    started = time.monotonic()

    with pytest.raises(PipelineError) as caught:
        make(fake_upstream, upstream_session, timeout=FAST).recognize(IMAGE)

    assert time.monotonic() - started < 1.5
    assert (caught.value.provider, caught.value.code, caught.value.retryable) == ("apizero", "UPSTREAM_TIMEOUT", True)
    assert len(fake_upstream.calls) == 1


def test_short_stall_within_the_timeout_still_succeeds(fake_upstream, upstream_session):
    """Given apizero stalls 0.1 s and the read timeout is 0.3 s,
    when an image is recognised,
    then the answer arrives normally."""
    fake_upstream.script("apizero", [Reply(stall_s=0.1)])

    assert make(fake_upstream, upstream_session, timeout=FAST).recognize(IMAGE).payload == DEFAULT_VEHICLE_LICENSE


def test_closed_connection_is_unavailable_and_is_not_repeated(fake_upstream, upstream_session):
    """Given apizero closes the socket without answering,
    when an image is recognised,
    then UPSTREAM_UNAVAILABLE is raised and the request reached the server once."""
    fake_upstream.script("apizero", [Reply(close=True)])

    with pytest.raises(PipelineError) as caught:
        make(fake_upstream, upstream_session).recognize(IMAGE)

    assert (caught.value.code, caught.value.retryable) == ("UPSTREAM_UNAVAILABLE", True)
    assert len(fake_upstream.calls) == 1


def test_nothing_listening_is_unavailable(fake_upstream, upstream_session, refused_url):
    """Given a URL where nothing listens,
    when an image is recognised,
    then UPSTREAM_UNAVAILABLE names apizero."""
    with pytest.raises(PipelineError) as caught:
        make(fake_upstream, upstream_session, url=refused_url).recognize(IMAGE)

    assert (caught.value.provider, caught.value.code) == ("apizero", "UPSTREAM_UNAVAILABLE")


def test_messages_never_contain_the_key(fake_upstream, upstream_session):
    """Given several failures (5xx, an error code, an undocumented code whose message echoes the key),
    when images are recognised,
    then no error message or string form contains the key."""
    fake_upstream.script(
        "apizero",
        [Reply(http_status=503), Reply(code=5021), Reply(code=4999, msg=f"bad key {APIZERO_TEST_KEY}")],
    )
    recognizer = make(fake_upstream, upstream_session)
    for _ in range(3):
        with pytest.raises((PipelineError, UpstreamError)) as caught:
            recognizer.recognize(IMAGE)
        assert APIZERO_TEST_KEY not in str(caught.value) + repr(caught.value.as_error())
    assert APIZERO_TEST_KEY not in repr(recognizer)


def test_the_request_is_built_before_the_rate_slot_and_sent_again_as_built_on_a_retry(fake_upstream, upstream_session):
    # Given a paced apizero recogniser whose body building and rate slots are noted, and an upstream
    # that answers the first call with its transient 5020
    from vehicle_ocr.recognition import CallLog, Recognition
    from vehicle_ocr.settings import Settings

    noted: list[str] = []

    class NotedApizero(ApizeroVehicleLicenseRecognizer):
        def request(self, api_key: str, image: bytes) -> dict:
            noted.append("built")
            return super().request(api_key, image)

    class NotedSlots:
        def wait(self, max_wait_s: float = float("inf")) -> float:
            noted.append(f"slot, {len(fake_upstream.calls)} sent")
            return 0.0

    recognizer = NotedApizero(fake_upstream.apizero_url, lambda: APIZERO_TEST_KEY, upstream_session, (1.0, 5.0))
    settings = Settings.from_env(
        {"RESULTS_TABLE": "t", "FAILURE_QUEUE_URL": "q", "EVENT_BUS_NAME": "b", "APIZERO_KEY": "k", "TIANAPI_KEY": "k"}
        | {"UPSTREAM_RETRY_BASE_DELAY": "0.01"}
    )
    recognition = Recognition(settings, {"vehicle_license": [recognizer]})
    recognition.pacers["apizero"] = NotedSlots()  # type: ignore[assignment]
    fake_upstream.script("apizero", [Reply(code=5020)])

    # When a licence photo is recognised
    paid = recognition.answer("vehicle_license", b"licence photo bytes", CallLog())

    # Then the body was built once, before the first slot; after each slot only the sending was left
    assert noted == ["built", "slot, 0 sent", "slot, 1 sent"]
    assert paid.answer.payload["vin"] == DEFAULT_VEHICLE_LICENSE["vin"]
    # And both calls were the documented JSON request, with the key and the same image
    requests_made, calls = fake_upstream.requests[-2:], fake_upstream.calls[-2:]
    assert all(r.content_type.startswith("application/json") and r.key_ok for r in requests_made)
    assert {r.fields for r in requests_made} == {frozenset({"input_type", "input_data"})}
    assert [c.image_sha256 for c in calls] == [hashlib.sha256(b"licence photo bytes").hexdigest()] * 2


def test_a_key_that_cannot_be_read_yet_is_retried_and_is_no_call(fake_upstream, upstream_session):
    # Given an apizero recogniser whose key store (SSM) is throttled on the first read
    from vehicle_ocr.recognition import CallLog, Recognition
    from vehicle_ocr.settings import Settings

    reads: list[str] = []

    def key() -> str:
        reads.append("read")
        if len(reads) == 1:
            raise PipelineError("apizero", "CONFIGURATION_ERROR", "SSM throttled", retryable=True)
        return APIZERO_TEST_KEY

    recognizer = ApizeroVehicleLicenseRecognizer(fake_upstream.apizero_url, key, upstream_session, (1.0, 5.0))
    settings = Settings.from_env(
        {"RESULTS_TABLE": "t", "FAILURE_QUEUE_URL": "q", "EVENT_BUS_NAME": "b", "APIZERO_KEY": "k", "TIANAPI_KEY": "k"}
        | {"UPSTREAM_RETRY_BASE_DELAY": "0.01", "APIZERO_REQUESTS_PER_SECOND": "1000"}
    )
    log = CallLog()

    # When a licence photo is recognised
    paid = Recognition(settings, {"vehicle_license": [recognizer]}).answer("vehicle_license", b"photo", log)

    # Then the key was read again and the upstream asked once: one call, the failed read counting as none
    assert reads == ["read", "read"]
    assert paid.answer.payload["vin"] == DEFAULT_VEHICLE_LICENSE["vin"]
    assert len(fake_upstream.calls) == 1 and log.calls == 1
