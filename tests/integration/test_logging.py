"""Logs are structured, correlated by object key and request id, and never carry personal data,
API keys or image bytes."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from tests.conftest import load_event, load_function_module, make_jpeg
from tests.fakes.fixtures import APIZERO_TEST_KEY, TIANAPI_TEST_KEY
from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE, Reply
from tests.integration.test_recognize_events import stage_event

OWNER = "欧阳明月"
ADDRESS = "杭州市西湖区文三路398号"


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_logs_are_correlated_and_free_of_personal_data(
    stack, recognize_app, lambda_context, fake_upstream, capture_logs, capsys
):
    logs = capture_logs(recognize_app)
    # Given a vehicle licence naming its owner and address, and a plate upload that fails upstream
    licence = make_jpeg(seed=21)
    fake_upstream.set_answer(licence, dict(DEFAULT_VEHICLE_LICENSE, owner=OWNER, address=ADDRESS))
    fake_upstream.script("tianapi", [Reply(code=150)])
    plate = make_jpeg(seed=22)
    event = stage_event(
        stack,
        load_event("s3-put-multiple-records.json"),
        {"vehicle-licenses/b.png": licence, "plates/lane1/a.jpg": plate},
    )

    # When the handler processes them
    recognize_app.lambda_handler(event, lambda_context)
    output = capsys.readouterr()
    text = logs.getvalue() + output.out + output.err

    # Then every processed object has a structured line with its key and the invocation's request id
    lines = json_lines(logs.getvalue())
    processed = [line for line in lines if line.get("message") == "object processed"]
    assert sorted(line["object_key"] for line in processed) == [
        "plates/lane1/a.jpg",
        "plates/lane2/c.jpg",
        "vehicle-licenses/b.png",
    ]
    assert {line["function_request_id"] for line in processed} == {lambda_context.aws_request_id}
    assert {line.get("error_code") for line in processed} == {None, "150"}

    # And no owner, address, API key or image data appears anywhere in the output
    for secret in (OWNER, ADDRESS, TIANAPI_TEST_KEY, APIZERO_TEST_KEY):
        assert secret not in text
    for image in (licence, plate):
        assert base64.b64encode(image)[:40].decode() not in text


SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


@pytest.fixture
def root_at_debug() -> Iterator[io.StringIO]:
    """The root logger at DEBUG with a handler that keeps every line that reaches it."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(previous)


def test_sdk_debug_logs_never_carry_the_licence_owner(
    stack, recognize_env, monkeypatch, root_at_debug, lambda_context, fake_upstream, capture_logs, capsys
):
    # Given LOG_LEVEL=DEBUG and the root logger at DEBUG (botocore's DEBUG lines carry request
    # bodies: the results table's PutItem names the owner and address)
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    app = load_function_module("recognize", "recognize_app")
    logs = capture_logs(app)
    app.logger.setLevel("DEBUG")
    licence = make_jpeg(seed=31)
    event = stage_event(stack, load_event("s3-put-vehicle-license.json"), {"vehicle-licenses/front.jpg": licence})

    # When the handler recognises the licence (the fake upstream answers its default licence)
    result = app.lambda_handler(event, lambda_context)
    output = capsys.readouterr()
    text = root_at_debug.getvalue() + logs.getvalue() + output.out + output.err

    # Then the licence was recognised and stored, its owner and address with it
    assert [item["status"] for item in result["processed"]] == ["SUCCEEDED"]
    # And the AWS SDK's loggers stayed at WARNING whatever the root level, so no log line,
    # whichever logger wrote it, names the owner or the address
    assert all(not logging.getLogger(name).isEnabledFor(logging.INFO) for name in SDK_LOGGERS)
    assert not logging.getLogger("botocore.endpoint").isEnabledFor(logging.DEBUG)
    for secret in (DEFAULT_VEHICLE_LICENSE["owner"], DEFAULT_VEHICLE_LICENSE["address"]):
        assert not spelled(secret).search(text), secret


def spelled(text: str) -> re.Pattern[str]:
    """``text`` as it is, or JSON-escaped (\\u5f20, \\\\u5f20...) as request bodies are logged."""
    parts = [re.escape(c) if c.isascii() else f"(?:{re.escape(c)}|\\\\+u{ord(c):04x})" for c in text]
    return re.compile("".join(parts), re.IGNORECASE)
