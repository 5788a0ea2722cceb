"""A hostile upstream: whatever the provider answers, every upload ends as exactly one record,
each failure as one message, and a billed answer is paid for once.

Each case drives the real RecognizeFunction handler (Lambda's asynchronous retries included)
against the moto server and the fake upstream, which answers as the provider's document
says it may, and worse. For every case:

* exactly one record for the object, SUCCEEDED or FAILED with the expected code;
* one failure message per FAILED record, one success event per SUCCEEDED one;
* billed calls for the image ≤ 1, or ≤ 1 + ``UPSTREAM_TIMEOUT_RETRIES`` for calls that got
  no answer (reported on the record as ``possibly_billed``);
* delivering the event again, and the same bytes under another key, calls nobody;
* no API key, owner or address in any log line; Python memory of the invocation bounded.

The stack and the fake are shared by the module (each case has its own image and key) so that
fifty cases cost seconds, not minutes.
"""

from __future__ import annotations

import copy
import json
import tracemalloc
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import pytest

from tests.conftest import (
    FakeLambdaContext,
    Stack,
    apply_environment,
    fresh_stack,
    invoke_async,
    load_event,
    load_function_module,
    make_jpeg,
    recognize_environment,
)
from tests.fakes.fixtures import APIZERO_TEST_KEY, TIANAPI_TEST_KEY
from tests.fakes.log_audit import register_secret
from tests.fakes.upstream import ABSENT, DEFAULT_VEHICLE_LICENSE, FakeUpstream, Reply, sha256_hex
from vehicle_ocr.bounded import TRUNCATED

TIMEOUT_RETRIES = 1
# Short, so that stalls and drip-feeding cost seconds, yet long enough for the fake upstream, which runs in
# this process under tracemalloc, to stream a gzip bomb on two busy cores (at 1 s and 2 s its answer was
# sometimes cut by the read timeout or the deadline instead of refused at the answer cap, then retried).
READ_TIMEOUT_S = 3.0
DEADLINE_S = 8.0
# For the cases that only wait on the read timeout or the deadline (a stalled or dripping answer of a few
# bytes): their calls end at these, so shorter ones cost the suite seconds less per call.
QUICK_READ_TIMEOUT_S = 1.5
QUICK_DEADLINE_S = QUICK_READ_TIMEOUT_S + 1
# The function has 512 MB; one invocation's Python allocations stay far below, whatever the answer.
MEMORY_BOUND_BYTES = 64 * 1024 * 1024
OWNER, ADDRESS = "欧阳明远", "浙江省杭州市西湖区文三路一百号"
LICENCE = dict(DEFAULT_VEHICLE_LICENSE, owner=OWNER, address=ADDRESS)
GOOD_PLATE = {"number": "沪A0762学", "color": "yellow"}


def _ok(provider: str, **fields: Any) -> str:
    """A success body as raw JSON text, for values ``json.dumps`` refuses to write."""
    if provider == "tianapi":
        return '{"code":200,"msg":"success","result":' + fields.get("result", json.dumps(GOOD_PLATE)) + "}"
    return '{"code":0,"msg":"成功","data":' + fields.get("data", json.dumps(LICENCE)) + ',"request_id":"r1"}'


def _licence_with(**raw_fields: str) -> str:
    """The licence as JSON text with some fields replaced by raw JSON values."""
    parts = [f'"{name}":{json.dumps(value, ensure_ascii=False)}' for name, value in LICENCE.items()]
    parts = [part for part in parts if part.split(":", 1)[0].strip('"') not in raw_fields]
    parts += [f'"{name}":{value}' for name, value in raw_fields.items()]
    return "{" + ",".join(parts) + "}"


@dataclass(frozen=True)
class Case:
    id: str
    provider: str  # tianapi (plates) or apizero (vehicle licences)
    replies: tuple[Reply, ...]  # consumed one per request; then the fake answers normally
    status: str
    code: str | None = None  # expected error.code for FAILED
    possibly_billed: int = 0  # expected on the record
    max_calls: int | None = None  # requests expected at most (None: 1)
    check: Any = field(default=None, compare=False)  # extra assertions on the record
    deadline_s: float = 0.0  # the function's call deadline, when not DEADLINE_S
    read_timeout_s: float = 0.0  # the function's read timeout, when not READ_TIMEOUT_S


