"""The running stack's query API answers like the deployed one: errors in the documented shape, raw UTF-8 understood.

README "Query API": API Gateway's own refusals (403 unknown route, ...) use the same shape as the function's
errors, ``{"error": {"code": ..., "message": ...}}``, through the QueryApi's GatewayResponses in template.yaml.
Locally they answered ``{"message": "Missing Authentication Token"}``; and a raw UTF-8 query or path (curl sends
what it is given) could get an HTML 400 from Python's http.server.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from vehicle_ocr_local.api_gateway import gateway_responses_from_template
from vehicle_ocr_local.stack import LocalStack, StackConfig
from vehicle_ocr_local.template import load_template


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # The query API needs no upstream: the offline engine is the default provider.
    with LocalStack(StackConfig(aws_port=0, api_port=0, environment={}, concurrency=1, quiet=True)) as running:
        yield running


def raw_get(api_url: str, target: bytes) -> tuple[int, dict[str, str], bytes]:
    """GET ``target`` with its bytes as they are (no client-side encoding); status, headers, body."""
    address = urlsplit(api_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("GET", "/results/a/b"), ("POST", "/results"), ("DELETE", "/plates/沪A0762学"), ("GET", "/")],
)
def test_unknown_routes_and_methods_answer_the_templates_gateway_response(stack, method, path):
    # Given the running stack's query API
    # When a route or method the API does not have is requested
    response = requests.request(method, f"{stack.api_url}{path}", timeout=10)
    # Then the answer is API Gateway's 403 in the template's documented error shape
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert response.json() == {
        "error": {"code": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token"}
    }


def test_the_shape_is_read_from_template_yaml():
    # Given template.yaml's QueryApi
    responses = gateway_responses_from_template(load_template(), "QueryFunction")
    # Then the local gateway serves its DEFAULT_4XX and DEFAULT_5XX templates (no hard-coded copy)
    assert set(responses) >= {"DEFAULT_4XX", "DEFAULT_5XX"}
    for spec in responses.values():
        assert "$context.error.responseType" in spec["ResponseTemplates"]["application/json"]


def test_raw_utf8_plate_in_the_path_is_answered_as_json(stack):
    # Given `curl http://127.0.0.1:3000/plates/沪A0762入`: raw UTF-8, with 0x85 (入 is E5 85 A5)
    for plate in ("沪A0762学", "沪A0762入"):
        # When it is sent as it is
        status, headers, body = raw_get(stack.api_url, b"/plates/" + plate.encode())
        # Then the function answers in JSON, as for the percent-encoded spelling
        assert status == 200, body
        assert headers["content-type"] == "application/json"
        assert json.loads(body) == requests.get(f"{stack.api_url}/plates/{plate}", timeout=10).json()


def test_raw_utf8_query_string_is_decoded_as_utf8(stack):
    # Given no record for the object plates/沪入A.jpg
    # When its latest record is asked for with the key raw in the query string
    status, headers, body = raw_get(stack.api_url, "/results?bucket=vehicle-ocr-images&key=plates/沪入A.jpg".encode())
    # Then the function answers JSON (its own 404: no record for that object), not http.server's HTML 400
    assert headers["content-type"] == "application/json"
    assert status == 404, body
    assert json.loads(body)["error"]["code"] == "NOT_FOUND"
    # And it is the same answer the percent-encoded request gets
    encoded = requests.get(
        f"{stack.api_url}/results", params={"bucket": "vehicle-ocr-images", "key": "plates/沪入A.jpg"}, timeout=10
    )
    assert (encoded.status_code, encoded.json()["error"]["code"]) == (404, "NOT_FOUND")
