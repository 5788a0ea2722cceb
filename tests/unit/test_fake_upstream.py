"""The fake upstream against the providers' documents and its own fault behaviours, over real sockets.

The expected messages and codes below are the documents' own words, written out here, so a
wrong transcription in the fake fails too.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
import threading
import time
import zlib

import pytest
import requests

from tests.fakes.fixtures import APIZERO_TEST_KEY, TIANAPI_TEST_KEY
from tests.fakes.upstream import (
    ABSENT,
    APIZERO_CODES,
    APIZERO_ERRORS,
    DEFAULT_PLATE,
    DEFAULT_VEHICLE_LICENSE,
    TIANAPI_CODES,
    FakeUpstream,
    Reply,
)

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
IMAGE_B64 = base64.b64encode(IMAGE).decode()
TIMEOUT = (2.0, 5.0)  # connect, read


def tianapi(up: FakeUpstream, timeout: tuple[float, float] = TIMEOUT, **kwargs) -> requests.Response:
    return requests.post(up.tianapi_url, data={"key": TIANAPI_TEST_KEY, "img": IMAGE_B64}, timeout=timeout, **kwargs)


def apizero(up: FakeUpstream, timeout: tuple[float, float] = TIMEOUT, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {APIZERO_TEST_KEY}"}
    body = {"input_type": "base64", "input_data": IMAGE_B64}
    return requests.post(up.apizero_url, json=body, headers=headers, timeout=timeout, **kwargs)


# --------------------------------------------------------------------------- the documents' codes


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (100, "内部服务器错误"),
        (130, "API调用频率超限"),
        (150, "API可用次数不足"),
        (170, "Referer请求来源受限"),
        (230, "key错误或为空"),
        (250, "数据返回为空"),
        (290, "超过最大输入限制"),
    ],
)
def test_tianapi_documented_code_carries_the_documented_message(fake_upstream, code, message):
    # Given tianapi scripted to answer with a code from its document's 返回状态码 table
    fake_upstream.script("tianapi", [Reply(code=code)])

    # When a plate is asked for
    response = tianapi(fake_upstream)

    # Then the body is that code with the document's 错误信息, over HTTP 200, and nothing is billed
    assert response.status_code == 200
    assert response.json() == {"code": code, "msg": message}
    assert TIANAPI_CODES[code] == message
    assert fake_upstream.billed() == 0


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        (4000, "VALIDATION_ERROR", "缺少必填参数 input_type / input_data,或参数格式不合法"),
        (4015, "KEY_REQUIRED", "此接口需要 API Key,匿名不可调用"),
        (5020, "UPSTREAM_ERROR", "上游服务 HTTP 异常,请稍后重试"),
        (5021, "UPSTREAM_INVALID", "图片无法识别,请确认为行驶证且图片清晰完整"),
        (5030, "UPSTREAM_MISSING", "行驶证识别服务未开通,请联系管理员"),
    ],
)
def test_apizero_documented_code_carries_the_documented_status_and_message(fake_upstream, code, status, message):
    # Given apizero scripted to answer with a code from its document's 错误码 table
    fake_upstream.script("apizero", [Reply(code=code)])

    # When a vehicle licence is asked for
    response = apizero(fake_upstream)

    # Then the body has that code, the document's status name and 说明, with an HTTP error status
    body = response.json()
    assert (body["code"], body["status"], body["msg"]) == (code, status, message)
    assert response.status_code == APIZERO_ERRORS[code][0] >= 400
    assert APIZERO_CODES[code] == (status, message)
    assert fake_upstream.billed() == 0


def test_every_transcribed_code_is_sent_with_its_message(fake_upstream):
    # Given every code of both transcriptions scripted in turn
    fake_upstream.script("tianapi", [Reply(code=code) for code in TIANAPI_CODES])
    fake_upstream.script("apizero", [Reply(code=code) for code in APIZERO_CODES])

    # When each is asked for
    tianapi_bodies = [tianapi(fake_upstream).json() for _ in TIANAPI_CODES]
    apizero_bodies = [apizero(fake_upstream).json() for _ in APIZERO_CODES]

    # Then each answer carries its code and the transcribed message, and none is billed
    assert [(b["code"], b["msg"]) for b in tianapi_bodies] == list(TIANAPI_CODES.items())
    assert [(b["code"], (b["status"], b["msg"])) for b in apizero_bodies] == list(APIZERO_CODES.items())
    assert fake_upstream.billed() == 0


def test_successes_carry_the_documented_codes_and_messages(fake_upstream):
    # Given no script: the default answers
    # When each provider is asked once
    plate, licence = tianapi(fake_upstream).json(), apizero(fake_upstream).json()

    # Then tianapi says code 200 "success" with its result, apizero code 0 "成功" with its data, both billed
    assert (plate["code"], plate["msg"], plate["result"]) == (200, "success", DEFAULT_PLATE)
    assert (licence["code"], licence["msg"], licence["data"]) == (0, "成功", DEFAULT_VEHICLE_LICENSE)
    assert (fake_upstream.billed("tianapi"), fake_upstream.billed("apizero")) == (1, 1)


# --------------------------------------------------------------------------- billing


def test_billing_counts_the_success_code_in_the_body_whatever_the_http_status(fake_upstream):
    # Given tianapi answers: successes (one with HTTP 500, one as raw text), errors and non-JSON faults
    fake_upstream.script(
        "tianapi",
        [
            Reply(code=200),
            Reply(code=200, http_status=500),
            Reply(raw_json='{"code":200,"msg":"success","result":{"number":NaN}}'),
            Reply(body=b'{"code":"200","msg":"success"}', http_status=502),
            Reply(code=130),
            Reply(code=150, http_status=200),
            Reply(raw_json='{"code":250,"msg":"数据返回为空"}'),
            Reply(http_status=429, body=b"Too Many Requests"),
            Reply(garbage=True),
        ],
    )
    # ... and apizero: successes (one with HTTP 503), errors
    fake_upstream.script(
        "apizero", [Reply(code=0), Reply(code=0, http_status=503), Reply(code=5020), Reply(code=4000, http_status=200)]
    )

    # When each scripted answer is fetched
    statuses = [tianapi(fake_upstream).status_code for _ in range(9)]
    statuses += [apizero(fake_upstream).status_code for _ in range(4)]

    # Then exactly the answers whose body says 200 (tianapi) or 0 (apizero) are billed
    assert statuses == [200, 500, 200, 502, 200, 200, 200, 429, 200, 200, 503, 502, 200]
    assert [call.outcome for call in fake_upstream.calls] == [
        *["200", "200", "200", "200", "130", "150", "250", "http_429", "garbage"],
        *["0", "0", "5020", "4000"],
    ]
    assert (fake_upstream.billed("tianapi"), fake_upstream.billed("apizero"), fake_upstream.billed()) == (4, 2, 6)


def test_stalled_success_the_client_gave_up_on_is_billed(fake_upstream):
    # Given a success that stalls longer than the client waits, then an error that does the same
    fake_upstream.script("tianapi", [Reply(stall_s=0.6), Reply(code=130, stall_s=0.6)])

    # When the client asks twice with a short read timeout
    for _ in range(2):
        with pytest.raises(requests.Timeout):
            tianapi(fake_upstream, timeout=(2.0, 0.15))

    # Then both requests are recorded, and only the success is billed, though never read
    assert [call.outcome for call in fake_upstream.calls] == ["200", "130"]
    assert fake_upstream.billed() == 1


def test_a_held_answer_is_sent_when_the_test_releases_it(fake_upstream):
    # Given an answer held for at most 10 s, released by the test
    release = threading.Event()
    fake_upstream.script("tianapi", [Reply(stall_s=10, release=release)])

    # When the client asks, and the test releases the answer while the client waits
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    answer = tianapi(fake_upstream, timeout=(2.0, 10.0))

    # Then the answer arrives at the release, not at the bound
    assert answer.json()["code"] == 200
    assert 0.3 <= time.monotonic() - started < 5


def test_closed_connection_is_not_billed(fake_upstream):
    # Given a reply that closes the connection without answering
    fake_upstream.script("apizero", [Reply(close=True)])

    # When the client asks
    with pytest.raises(requests.ConnectionError):
        apizero(fake_upstream)

    # Then it is recorded as closed and not billed
    assert [call.outcome for call in fake_upstream.calls] == ["closed"]
    assert fake_upstream.billed() == 0


# --------------------------------------------------------------------------- result / data / raw_json


@pytest.mark.parametrize("value", ["oops", [1, 2], None, 0, {"number": 7}])
def test_tianapi_success_with_a_raw_result(fake_upstream, value):
    # Given a billed tianapi success whose result is an arbitrary JSON value
    fake_upstream.script("tianapi", [Reply(code=200, result=value)])

    # When it is fetched
    body = tianapi(fake_upstream).json()

    # Then the body carries exactly that result, and it is billed
    assert body == {"code": 200, "msg": "success", "result": value}
    assert fake_upstream.billed() == 1


def test_apizero_success_data_may_be_any_value_null_or_absent(fake_upstream):
    # Given apizero successes whose data is a list, JSON null, absent, and (without a code) a string
    fake_upstream.script("apizero", [Reply(code=0, data=[1, 2]), Reply(code=0, data=None), Reply(data=ABSENT)])
    fake_upstream.script("apizero", [Reply(data="oops")])

    # When they are fetched
    bodies = [apizero(fake_upstream).json() for _ in range(4)]

    # Then each carries its data as given (null present, absent missing), and all four are billed
    assert [body["data"] for body in bodies if "data" in body] == [[1, 2], None, "oops"]
    assert "data" not in bodies[2] and bodies[2]["code"] == 0 and bodies[2]["msg"] == "成功"
    assert fake_upstream.billed("apizero") == 4


@pytest.mark.parametrize(
    ("text", "billed"),
    [
        ('{"code":200,"msg":"success","result":{"color":"blue","number":NaN}}', 1),
        ('{"code":200,"msg":"success","result":{"color":"blue","number":1e400}}', 1),
        ('{"code":200,"msg":"success","result":{"number":1234567890123456789012345678901234567890}}', 1),
        ('{"code":200,"msg":"success","result":{"number":"沪A', 1),  # truncated: still a billed answer
        ('{"code":200.0,"msg":"success","result":[]}', 1),
        ('{"code":150,"msg":"API可用次数不足","result":Infinity}', 0),
        ("[200]", 0),
    ],
)
def test_raw_json_is_sent_verbatim_and_billed_by_its_code(fake_upstream, text, billed):
    # Given a reply with an exact body text json.dumps could not produce
    fake_upstream.script("tianapi", [Reply(raw_json=text)])

    # When it is fetched
    response = tianapi(fake_upstream)

    # Then the bytes are exactly that text, as JSON, billed only when its code is 200
    assert response.content == text.encode("utf-8")
    assert response.headers["Content-Type"].startswith("application/json")
    assert fake_upstream.billed() == billed


# --------------------------------------------------------------------------- gzip and padding


def test_gzip_body_decodes_to_the_normal_answer(fake_upstream):
    # Given gzipped answers: an apizero success and a tianapi error
    fake_upstream.script("apizero", [Reply(gzip=True)])
    fake_upstream.script("tianapi", [Reply(code=150, gzip=True)])

    # When they are fetched (the raw bytes kept too)
    licence = apizero(fake_upstream, stream=True)
    raw = licence.raw.read(decode_content=False)
    plate = tianapi(fake_upstream)

    # Then they are gzip streams with Content-Encoding: gzip that decode to the documented answers
    assert licence.headers["Content-Encoding"] == "gzip" and raw[:2] == b"\x1f\x8b"
    assert int(licence.headers["Content-Length"]) == len(raw)
    assert json.loads(gzip.decompress(raw))["data"] == DEFAULT_VEHICLE_LICENSE
    assert plate.headers["Content-Encoding"] == "gzip"
    assert plate.json() == {"code": 150, "msg": "API可用次数不足"}
    assert fake_upstream.billed() == 1


def test_pad_to_makes_a_large_answer_that_is_still_the_answer(fake_upstream):
    # Given a 5 MB tianapi success and an apizero raw success padded to 100 kB
    fake_upstream.script("tianapi", [Reply(pad_to=5_000_000)])
    fake_upstream.script("apizero", [Reply(raw_json='{"code":0,"msg":"成功","data":{}}', pad_to=100_000)])

    # When they are fetched
    plate, licence = tianapi(fake_upstream), apizero(fake_upstream)

    # Then each body is at least that size, is still valid JSON with the answer, and both are billed
    assert 5_000_000 <= len(plate.content) == int(plate.headers["Content-Length"])
    assert plate.json()["result"] == DEFAULT_PLATE and plate.json()["code"] == 200
    assert len(licence.content) >= 100_000 and licence.text.startswith('{"code":0,"msg":"成功","data":{}}   ')
    assert licence.json()["data"] == {}
    assert fake_upstream.billed() == 2


def test_gzip_padding_is_a_valid_gzip_stream(fake_upstream):
    # Given a gzipped tianapi success padded to 16 MiB + 3 bytes (pieces, remainder and combined CRC)
    size = (16 << 20) + 3
    fake_upstream.script("tianapi", [Reply(gzip=True, pad_to=size)])

    # When its compressed bytes are fetched
    response = tianapi(fake_upstream, stream=True)
    raw = response.raw.read(decode_content=False)

    # Then they are small, and gzip (which checks CRC and length) decodes them to the padded answer
    assert len(raw) < 200_000
    body = gzip.decompress(raw)
    assert len(body) >= size
    assert json.loads(body)["result"] == DEFAULT_PLATE
    assert fake_upstream.billed() == 1


def test_gzip_bomb_of_one_gib_is_a_small_stream(fake_upstream):
    # Given a gzipped success padded to 1 GiB
    fake_upstream.script("apizero", [Reply(gzip=True, pad_to=1 << 30)])

    # When its compressed bytes are fetched, without decoding them
    started = time.monotonic()
    response = apizero(fake_upstream, stream=True)
    raw = response.raw.read(decode_content=False)
    elapsed = time.monotonic() - started

    # Then about 1 MB arrives quickly, announcing at least 1 GiB (mod 2**32) in its trailer, and it
    # starts like the answer
    assert 500_000 < len(raw) < 2_000_000 and elapsed < 3.0
    assert struct.unpack("<I", raw[-4:])[0] >= 1 << 30
    start = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw[:4096], 1 << 16)
    assert start.decode().startswith('{"code":0,"msg":"成功","data":{')
    assert fake_upstream.billed() == 1


# --------------------------------------------------------------------------- drip


def test_drip_sends_slowly_and_a_dripped_success_is_billed(fake_upstream):
    # Given a success dripped one byte every 0.3 s
    fake_upstream.script("tianapi", [Reply(drip_s=0.3)])

    # When the client reads it with a 0.1 s read timeout
    started = time.monotonic()
    with pytest.raises((requests.Timeout, requests.ConnectionError)):
        tianapi(fake_upstream, timeout=(2.0, 0.1))

    # Then the client gave up quickly, and the answer is billed
    assert time.monotonic() - started < 1.0
    assert fake_upstream.billed() == 1


def test_drip_delivers_the_whole_body_at_its_pace(fake_upstream):
    # Given a short error body dripped one byte every 10 ms
    text = '{"code":130}'
    fake_upstream.script("tianapi", [Reply(raw_json=text, drip_s=0.01)])

    # When it is read in full
    started = time.monotonic()
    response = tianapi(fake_upstream)

    # Then it arrives whole, no faster than one byte per 10 ms
    assert response.content == text.encode()
    assert time.monotonic() - started >= len(text) * 0.01
    assert fake_upstream.billed() == 0


def test_drip_stops_when_the_fake_stops():
    # Given a fake dripping a success one byte a second to a client reading it
    upstream = FakeUpstream(tianapi_key=TIANAPI_TEST_KEY).start()
    upstream.script("tianapi", [Reply(drip_s=1.0)])
    errors: list[BaseException] = []

    def read() -> None:
        try:
            tianapi(upstream, timeout=(2.0, 10.0))
        except requests.RequestException as error:
            errors.append(error)

    client = threading.Thread(target=read)
    client.start()
    time.sleep(0.3)

    # When the fake stops
    started = time.monotonic()
    upstream.stop()
    client.join(timeout=5)

    # Then the client sees the connection end promptly instead of waiting for the whole body
    assert not client.is_alive()
    assert time.monotonic() - started < 3.0
    assert len(errors) == 1
    assert upstream.billed() == 1