def _always(reply: Reply, times: int = 9) -> tuple[Reply, ...]:
    return (reply,) * times


def _plates(record: dict) -> list[str]:
    return [plate["number"] for plate in record["plates"]]


CASES = [
    # ---------------------------------------------------------------- numbers DynamoDB cannot hold
    Case(
        "tianapi-nan-confidence",
        "tianapi",
        (Reply(raw_json=_ok("tianapi", result='{"number":"沪A0762学","color":"yellow","confidence":NaN}')),),
        "SUCCEEDED",
        check=lambda r: _plates(r) == ["沪A0762学"],
    ),
    Case(
        "tianapi-1e400-confidence",
        "tianapi",
        (Reply(raw_json=_ok("tianapi", result='{"number":"沪A0762学","color":"yellow","confidence":1e400}')),),
        "SUCCEEDED",
    ),
    Case(
        "tianapi-1e200-score",
        "tianapi",
        (Reply(raw_json=_ok("tianapi", result='{"number":"沪A0762学","color":"yellow","score":1e200}')),),
        "SUCCEEDED",
    ),
    Case(
        "tianapi-40-digit-number",
        "tianapi",
        (Reply(raw_json=_ok("tianapi", result='{"number":1234567890123456789012345678901234567890}')),),
        "SUCCEEDED",
        check=lambda r: r["plates"][0]["valid"] is False and len(r["plates"][0]["number"]) <= 32,
    ),
    Case(
        "apizero-nan-and-infinities",
        "apizero",
        (Reply(raw_json=_ok("apizero", data=_licence_with(total_mass="NaN", curb_weight="1e400", remarks="-1e400"))),),
        "SUCCEEDED",
        check=lambda r: (
            r["vehicle_license"]["raw"]["total_mass"] == "nan" and r["vehicle_license"]["total_mass_kg"] is None
        ),
    ),
    Case(
        "apizero-1e200-and-40-digits",
        "apizero",
        (
            Reply(
                raw_json=_ok(
                    "apizero",
                    data=_licence_with(total_mass="1e200", document_id="1234567890123456789012345678901234567890"),
                )
            ),
        ),
        "SUCCEEDED",
        check=lambda r: r["vehicle_license"]["raw"]["document_id"] == "1234567890123456789012345678901234567890",
    ),
    Case(
        "apizero-deeply-nested-remarks",
        "apizero",
        (Reply(raw_json=_ok("apizero", data=_licence_with(remarks="[" * 60 + "]" * 60))),),
        "SUCCEEDED",
        check=lambda r: TRUNCATED in json.dumps(r["vehicle_license"]["raw"]["remarks"], ensure_ascii=False),
    ),
    # ---------------------------------------------------------------- sizes that break keys and items
    Case(
        "tianapi-3000-character-plate",
        "tianapi",
        (Reply(code=200, result={"number": "沪A" + "1" * 3000, "color": "blue"}),),
        "SUCCEEDED",
        check=lambda r: len(r["plates"][0]["number"]) <= 32 and r["plates"][0]["valid"] is False,
    ),
    Case(
        "tianapi-150-plates",
        "tianapi",
        (Reply(code=200, result=[{"number": f"沪A{n:05d}", "color": "blue"} for n in range(150)]),),
        "SUCCEEDED",
        check=lambda r: len(r["plates"]) == 20 and r["truncated"] == {"plates": 150},
    ),
    Case(
        "apizero-3000-character-vin",
        "apizero",
        (Reply(code=0, data=dict(LICENCE, vin="L" * 3000)),),
        "SUCCEEDED",
        check=lambda r: len(r["vehicle_license"]["vin"]) <= 32 and r["vehicle_license"]["vin_valid"] is False,
    ),
    Case(
        "apizero-2000-character-plate",
        "apizero",
        (Reply(code=0, data=dict(LICENCE, plate_number="沪" + "A" * 2000)),),
        "SUCCEEDED",
        check=lambda r: len(r["vehicle_license"]["plate_number"]) <= 32,
    ),
    Case(
        "apizero-long-owner-and-address",
        "apizero",
        (Reply(code=0, data=dict(LICENCE, owner=OWNER * 500, address=ADDRESS * 300)),),
        "SUCCEEDED",
        check=lambda r: len(r["vehicle_license"]["address"]) <= 256,
    ),
    Case(
        "apizero-5000-extra-fields",
        "apizero",
        (Reply(code=0, data={**LICENCE, **{f"extra_{n}": "x" * 50 for n in range(5000)}}),),
        "SUCCEEDED",
        check=lambda r: len(json.dumps(r["vehicle_license"]["raw"])) < 40_000,
    ),
    Case(
        "apizero-500-kb-answer",
        "apizero",
        (Reply(code=0, data=dict(LICENCE, remarks="备注" * 250_000)),),
        "SUCCEEDED",
        check=lambda r: r["vehicle_license"]["remarks"].endswith(TRUNCATED),
    ),
    Case(
        "tianapi-600-kb-padding",
        "tianapi",
        (Reply(code=200, pad_to=600_000),),
        "SUCCEEDED",
    ),
    Case(
        "tianapi-5-mb-answer",
        "tianapi",
        (Reply(code=200, pad_to=5_000_000),),
        "FAILED",
        "UPSTREAM_BAD_RESPONSE",
    ),
    Case(
        "apizero-gzip-bomb",
        "apizero",
        (Reply(code=0, gzip=True, pad_to=1 << 30),),
        "FAILED",
        "UPSTREAM_BAD_RESPONSE",
    ),
    Case(
        "tianapi-gzip-bomb",
        "tianapi",
        (Reply(code=200, gzip=True, pad_to=1 << 30),),
        "FAILED",
        "UPSTREAM_BAD_RESPONSE",
    ),
    Case("tianapi-gzip-answer", "tianapi", (Reply(code=200, gzip=True),), "SUCCEEDED"),
    Case("apizero-gzip-answer", "apizero", (Reply(code=0, gzip=True),), "SUCCEEDED"),
    # ---------------------------------------------------------------- billed, but nonsense
    Case(
        "tianapi-http-500-around-200", "tianapi", (Reply(code=200, http_status=500),), "FAILED", "UPSTREAM_BAD_RESPONSE"
    ),
    Case("apizero-http-500-around-0", "apizero", (Reply(code=0, http_status=500),), "FAILED", "UPSTREAM_BAD_RESPONSE"),
    Case("tianapi-result-string", "tianapi", (Reply(code=200, result="oops"),), "FAILED", "UPSTREAM_BAD_RESPONSE"),
    Case("tianapi-result-number", "tianapi", (Reply(code=200, result=42),), "FAILED", "UPSTREAM_BAD_RESPONSE"),
    Case(
        "tianapi-result-list-of-numbers",
        "tianapi",
        (Reply(code=200, result=[1, 2]),),
        "FAILED",
        "UPSTREAM_BAD_RESPONSE",
    ),
    Case(
        "tianapi-result-unknown-object",
        "tianapi",
        (Reply(code=200, result={"total": 1}),),
        "FAILED",
        "UPSTREAM_BAD_RESPONSE",
    ),
    Case("tianapi-result-absent", "tianapi", (Reply(code=200, result=ABSENT),), "FAILED", "NO_PLATE_FOUND"),
    Case("tianapi-result-null", "tianapi", (Reply(code=200, result=None),), "FAILED", "NO_PLATE_FOUND"),
    Case("apizero-data-list", "apizero", (Reply(code=0, data=[1, 2]),), "FAILED", "UPSTREAM_BAD_RESPONSE"),
    Case("apizero-data-absent", "apizero", (Reply(code=0, data=ABSENT),), "FAILED", "UPSTREAM_BAD_RESPONSE"),
    Case("apizero-data-null", "apizero", (Reply(code=0, data=None),), "FAILED", "UPSTREAM_BAD_RESPONSE"),
    Case("apizero-data-string", "apizero", (Reply(code=0, data="行驶证"),), "FAILED", "UPSTREAM_BAD_RESPONSE"),
    Case("tianapi-html-200", "tianapi", (Reply(garbage=True),), "FAILED", "UPSTREAM_BAD_RESPONSE"),
    Case("apizero-html-200", "apizero", (Reply(garbage=True),), "FAILED", "UPSTREAM_BAD_RESPONSE"),
    Case("tianapi-json-array-200", "tianapi", (Reply(body=b"[1, 2]"),), "FAILED", "UPSTREAM_BAD_RESPONSE"),
    Case(
        "tianapi-json-without-code", "tianapi", (Reply(body=b'{"msg":"success"}'),), "FAILED", "UPSTREAM_BAD_RESPONSE"
    ),
    Case(
        "tianapi-float-code",
        "tianapi",
        (Reply(raw_json='{"code":200.5,"result":{}}'),),
        "FAILED",
        "UPSTREAM_BAD_RESPONSE",
    ),
    Case(
        "tianapi-boolean-code",
        "tianapi",
        (Reply(raw_json='{"code":true,"result":{}}'),),
        "FAILED",
        "UPSTREAM_BAD_RESPONSE",
    ),
    Case(
        "tianapi-truncated-json",
        "tianapi",
        (Reply(raw_json='{"code":200,"msg":"success","res'),),
        "FAILED",
        "UPSTREAM_BAD_RESPONSE",
    ),
    Case(
        "apizero-not-utf8",
        "apizero",
        (Reply(body=b'{"code":0,"data":{"vin":"\xff\xfe"}}'),),
        "FAILED",
        "UPSTREAM_BAD_RESPONSE",
    ),
    Case(
        "tianapi-nesting-too-deep",
        "tianapi",
        (Reply(raw_json='{"code":200,"result":' + "[" * 100_000 + "]" * 100_000 + "}"),),
        "FAILED",
        "UPSTREAM_BAD_RESPONSE",
    ),
    Case(
        "tianapi-code-as-string", "tianapi", (Reply(raw_json=_ok("tianapi").replace("200", '"200"', 1)),), "SUCCEEDED"
    ),
    Case(
        "apizero-code-as-string",
        "apizero",
        (Reply(raw_json=_ok("apizero").replace('"code":0', '"code":"0"')),),
        "SUCCEEDED",
    ),
    # ---------------------------------------------------------------- answers that come late or never
    Case(
        "tianapi-slow-success-once",
        "tianapi",
        (Reply(code=200, stall_s=QUICK_READ_TIMEOUT_S + 0.5),),
        "SUCCEEDED",
        possibly_billed=1,
        max_calls=2,
        read_timeout_s=QUICK_READ_TIMEOUT_S,
    ),
    Case(
        "apizero-slow-success-always",
        "apizero",
        _always(Reply(code=0, stall_s=QUICK_READ_TIMEOUT_S + 0.5)),
        "FAILED",
        "UPSTREAM_TIMEOUT",
        possibly_billed=2,
        max_calls=2,
        read_timeout_s=QUICK_READ_TIMEOUT_S,
    ),
    Case(
        "tianapi-drip-feed",
        "tianapi",
        _always(Reply(code=200, drip_s=0.3)),
        "FAILED",
        "UPSTREAM_TIMEOUT",
        possibly_billed=2,
        max_calls=2,
        # Only the deadline ends an answer that never stops arriving: a shorter one, past the read timeout
        deadline_s=QUICK_DEADLINE_S,
        read_timeout_s=QUICK_READ_TIMEOUT_S,
    ),
    Case(
        "apizero-dropped-after-request-once",
        "apizero",
        (Reply(close=True),),
        "SUCCEEDED",
        possibly_billed=1,
        max_calls=2,
    ),
    Case(
        "tianapi-dropped-after-request-always",
        "tianapi",
        _always(Reply(close=True)),
        "FAILED",
        "UPSTREAM_UNAVAILABLE",
        possibly_billed=2,
        max_calls=2,
    ),
    # ---------------------------------------------------------------- errors, with text we must not copy
    Case(
        "tianapi-undocumented-code-echoing-the-key",
        "tianapi",
        (Reply(code=999, msg=f"key {TIANAPI_TEST_KEY} refused"),),
        "FAILED",
        "999",
        check=lambda r: r["error"]["message"] == "undocumented upstream code",
    ),
    Case(
        "apizero-undocumented-code-with-an-id-number",
        "apizero",
        (Reply(code=4999, msg=f"{OWNER} 身份证 310101199001011234 无效"),),
        "FAILED",
        "4999",
        check=lambda r: "310101" not in r["error"]["message"],
    ),
    Case(
        "tianapi-documented-code-with-a-strange-message",
        "tianapi",
        (Reply(code=150, msg="余额不足\x00\x1b[31m请联系 13800138000"),),
        "FAILED",
        "150",
        check=lambda r: r["error"]["message"] == "API可用次数不足",
    ),
    Case(
        "tianapi-rate-limited-always",
        "tianapi",
        _always(Reply(code=130)),
        "FAILED",
        "130",
        max_calls=9,
    ),
    Case(
        "apizero-upstream-error-always",
        "apizero",
        _always(Reply(code=5020)),
        "FAILED",
        "5020",
        max_calls=9,
    ),
    Case(
        "apizero-http-429-text-always",
        "apizero",
        _always(Reply(http_status=429, body=b"Too Many Requests")),
        "FAILED",
        "UPSTREAM_RATE_LIMITED",
        max_calls=9,
    ),
    Case(
        "tianapi-502-html-then-success",
        "tianapi",
        (Reply(http_status=502, body=b"<html>Bad Gateway</html>"),),
        "SUCCEEDED",
        max_calls=2,
    ),
    Case("tianapi-redirect", "tianapi", (Reply(http_status=302, body=b"moved"),), "FAILED", "UPSTREAM_HTTP_ERROR"),
]


