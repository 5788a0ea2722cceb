"""The upstream transport (``providers.http.post``) against a hostile upstream, over real sockets.

Every upstream call costs money and runs inside a Lambda with a time limit and a memory size,
so whatever the fake upstream does (drip, stall, hang up, bomb) the call ends in bounded time
and memory, says whether the answer may have been billed, and leaves the session usable.
"""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest

# Fixtures fake_upstream, upstream_session, refused_url: tests/fakes/fixtures.py (plugin in tests/conftest.py).
from tests.fakes.fixtures import TIANAPI_TEST_KEY
from tests.fakes.upstream import DEFAULT_PLATE, Reply
from vehicle_ocr.errors import PipelineError
from vehicle_ocr.providers import TianapiPlateRecognizer
from vehicle_ocr.providers.http import UpstreamLimits, post
from vehicle_ocr.providers.tianapi import FORM_CONTENT_TYPE, form_body
from vehicle_ocr.storage import _to_dynamo

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
FOUR_MIB = 4 * 1024 * 1024


def ask(session, fake_upstream, limits: UpstreamLimits):
    """One tianapi POST, as the recogniser sends it."""
    return post(
        session,
        fake_upstream.tianapi_url,
        provider="tianapi",
        limits=limits,
        data=form_body(TIANAPI_TEST_KEY, IMAGE),
        headers={"Content-Type": FORM_CONTENT_TYPE},
    )


def ask_expecting_failure(session, url_or_upstream, limits: UpstreamLimits) -> tuple[PipelineError, float]:
    """The PipelineError one POST raises, and how long the call took."""
    started = time.monotonic()
    with pytest.raises(PipelineError) as caught:
        if isinstance(url_or_upstream, str):
            post(session, url_or_upstream, provider="tianapi", limits=limits, data=form_body(TIANAPI_TEST_KEY, IMAGE))
        else:
            ask(session, url_or_upstream, limits)
    return caught.value, time.monotonic() - started


# --------------------------------------------------------------------------- time


def test_a_drip_fed_answer_is_cut_at_the_deadline(fake_upstream, upstream_session):
    """Given an upstream that sends a billed success one byte every 0.2 s (a read timeout never fires:
    the whole answer would take minutes),
    when it is asked with a 1 s read timeout and a 1.5 s deadline,
    then the call ends at the deadline with UPSTREAM_TIMEOUT, marked possibly billed."""
    fake_upstream.script("tianapi", [Reply(code=200, drip_s=0.2, pad_to=600)])
    limits = UpstreamLimits(connect_timeout_s=1.0, read_timeout_s=1.0, deadline_s=1.5)

    error, elapsed = ask_expecting_failure(upstream_session, fake_upstream, limits)

    assert (error.provider, error.code) == ("tianapi", "UPSTREAM_TIMEOUT")
    assert error.possibly_billed is True
    assert fake_upstream.billed() == 1  # the upstream did bill it: that is why it must count as possibly billed
    assert 1.4 <= elapsed < 5.0  # not before the deadline (the read timeout never fired), nor after the drip


def test_the_session_works_after_a_deadline_cut_a_call(fake_upstream, upstream_session):
    """Given a session whose connection was shut down by the deadline in the middle of an answer,
    when the same session asks again, several times,
    then each call gets its complete answer promptly (the cut connection is not reused)."""
    ask(upstream_session, fake_upstream, UpstreamLimits.of(2.0))  # a warm, pooled connection
    fake_upstream.script("tianapi", [Reply(code=200, drip_s=0.2, pad_to=600)])
    ask_expecting_failure(upstream_session, fake_upstream, UpstreamLimits(1.0, 1.0, deadline_s=0.6))

    for _ in range(3):
        started = time.monotonic()
        answer = ask(upstream_session, fake_upstream, UpstreamLimits(1.0, 2.0, deadline_s=2.0))
        assert time.monotonic() - started < 1.0
        assert answer.status == 200 and answer.problem is None
        assert answer.json()["result"] == DEFAULT_PLATE


