"""`vehicle-ocr invoke EVENT.json`: `sam local invoke` without Docker, as a user runs it.

`vehicle-ocr up` runs in a subprocess on free ports; `vehicle-ocr invoke` runs the real handler on
a file from events/ in another subprocess against that stack's AWS endpoint and prints the
handler's JSON response. Mistakes end with one line on stderr: 2 for bad usage (no such file,
not JSON), 1 for a failed operation (no stack, an S3 event's object not uploaded).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.integration.running_up import RunningUp, start_up
from tests.integration.test_cli import PROMPTLY_S, assert_one_line_error, run_cli

EVENTS = ROOT / "events"
SAMPLE_PLATE = ROOT / "samples" / "plates" / "016-yellow-coach.jpg"


@pytest.fixture
def running_up(upstream_env: dict[str, str]) -> Iterator[RunningUp]:
    """`vehicle-ocr up` whose providers are the fake upstreams."""
    with start_up(upstream_env) as running:
        yield running


def invoke(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_cli("invoke", *args, cwd=ROOT, timeout=timeout)


def response_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


# ------------------------------------------------------------------------------------------------ against `up`
def test_invoke_runs_the_query_function_on_an_api_gateway_sample_event(running_up):
    # Given `vehicle-ocr up` running on free ports, with nothing recognised yet
    # When the sample API Gateway event is invoked, the function chosen from the event's shape
    result = invoke(str(EVENTS / "apigw-get-result.json"), "--endpoint", running_up.aws_endpoint)
    # Then the QueryFunction's own response is printed: a 404 in the API's error shape, read from the stack's table
    response = response_of(result)
    assert response["statusCode"] == 404, response
    assert json.loads(response["body"])["error"]["code"] == "NOT_FOUND"


def test_invoke_of_an_s3_event_needs_its_object_then_recognises_it(running_up, tmp_path):
    # Given `vehicle-ocr up` running, and the sample S3 event naming plates/cam1/car.jpg, which nothing uploaded
    event = EVENTS / "s3-put-plate.json"
    # When it is invoked
    missing = invoke(str(event), "--endpoint", running_up.aws_endpoint)
    # Then one line says the object is not in the bucket and to upload it first; exit 1
    assert_one_line_error(missing, 1, "s3://vehicle-ocr-images/plates/cam1/car.jpg", "upload")

    # Given the object uploaded (as `aws s3 cp` does) and recognised by the stack
    running_up.s3().put_object(Bucket="vehicle-ocr-images", Key="plates/cam1/car.jpg", Body=SAMPLE_PLATE.read_bytes())
    record = running_up.record_of("plates/cam1/car.jpg")
    assert record["status"] == "SUCCEEDED", record
    # When the sample event is invoked again, naming the function
    result = invoke(str(event), "--function", "recognize", "--endpoint", running_up.aws_endpoint)
    # Then the RecognizeFunction's response is printed: the same object version, hence the same record
    # (a second delivery of one upload finds its record and pays nothing again)
    response = response_of(result)
    assert response["malformed"] == 0
    assert [entry["id"] for entry in response["processed"]] == [record["id"]], response
    assert result.stdout.lstrip().startswith("{"), "the function's logs go to stderr, not into the response"


# ------------------------------------------------------------------------------------------------ mistakes
def test_invoke_of_a_missing_file_is_a_usage_error():
    # Given an event file that does not exist
    # When it is invoked
    result = invoke("events/no-such-event.json", timeout=60)
    # Then one line names the file; exit 2
    assert_one_line_error(result, 2, "no such file", "events/no-such-event.json")


def test_invoke_of_a_file_that_is_not_json_is_a_usage_error(tmp_path: Path):
    # Given a file that is not JSON
    path = tmp_path / "event.json"
    path.write_text("Records: [s3]\n", encoding="utf-8")
    # When it is invoked
    result = invoke(str(path), timeout=60)
    # Then one line says it is not JSON, where; exit 2
    assert_one_line_error(result, 2, str(path), "not JSON", "line 1")


def test_invoke_of_an_event_of_no_known_shape_asks_for_the_function(tmp_path: Path):
    # Given a JSON object that is neither S3 records nor an API Gateway request
    path = tmp_path / "event.json"
    path.write_text('{"detail-type": "Scheduled Event"}', encoding="utf-8")
    # When it is invoked without --function
    result = invoke(str(path), timeout=60)
    # Then one line asks for --function; exit 2
    assert_one_line_error(result, 2, "--function")


def test_invoke_without_a_running_stack_says_to_start_it():
    # Given nothing listening on the endpoint (a port that is bound but not listening)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{holder.getsockname()[1]}"
        # When a sample event is invoked against it
        result = invoke(str(EVENTS / "apigw-get-result.json"), "--endpoint", endpoint, timeout=PROMPTLY_S)
    # Then one line says nothing answers there and how to start the stack; exit 1
    assert_one_line_error(result, 1, endpoint, "vehicle-ocr up")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