# ----------------------------------------------------------------------------- module fixtures
@pytest.fixture(scope="module")
def hostile_stack(moto_endpoint: str) -> Stack:
    return fresh_stack(moto_endpoint)


@pytest.fixture(scope="module")
def hostile_upstream() -> Any:
    with FakeUpstream(tianapi_key=TIANAPI_TEST_KEY, apizero_key=APIZERO_TEST_KEY) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def hostile_apps(hostile_stack: Stack, hostile_upstream: FakeUpstream) -> Any:
    """``hostile_apps(deadline_s, read_timeout_s)``: the handler with that call deadline and read timeout
    (0: DEADLINE_S, READ_TIMEOUT_S), loaded once for each pair."""
    register_secret(OWNER, "owner planted by the hostile suite")
    register_secret(ADDRESS, "address planted by the hostile suite")
    env = recognize_environment(
        hostile_stack,
        hostile_upstream,
        UPSTREAM_READ_TIMEOUT=str(READ_TIMEOUT_S),
        UPSTREAM_CALL_DEADLINE=str(DEADLINE_S),
        UPSTREAM_TIMEOUT_RETRIES=str(TIMEOUT_RETRIES),
    )
    loaded: dict[tuple[float, float], Any] = {}

    def app_with(deadline_s: float, read_timeout_s: float) -> Any:
        if (deadline_s, read_timeout_s) not in loaded:
            with pytest.MonkeyPatch.context() as patch:  # both are read at cold start only
                if deadline_s:
                    patch.setenv("UPSTREAM_CALL_DEADLINE", str(deadline_s))
                if read_timeout_s:
                    patch.setenv("UPSTREAM_READ_TIMEOUT", str(read_timeout_s))
                name = f"recognize_app_hostile_{len(loaded)}"
                loaded[(deadline_s, read_timeout_s)] = load_function_module("recognize", name)
        return loaded[(deadline_s, read_timeout_s)]

    with pytest.MonkeyPatch.context() as patch:
        apply_environment(patch, env)
        yield app_with