def test_an_answer_that_never_starts_times_out_as_possibly_billed(fake_upstream, upstream_session):
    """Given an upstream that holds back its (billed) answer for 3 s,
    when it is asked with a 1 s read timeout,
    then UPSTREAM_TIMEOUT is raised after about a second, marked possibly billed."""
    fake_upstream.script("tianapi", [Reply(code=200, stall_s=3.0)])

    error, elapsed = ask_expecting_failure(upstream_session, fake_upstream, UpstreamLimits(1.0, 1.0, deadline_s=10.0))

    assert error.code == "UPSTREAM_TIMEOUT" and error.possibly_billed is True
    assert elapsed < 2.5


def test_an_answer_that_stalls_halfway_times_out_as_possibly_billed(fake_upstream, upstream_session):
    """Given an upstream that sends the headers and then one byte every 3 s,
    when it is asked with a 1 s read timeout,
    then UPSTREAM_TIMEOUT is raised once the body stalls, marked possibly billed."""
    fake_upstream.script("tianapi", [Reply(code=200, drip_s=3.0)])

    error, elapsed = ask_expecting_failure(upstream_session, fake_upstream, UpstreamLimits(1.0, 1.0, deadline_s=10.0))

    assert error.code == "UPSTREAM_TIMEOUT" and error.possibly_billed is True
    assert elapsed < 2.5


# --------------------------------------------------------------------------- connections


def test_a_refused_connection_cannot_have_been_billed(refused_url, upstream_session):
    """Given nothing listening at the URL,
    when it is asked,
    then UPSTREAM_UNAVAILABLE is raised, not possibly billed (the request never left)."""
    error, _ = ask_expecting_failure(upstream_session, refused_url, UpstreamLimits.of(1.0))

    assert error.code == "UPSTREAM_UNAVAILABLE"
    assert error.possibly_billed is False


def test_a_connection_closed_after_the_request_may_have_been_billed(fake_upstream, upstream_session):
    """Given an upstream that reads the request and hangs up without answering,
    when it is asked,
    then UPSTREAM_UNAVAILABLE is raised, possibly billed (the request reached the server), and it was sent once."""
    fake_upstream.script("tianapi", [Reply(close=True)])

    error, _ = ask_expecting_failure(upstream_session, fake_upstream, UpstreamLimits.of(2.0))

    assert error.code == "UPSTREAM_UNAVAILABLE"
    assert error.possibly_billed is True
    assert [call.outcome for call in fake_upstream.calls] == ["closed"]  # never repeated by the transport


# --------------------------------------------------------------------------- size


