"""Logs are structured, correlated by object key and request id, and never carry personal data,
API keys or image bytes."""

from __future__ import annotations

import base64
import json

from tests.conftest import load_event, make_jpeg
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
