"""tianapi licence-plate recogniser against the fake upstream, over real sockets."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs

import pytest
import requests

# Fixtures fake_upstream, upstream_session, refused_url: tests/fakes/fixtures.py (plugin in tests/conftest.py).
from tests.fakes.fixtures import TIANAPI_TEST_KEY
from tests.fakes.upstream import DEFAULT_PLATE, TIANAPI_MAX_IMAGE_BYTES, FakeUpstream, Reply
from vehicle_ocr.codes import Action, CodeInfo, documented, lookup
from vehicle_ocr.errors import PipelineError, UpstreamError
from vehicle_ocr.providers.base import ProviderAnswer
from vehicle_ocr.providers.http import UnusableAnswer
from vehicle_ocr.providers.tianapi import TianapiPlateRecognizer, flatten_result, form_body

# Bytes whose base64 holds "+" and "/", which must be percent-encoded in a form body.
IMAGE = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xfb\xff\xbf" * 40
PLATES = [{"color": "yellow", "number": "沪A0762学"}, {"color": "green", "number": "粤B D12345"}]
FAST = (1.0, 0.3)  # connect, read


def make(up: FakeUpstream, session: requests.Session, key: str = TIANAPI_TEST_KEY, timeout=(1.0, 5.0), url=None):
    return TianapiPlateRecognizer(url or up.tianapi_url, lambda: key, session, timeout)


def raw_post(up: FakeUpstream, **fields: str) -> dict:
    return requests.post(up.tianapi_url, data=fields, timeout=5).json()


# --------------------------------------------------------------------------- success


def test_default_answer_is_one_plate_object_flattened_to_a_list(fake_upstream, upstream_session):
    """Given an unregistered image and tianapi's single-object result shape,
    when it is recognised,
    then the payload is a list holding that one raw plate and one billed call was made."""
    answer = make(fake_upstream, upstream_session).recognize(IMAGE)

    assert answer == ProviderAnswer(provider="tianapi", payload=[DEFAULT_PLATE])
    assert fake_upstream.billed("tianapi") == 1


@pytest.mark.parametrize("shape", ["object", "list", "wrapped"])
def test_every_result_shape_gives_the_same_plates(fake_upstream, upstream_session, shape):
    """Given a registered plate answered in result shape `shape`,
    when the image is recognised,
    then the payload is the same flat list of raw plate dicts."""
    fake_upstream.result_shape = shape
    fake_upstream.set_answer(IMAGE, PLATES[:1])

    answer = make(fake_upstream, upstream_session).recognize(IMAGE)

    assert answer.payload == PLATES[:1]


@pytest.mark.parametrize("shape", ["list", "wrapped"])
def test_several_plates_are_all_returned(fake_upstream, upstream_session, shape):
    """Given an image with two plates answered as a list or a wrapped list,
    when it is recognised,
    then both plates come back in order."""
    fake_upstream.result_shape = shape
    fake_upstream.set_answer(IMAGE, PLATES)

    assert make(fake_upstream, upstream_session).recognize(IMAGE).payload == PLATES


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"color": "blue", "number": "沪A1"}, [{"color": "blue", "number": "沪A1"}]),
        ([{"number": "沪A1"}], [{"number": "沪A1"}]),
        ({"list": [{"number": "沪A1"}], "total": 1}, [{"number": "沪A1"}]),
        ({"plates": [{"number": "沪A1"}], "tags": ["x"]}, [{"number": "沪A1"}]),
        (None, []),
        ([], []),
        ({}, []),
        ({"list": []}, []),
    ],
)
def test_flatten_result_accepts_any_documented_shape(result, expected):
    """Given a result in any of the shapes tianapi sends (or no plate at all),
    when it is flattened,
    then a list of raw plate dicts comes out."""
    assert flatten_result(result) == expected


@pytest.mark.parametrize("result", ["沪A1", 42, [1, 2], {"total": 1}])
def test_flatten_result_rejects_unknown_shapes(result):
    """Given a result that is neither a plate, a list of plates nor an object holding one,
    when it is flattened,
    then it is reported as an unusable answer, saying what the result was."""
    with pytest.raises(UnusableAnswer) as caught:
        flatten_result(result)
    assert "result" in str(caught.value)


def test_request_is_form_encoded_key_and_base64_image(fake_upstream, upstream_session):
    """Given an image whose base64 contains '+' and '/',
    when it is recognised,
    then the fake received a form-encoded POST with exactly key and img, the right key,
    and an img that decodes back to the same bytes."""
    assert "+" in base64.b64encode(IMAGE).decode() and "/" in base64.b64encode(IMAGE).decode()

    make(fake_upstream, upstream_session).recognize(IMAGE)

    (seen,) = fake_upstream.requests
    assert seen.method == "POST"
    assert seen.content_type.startswith("application/x-www-form-urlencoded")
    assert seen.fields == {"key", "img"}
    assert seen.key_ok is True and seen.key_via == {"form"}
    assert fake_upstream.calls[0].image_sha256 == hashlib.sha256(IMAGE).hexdigest()


def test_registered_answers_are_matched_by_image(fake_upstream, upstream_session):
    """Given a registered answer for one image only,
    when that image and another are recognised,
    then only the registered image gets the registered plates."""
    fake_upstream.result_shape = "list"
    fake_upstream.set_answer(IMAGE, PLATES)
    recognizer = make(fake_upstream, upstream_session)

    assert recognizer.recognize(IMAGE).payload == PLATES
    assert recognizer.recognize(b"another image").payload == [DEFAULT_PLATE]


# --------------------------------------------------------------------------- documented codes


def assert_classified(error: UpstreamError, info: CodeInfo, message: str | None = None) -> None:
    assert isinstance(error, UpstreamError)
    assert error.provider == info.provider
    assert error.code == info.code and isinstance(error.code, str)
    assert error.message == (message or info.message)
    assert error.retryable is info.retryable
    assert error.action is info.action
    assert error.as_error()["source"] == "upstream"


@pytest.mark.parametrize("info", documented("tianapi"), ids=lambda info: info.code)
def test_every_documented_code_becomes_a_classified_upstream_error(fake_upstream, upstream_session, info):
    """Given tianapi answers with documented code `info.code`,
    when an image is recognised,
    then UpstreamError carries that code as a string with the table's message, retryable and action,
    and nothing was billed."""
    fake_upstream.script("tianapi", [Reply(code=int(info.code))])

    with pytest.raises(UpstreamError) as caught:
        make(fake_upstream, upstream_session).recognize(IMAGE)

    assert_classified(caught.value, info)
    assert fake_upstream.billed() == 0


def test_documented_codes_cover_the_whole_seed_table():
    """Given the seed's 返回状态码 table (17 codes from 100 to 290),
    when the code table is read,
    then every one of them is documented for tianapi."""
    expected = {"100", "110", "120", "130", "140", "150", "160", "170", "180", "190"}
    expected |= {"230", "240", "250", "260", "270", "280", "290"}
    assert {info.code for info in documented("tianapi")} == expected


def test_undocumented_code_is_terminal_and_passed_through(fake_upstream, upstream_session):
    """Given tianapi answers with a code it never documented, with its own message,
    when an image is recognised,
    then the code and message pass through unchanged and the error is terminal."""
    fake_upstream.script("tianapi", [Reply(code=999, msg="新的错误")])

    with pytest.raises(UpstreamError) as caught:
        make(fake_upstream, upstream_session).recognize(IMAGE)

    assert (caught.value.code, caught.value.message) == ("999", "新的错误")
    assert caught.value.retryable is False
    assert caught.value.action is Action.CONTACT_PROVIDER


def test_code_sent_as_numeric_string_is_understood(fake_upstream, upstream_session):
    """Given tianapi sends its code as the string "150",
    when an image is recognised,
    then it is classified like the number 150."""
    fake_upstream.script("tianapi", [Reply(body='{"code":"150","msg":"API可用次数不足"}'.encode())])

    with pytest.raises(UpstreamError) as caught:
        make(fake_upstream, upstream_session).recognize(IMAGE)

    assert_classified(caught.value, lookup("tianapi", 150))


# --------------------------------------------------------------------------- real protocol checks


def test_wrong_key_is_refused_with_230(fake_upstream, upstream_session):
    """Given a recogniser configured with the wrong key,
    when an image is recognised,
    then the fake refuses it with 230 (fix the configuration) and the key is not recorded."""
    with pytest.raises(UpstreamError) as caught:
        make(fake_upstream, upstream_session, key="not-the-key").recognize(IMAGE)

    assert_classified(caught.value, lookup("tianapi", 230))
    assert fake_upstream.requests[0].key_ok is False
    assert "not-the-key" not in repr(fake_upstream.requests) + repr(fake_upstream.calls)


def test_image_over_three_megabytes_is_refused_with_290(fake_upstream, upstream_session):
    """Given an image one byte over tianapi's 3 MB limit,
    when it is recognised,
    then 290 comes back, classified as a bad image."""
    with pytest.raises(UpstreamError) as caught:
        make(fake_upstream, upstream_session).recognize(b"\0" * (TIANAPI_MAX_IMAGE_BYTES + 1))

    assert_classified(caught.value, lookup("tianapi", 290))
    assert caught.value.action is Action.BAD_IMAGE


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"img": "aGVsbG8="}, 240),
        ({"key": "wrong", "img": "aGVsbG8="}, 230),
        ({"key": "", "img": "aGVsbG8="}, 230),
        ({"key": TIANAPI_TEST_KEY}, 280),
        ({"key": TIANAPI_TEST_KEY, "img": ""}, 260),
        ({"key": TIANAPI_TEST_KEY, "img": "not base64!"}, 270),
        ({"key": TIANAPI_TEST_KEY, "img": "aGVsbG8"}, 270),
        ({"key": TIANAPI_TEST_KEY, "img": "aGVsbG8="}, 200),
    ],
    ids=["no-key", "wrong-key", "empty-key", "no-img", "empty-img", "bad-base64", "bad-padding", "ok"],
)
def test_fake_checks_the_documented_protocol(fake_upstream, fields, code):
    """Given a raw form POST with `fields`,
    when the fake tianapi receives it,
    then it answers HTTP 200 with the documented code and message."""
    body = raw_post(fake_upstream, **fields)

    assert body["code"] == code
    assert body["msg"] == ("success" if code == 200 else lookup("tianapi", code).message)


def test_fake_also_accepts_a_get_query_string(fake_upstream):
    """Given the documented GET form ?key=...&img=base64,
    when the fake tianapi receives it,
    then it answers success for the decoded image."""
    response = requests.get(
        fake_upstream.tianapi_url, params={"key": TIANAPI_TEST_KEY, "img": base64.b64encode(IMAGE)}, timeout=5
    )

    assert response.json()["code"] == 200
    assert fake_upstream.requests[0].key_via == {"query"}
    assert fake_upstream.calls[0].image_sha256 == hashlib.sha256(IMAGE).hexdigest()


def test_fake_rate_limit_answers_130(fake_upstream, upstream_session):
    """Given the fake limits tianapi to 2 requests per second,
    when three images are recognised at once,
    then the third gets the retryable code 130 and only two were billed."""
    fake_upstream.rate_limit("tianapi", 2)
    recognizer = make(fake_upstream, upstream_session)
    recognizer.recognize(IMAGE)
    recognizer.recognize(IMAGE)

    with pytest.raises(UpstreamError) as caught:
        recognizer.recognize(IMAGE)

    assert_classified(caught.value, lookup("tianapi", 130))
    assert caught.value.retryable is True
    assert fake_upstream.billed("tianapi") == 2


# --------------------------------------------------------------------------- transport failures


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (429, b"Too Many Requests", "UPSTREAM_RATE_LIMITED"),
        (500, b"Internal Server Error", "UPSTREAM_UNAVAILABLE"),
        (502, b"<html>Bad Gateway</html>", "UPSTREAM_UNAVAILABLE"),
        (503, b"", "UPSTREAM_UNAVAILABLE"),
        (404, b"Not Found", "UPSTREAM_HTTP_ERROR"),
        (403, b'{"message":"Forbidden"}', "UPSTREAM_HTTP_ERROR"),
    ],
)
def test_http_errors_without_a_code_are_mapped_by_status(fake_upstream, upstream_session, status, body, code):
    """Given tianapi answers HTTP `status` without a JSON code,
    when an image is recognised,
    then a PipelineError with `code` names tianapi, the status and the body size (not the body)."""
    fake_upstream.script("tianapi", [Reply(http_status=status, body=body)])

    with pytest.raises(PipelineError) as caught:
        make(fake_upstream, upstream_session).recognize(IMAGE)

    error = caught.value
    assert (error.provider, error.code) == ("tianapi", code)
    assert error.retryable is lookup("pipeline", code).retryable
    assert f"HTTP {status}" in error.message and f"{len(body)}-byte" in error.message
    assert TIANAPI_TEST_KEY not in error.message


@pytest.mark.parametrize(
    "reply", [Reply(garbage=True), Reply(body=b"[1, 2]"), Reply(body=b'{"msg":"success"}')], ids=str
)
def test_success_status_without_usable_json_is_kept_as_an_unusable_answer(fake_upstream, upstream_session, reply):
    """Given tianapi answers HTTP 200 with HTML, a JSON array or JSON without a code,
    when an image is recognised,
    then no exception: the answer may have been billed, so it comes back marked unusable
    (to be stored and never paid for again), with a bounded excerpt for the operator."""
    fake_upstream.script("tianapi", [reply])

    answer = make(fake_upstream, upstream_session).recognize(IMAGE)

    assert answer.provider == "tianapi"
    assert answer.unusable and "HTTP 200" in answer.unusable
    assert answer.payload["http_status"] == 200
    assert len(fake_upstream.calls) == 1


def test_stall_beyond_read_timeout_is_a_timeout_and_is_not_repeated(fake_upstream, upstream_session):
    """Given tianapi stalls 2 s and the read timeout is 0.3 s,
    when an image is recognised,
    then UPSTREAM_TIMEOUT (retryable) comes quickly, chained to the requests timeout,
    and the request reached the server exactly once (no read retry)."""
    fake_upstream.script("tianapi", [Reply(stall_s=2.0)])
    started = time.monotonic()

    with pytest.raises(PipelineError) as caught:
        make(fake_upstream, upstream_session, timeout=FAST).recognize(IMAGE)

    assert time.monotonic() - started < 1.5
    assert (caught.value.provider, caught.value.code, caught.value.retryable) == ("tianapi", "UPSTREAM_TIMEOUT", True)
    assert isinstance(caught.value.__cause__, requests.Timeout)
    assert len(fake_upstream.calls) == 1


def test_closed_connection_is_unavailable_and_is_not_repeated(fake_upstream, upstream_session):
    """Given tianapi reads the request and closes the socket without answering,
    when an image is recognised,
    then UPSTREAM_UNAVAILABLE is raised and the request reached the server exactly once."""
    fake_upstream.script("tianapi", [Reply(close=True)])

    with pytest.raises(PipelineError) as caught:
        make(fake_upstream, upstream_session).recognize(IMAGE)

    assert (caught.value.code, caught.value.retryable) == ("UPSTREAM_UNAVAILABLE", True)
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert len(fake_upstream.calls) == 1


def test_next_request_after_a_fault_succeeds(fake_upstream, upstream_session):
    """Given one scripted closed connection,
    when two images are recognised on the same session,
    then the first fails and the second succeeds (the script is consumed, the pool recovers)."""
    fake_upstream.script("tianapi", [Reply(close=True)])
    recognizer = make(fake_upstream, upstream_session)

    with pytest.raises(PipelineError):
        recognizer.recognize(IMAGE)
    assert recognizer.recognize(IMAGE).payload == [DEFAULT_PLATE]
    assert fake_upstream.scripted_left("tianapi") == 0


def test_nothing_listening_is_unavailable(fake_upstream, upstream_session, refused_url):
    """Given a URL where nothing listens,
    when an image is recognised,
    then UPSTREAM_UNAVAILABLE (retryable) is raised."""
    with pytest.raises(PipelineError) as caught:
        make(fake_upstream, upstream_session, url=refused_url).recognize(IMAGE)

    assert (caught.value.provider, caught.value.code, caught.value.retryable) == (
        "tianapi",
        "UPSTREAM_UNAVAILABLE",
        True,
    )


def test_form_body_decodes_to_the_key_and_the_image_like_any_form_parser_would():
    # Given a key with characters that need escaping and an image whose base64 holds + / and =
    key = "k+y/=&?中"
    image = bytes([0xFB, 0xFF, 0xBF, 0x00, 0x10]) * 7
    assert {"+", "/", "="} <= set(base64.b64encode(image).decode("ascii"))
    # When the form body is built
    body = form_body(key, image)
    # Then a standard form parser reads back exactly that key and that image
    fields = parse_qs(body.decode("ascii"), strict_parsing=True)
    assert fields == {"key": [key], "img": [base64.b64encode(image).decode("ascii")]}