def test_a_gzip_bomb_is_refused_in_bounded_memory(fake_upstream, upstream_session):
    """Given a billed success gzip-compressed from 1 GiB of padding (about 1 MB on the wire),
    when it is asked with the default 4 MiB answer limit,
    then the answer comes back without a body and with the reason, and memory stayed under 32 MiB."""
    fake_upstream.script("tianapi", [Reply(code=200, gzip=True, pad_to=1 << 30)])
    limits = UpstreamLimits(1.0, 5.0, deadline_s=10.0, max_answer_bytes=FOUR_MIB)

    tracemalloc.start()
    try:
        answer = ask(upstream_session, fake_upstream, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert answer.status == 200
    assert answer.body is None and answer.problem
    assert "limit" in answer.problem
    assert peak < 32 * 1024 * 1024


def test_an_answer_over_the_size_limit_is_refused(fake_upstream, upstream_session):
    """Given a 5 MB billed success,
    when it is asked with a 4 MiB answer limit,
    then the answer comes back without a body and with the reason."""
    fake_upstream.script("tianapi", [Reply(code=200, pad_to=5_000_000)])

    answer = ask(upstream_session, fake_upstream, UpstreamLimits(1.0, 5.0, deadline_s=10.0, max_answer_bytes=FOUR_MIB))

    assert answer.status == 200
    assert answer.body is None and answer.problem
    assert answer.json() is None


def test_a_gzip_answer_is_decoded(fake_upstream, upstream_session):
    """Given an upstream that gzip-compresses its success answer,
    when it is asked,
    then the body comes back decoded, as the JSON the upstream wrote."""
    fake_upstream.script("tianapi", [Reply(code=200, gzip=True)])

    answer = ask(upstream_session, fake_upstream, UpstreamLimits.of(2.0))

    assert answer.status == 200 and answer.problem is None
    assert not answer.body.startswith(b"\x1f\x8b")
    assert answer.json() == {"code": 200, "msg": "success", "result": DEFAULT_PLATE}


def test_a_padded_gzip_answer_under_the_limit_is_decoded_whole(fake_upstream, upstream_session):
    """Given a gzip answer that decompresses to 3 MB (under the 4 MiB limit),
    when it is asked,
    then all of it comes back, decoded and valid JSON."""
    fake_upstream.script("tianapi", [Reply(code=200, gzip=True, pad_to=3_000_000)])

    answer = ask(upstream_session, fake_upstream, UpstreamLimits(1.0, 5.0, deadline_s=10.0, max_answer_bytes=FOUR_MIB))

    assert answer.problem is None
    assert len(answer.body) >= 3_000_000
    assert answer.json()["result"] == DEFAULT_PLATE


# --------------------------------------------------------------------------- interpretation


def recognizer(fake_upstream, upstream_session) -> TianapiPlateRecognizer:
    return TianapiPlateRecognizer(
        fake_upstream.tianapi_url,
        lambda: TIANAPI_TEST_KEY,
        upstream_session,
        (1.0, 5.0),
        deadline_s=10.0,
        max_answer_bytes=FOUR_MIB,
    )


def test_a_billed_bomb_is_kept_as_an_unusable_paid_answer(fake_upstream, upstream_session):
    """Given a billed success that is a gzip bomb,
    when the recogniser asks for a plate,
    then no exception is raised: the answer is returned as paid and unusable, saying why,
    with a small excerpt for the operator (so the image is never paid for again)."""
    fake_upstream.script("tianapi", [Reply(code=200, gzip=True, pad_to=1 << 30)])

    answer = recognizer(fake_upstream, upstream_session).recognize(IMAGE)

    assert answer.provider == "tianapi"
    assert answer.unusable and "limit" in answer.unusable
    assert answer.payload == {"http_status": 200, "body": None}
    assert fake_upstream.billed() == 1


def test_a_billed_answer_with_numbers_dynamodb_refuses_is_kept_storable(fake_upstream, upstream_session):
    """Given a billed success whose plate carries NaN, 1e400 and a 40-digit number (valid to Python's json),
    when the recogniser reads it,
    then the plate is kept with those numbers as text, as strict JSON that storage writes."""
    fake_upstream.script(
        "tianapi",
        [
            Reply(
                raw_json='{"code":200,"msg":"success","result":{"number":"沪A12345","color":"blue",'
                '"score":NaN,"area":1e400,"id":1234567890123456789012345678901234567890}}'
            )
        ],
    )

    answer = recognizer(fake_upstream, upstream_session).recognize(IMAGE)

    assert answer.unusable is None
    plate = answer.payload[0]
    assert (plate["number"], plate["score"], plate["area"]) == ("沪A12345", "nan", "inf")
    assert plate["id"] == "1234567890123456789012345678901234567890"
    json.dumps(answer.payload, allow_nan=False)
    _to_dynamo({"payload": answer.payload})


def test_a_gzip_success_is_recognised(fake_upstream, upstream_session):
    """Given an upstream that gzip-compresses a billed success,
    when the recogniser asks for a plate,
    then the plate is read from the decoded answer."""
    fake_upstream.script("tianapi", [Reply(code=200, gzip=True)])

    answer = recognizer(fake_upstream, upstream_session).recognize(IMAGE)

    assert answer.unusable is None
    assert answer.payload == [DEFAULT_PLATE]