def _event(stack: Stack, key: str, body: bytes) -> dict[str, Any]:
    """The sample S3 event, naming ``key`` (URL-encoded as S3 sends it) freshly put into the bucket."""
    sample = "s3-put-plate.json" if key.startswith("plates/") else "s3-put-vehicle-license.json"
    event = copy.deepcopy(load_event(sample))
    s3 = event["Records"][0]["s3"]
    s3["bucket"].update(name=stack.bucket, arn=f"arn:aws:s3:::{stack.bucket}")
    s3["object"]["key"] = quote_plus(key)
    s3["object"].update(stack.put_image(key, body))
    return event


# ----------------------------------------------------------------------------- the suite
def test_the_suite_is_hostile_enough():
    """Given the cases below, then there are at least 40 distinct odd answers, of both providers."""
    assert len({case.id for case in CASES}) == len(CASES) >= 40
    assert {case.provider for case in CASES} == {"tianapi", "apizero"}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_odd_answer_ends_as_one_record_and_is_paid_once(
    case, hostile_stack, hostile_apps, hostile_upstream, capture_logs
):
    stack, upstream, hostile_app = hostile_stack, hostile_upstream, hostile_apps(case.deadline_s, case.read_timeout_s)
    folder = "plates" if case.provider == "tianapi" else "vehicle-licenses"
    image = make_jpeg(seed=1000 + CASES.index(case))
    key = f"{folder}/hostile/{case.id} 照片+1.jpg"
    digest = sha256_hex(image)
    success_code = "200" if case.provider == "tianapi" else "0"
    upstream.set_answer(image, [GOOD_PLATE] if case.provider == "tianapi" else LICENCE, provider=case.provider)
    stack.failure_messages(), stack.success_events()  # start from empty queues
    logs = capture_logs(hostile_app)

    # Given the upstream answers this image as the case says
    upstream.script(case.provider, case.replies)

    # When S3 announces the upload and Lambda invokes (and retries) the function
    event = _event(stack, key, image)
    tracemalloc.start()
    try:
        invoke_async(hostile_app, event, FakeLambdaContext())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    upstream.clear_script(case.provider)  # replies the pipeline rightly never asked for

    # Then exactly one record, with the expected outcome
    (record,) = stack.records_of(key)
    assert record["status"] == case.status, record.get("error")
    if case.status == "FAILED":
        assert record["error"]["code"] == case.code, record["error"]
    assert record["possibly_billed"] == case.possibly_billed
    if case.check is not None:
        assert case.check(record), record

    # And one announcement of it: a failure message, or a success event
    messages = [m for m in stack.failure_messages() if m["body"]["id"] == record["id"]]
    events = [e for e in stack.success_events() if e["detail"]["id"] == record["id"]]
    assert (len(messages), len(events)) == ((1, 0) if case.status == "FAILED" else (0, 1))
    if messages:
        assert messages[0]["body"]["error"] == record["error"]
        assert messages[0]["attributes"]["error_code"] == case.code

    # And the upstream billed this image at most once (calls that got no answer: at most one retry)
    calls = [call for call in upstream.calls if call.image_sha256 == digest]
    billed = [call for call in calls if call.outcome == success_code]
    assert len(billed) <= 1 + (TIMEOUT_RETRIES if case.possibly_billed else 0)
    assert len(calls) <= (case.max_calls or 1)
    assert record["upstream_attempts"] == len(calls)

    # When the event is delivered again, and the same bytes arrive under another key
    invoke_async(hostile_app, event, FakeLambdaContext())
    if record["status"] == "SUCCEEDED" or case.code == "UPSTREAM_BAD_RESPONSE":
        invoke_async(hostile_app, _event(stack, f"{folder}/hostile/copy-{case.id}.jpg", image), FakeLambdaContext())

    # Then nobody is called (a paid answer, even an unusable one, is reused) and there is still one record
    assert [call for call in upstream.calls if call.image_sha256 == digest] == calls
    assert len(stack.records_of(key)) == 1

    # And no log line carries a key or personal data; memory stayed bounded
    text = logs.getvalue()
    for secret in (TIANAPI_TEST_KEY, APIZERO_TEST_KEY, OWNER, ADDRESS):
        assert secret not in text
    assert peak < MEMORY_BOUND_BYTES, f"peak {peak / 2**20:.0f} MiB"
