"""The local API Gateway adapter: HTTP in, REST proxy event (payload 1.0) to a real handler, HTTP out.

The socket tests serve a small Powertools ``APIGatewayRestResolver`` app over real HTTP with ``requests`` (and a raw
socket where ``requests`` would tidy the request up first: raw UTF-8 paths, repeated headers).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
import requests
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.shared.cookies import Cookie

from vehicle_ocr_local.api_gateway import (
    LocalApiServer,
    LocalLambdaContext,
    Route,
    build_event,
    gateway_responses_from_template,
    match_route,
    response_from_proxy,
    routes_from_template,
)
from vehicle_ocr_local.template import load_template

PLATE = "沪A0762学"
PLATE_ENCODED = "%E6%B2%AAA0762%E5%AD%A6"  # what every conforming client puts on the wire
DOTTED_PLATE = "沪A·0762学"
DOTTED_PLATE_ENCODED = "%E6%B2%AAA%C2%B70762%E5%AD%A6"

ROUTES = [
    Route("GET", "/results/{id}"),
    Route("GET", "/plates/{number}"),
    Route("GET", "/results"),
    Route("GET", "/boom"),
    Route("POST", "/blobs"),
    Route("ANY", "/echo/{proxy+}"),
]


def make_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()

    def context_summary() -> dict[str, Any]:
        context = app.lambda_context
        return {
            "function_name": context.function_name,
            "aws_request_id": context.aws_request_id,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "remaining": context.get_remaining_time_in_millis(),
        }

    @app.get("/results/<result_id>")
    def get_result(result_id: str) -> dict[str, Any]:
        return {"id": result_id, "event": app.current_event.raw_event, "context": context_summary()}

    @app.get("/plates/<number>")
    def get_plate(number: str) -> dict[str, Any]:
        return {"number": number, "decoded": unquote(number), "event": app.current_event.raw_event}

    @app.get("/results")
    def list_results() -> dict[str, Any]:
        return {"event": app.current_event.raw_event}

    @app.get("/boom")
    def boom() -> dict[str, Any]:
        raise RuntimeError("the query function fell over")

    @app.post("/blobs")
    def echo_blob() -> Response:
        event = app.current_event
        data = base64.b64decode(event.body) if event.is_base64_encoded else (event.body or "").encode()
        return Response(
            status_code=201,
            content_type="application/octet-stream",
            body=data,
            headers={"X-Was-Base64": str(event.is_base64_encoded).lower()},
            cookies=[Cookie(name="a", value="1"), Cookie(name="b", value="2")],
        )

    @app.route("/echo/.+", method=["GET", "HEAD", "POST", "OPTIONS"])
    def echo_any() -> dict[str, Any]:
        return {"event": app.current_event.raw_event}

    return app


@pytest.fixture
def server() -> Any:
    app = make_app()
    with LocalApiServer(lambda event, context: app.resolve(event, context), ROUTES) as running:
        yield running


def event_of(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()["event"]


def raw_request(server: LocalApiServer, request: bytes) -> tuple[int, dict[str, list[str]], bytes]:
    """Send ``request`` bytes as they are; return status, headers (lower-case names) and body."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(status_line.split()[1]), headers, body


def adapter_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("local-apigw")]


# ----------------------------------------------------------------------------------------- path parameters


def test_percent_encoded_chinese_plate_reaches_the_function_as_api_gateway_sends_it(server: LocalApiServer) -> None:
    # Given a plate number percent-encoded in the path, as requests, browsers and SDKs send it
    # When it is fetched
    response = requests.get(f"{server.url}/plates/{PLATE_ENCODED}", timeout=10)

    # Then the event keeps the encoding in path, requestContext.path and pathParameters (REST APIs do not decode),
    # Powertools routes on it, and decoding the parameter gives the plate
    body = response.json()
    assert response.status_code == 200
    assert body["event"]["pathParameters"] == {"number": PLATE_ENCODED}
    assert body["event"]["path"] == f"/plates/{PLATE_ENCODED}"
    assert body["event"]["requestContext"]["path"] == f"/local/plates/{PLATE_ENCODED}"
    assert body["number"] == PLATE_ENCODED
    assert body["decoded"] == PLATE


def test_raw_utf8_plate_in_the_request_line_arrives_like_the_encoded_one(server: LocalApiServer) -> None:
    # Given a client (curl) that sends the plate as raw UTF-8 bytes in the request line
    request = b"GET /plates/" + PLATE.encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

    # When it is sent
    status, _, body = raw_request(server, request)

    # Then the function sees exactly what the percent-encoded request gives, and decodes it to the plate
    answer = json.loads(body)
    assert status == 200
    assert answer["event"]["pathParameters"] == {"number": PLATE_ENCODED}
    assert answer["decoded"] == PLATE


@pytest.mark.parametrize("plate", ["沪A0762入", "沪A0762学", "粤B·12345"])  # 入 is E5 85 A5: 0x85 is latin-1 NEL
def test_raw_utf8_with_bytes_latin1_calls_whitespace_is_answered_as_json(server: LocalApiServer, plate: str) -> None:
    # Given a client (curl) that sends a plate as raw UTF-8, with bytes that are whitespace when read as latin-1
    request = b"GET /plates/" + plate.encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

    # When it is sent
    status, headers, body = raw_request(server, request)

    # Then it reaches the function like the percent-encoded spelling (no HTML 400 from http.server)
    assert status == 200, body
    assert headers["content-type"] == ["application/json"]
    answer = json.loads(body)
    assert answer["event"]["pathParameters"] == {"number": quote(plate, safe="")}
    assert answer["decoded"] == plate


def test_raw_utf8_query_string_is_decoded_as_utf8(server: LocalApiServer) -> None:
    # Given `curl "http://127.0.0.1:3000/results?key=plates/沪入A.jpg"`: raw UTF-8 after the "?"
    key = "plates/沪入 A.jpg"
    request = (
        b"GET /results?bucket=vehicle-ocr-images&key="
        + key.replace(" ", "+").encode()
        + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )

    # When it is sent
    status, _, body = raw_request(server, request)

    # Then the function gets the key decoded as UTF-8, as API Gateway hands it over
    assert status == 200, body
    assert json.loads(body)["event"]["queryStringParameters"] == {"bucket": "vehicle-ocr-images", "key": key}


def test_a_request_line_http_server_cannot_parse_is_answered_as_json_not_html(server: LocalApiServer) -> None:
    # Given request lines http.server refuses: too many words, and a method it has no handler for
    for request, expected in (
        (b"GET /plates/a b c HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
        (b"BREW /results HTTP/1.1\r\nHost: localhost\r\n\r\n", 403),
    ):
        # When one is sent
        status, headers, body = raw_request(server, request)

        # Then the answer is JSON with a status, never http.server's HTML page
        assert status == expected
        assert headers["content-type"] == ["application/json"]
        assert "message" in json.dumps(json.loads(body))
        assert b"<html" not in body.lower()


def test_middle_dot_encoded_as_c2_b7_is_routed_and_decodes_to_the_dot(server: LocalApiServer) -> None:
    # Given a plate written with a middle dot, which the client encodes as %C2%B7
    # When it is fetched
    response = requests.get(f"{server.url}/plates/{DOTTED_PLATE_ENCODED}", timeout=10)

    # Then the route matches and the parameter decodes to the dotted plate
    body = response.json()
    assert response.status_code == 200
    assert body["event"]["pathParameters"] == {"number": DOTTED_PLATE_ENCODED}
    assert body["decoded"] == DOTTED_PLATE


def test_decode_path_parameters_option_hands_out_decoded_values() -> None:
    # Given a server asked for decoded path parameters (sam local start-api's behaviour)
    app = make_app()
    with LocalApiServer(lambda e, c: app.resolve(e, c), ROUTES, decode_path_parameters=True) as running:
        # When plates are fetched, percent-encoded and raw
        encoded = requests.get(f"{running.url}/plates/{DOTTED_PLATE_ENCODED}", timeout=10).json()
        status, _, raw = raw_request(
            running, b"GET /plates/" + PLATE.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )

    # Then pathParameters carry the decoded plate, while the path keeps its encoding so the routing is unchanged
    assert encoded["event"]["pathParameters"] == {"number": DOTTED_PLATE}
    assert encoded["event"]["path"] == f"/plates/{DOTTED_PLATE_ENCODED}"
    assert status == 200
    assert json.loads(raw)["event"]["pathParameters"] == {"number": PLATE}


def test_greedy_proxy_parameter_is_the_rest_of_the_path_without_leading_slash(server: LocalApiServer) -> None:
    # Given a request below an ANY /echo/{proxy+} resource
    # When it is fetched
    event = event_of(requests.get(f"{server.url}/echo/a/b%20c/d", timeout=10))

    # Then the proxy parameter is the rest of the path, as sent
    assert event["resource"] == "/echo/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b%20c/d"}
    assert event["httpMethod"] == "GET"


def test_route_without_parameters_gets_none_path_parameters(server: LocalApiServer) -> None:
    # Given a resource without path parameters
    # When it is fetched
    event = event_of(requests.get(f"{server.url}/results", timeout=10))

    # Then pathParameters and stageVariables are None, as API Gateway sends them
    assert event["pathParameters"] is None
    assert event["stageVariables"] is None


# ------------------------------------------------------------------------------------------- query strings


def test_repeated_query_parameter_keeps_all_values_and_the_last_as_single_value(server: LocalApiServer) -> None:
    # Given a query string naming kind twice
    # When the list route is fetched
    event = event_of(requests.get(f"{server.url}/results?kind=plate&kind=vehicle_license&limit=5", timeout=10))

    # Then the multi-value map has both, in order, and the single-value map the last one
    assert event["multiValueQueryStringParameters"] == {"kind": ["plate", "vehicle_license"], "limit": ["5"]}
    assert event["queryStringParameters"] == {"kind": "vehicle_license", "limit": "5"}


def test_query_values_are_url_decoded_and_empty_values_kept(server: LocalApiServer) -> None:
    # Given encoded, plus-spaced and empty query values
    query = "bucket=vehicle-ocr-images&key=plates%2Fgate%201%2F%E6%B2%AA.jpg&note=a+b&cursor="

    # When the list route is fetched
    event = event_of(requests.get(f"{server.url}/results?{query}", timeout=10))

    # Then values are decoded ("+" is a space) and "cursor=" is an empty string
    assert event["queryStringParameters"] == {
        "bucket": "vehicle-ocr-images",
        "key": "plates/gate 1/沪.jpg",
        "note": "a b",
        "cursor": "",
    }


def test_no_query_string_gives_none_for_both_query_fields(server: LocalApiServer) -> None:
    # Given a request without a query string (and one with a bare "?")
    # When they are sent
    events = [event_of(requests.get(f"{server.url}/results{suffix}", timeout=10)) for suffix in ("", "?")]

    # Then both query fields are None
    for event in events:
        assert event["queryStringParameters"] is None
        assert event["multiValueQueryStringParameters"] is None


# ---------------------------------------------------------------------------------- gateway's own answers


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nowhere"), ("GET", "/results/1/extra"), ("POST", "/results/1"), ("DELETE", "/results")],
)
def test_unknown_route_or_method_is_403_missing_authentication_token(
    server: LocalApiServer, method: str, path: str
) -> None:
    # Given a resource or method the API does not have
    # When it is requested
    response = requests.request(method, f"{server.url}{path}", timeout=10)

    # Then API Gateway's answer comes back, without invoking the function
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_options_and_head_are_403_unless_a_route_declares_them(server: LocalApiServer) -> None:
    # Given GET-only /results and ANY /echo/{proxy+}
    # When OPTIONS and HEAD are sent to both
    options_results = requests.options(f"{server.url}/results", timeout=10)
    head_results = requests.head(f"{server.url}/results", timeout=10)
    options_echo = requests.options(f"{server.url}/echo/x", timeout=10)
    head_echo = requests.head(f"{server.url}/echo/x", timeout=10)

    # Then only the ANY route answers them, and HEAD answers carry no body
    assert options_results.status_code == 403
    assert head_results.status_code == 403
    assert head_results.content == b""
    assert options_echo.status_code == 200
    assert options_echo.json()["event"]["httpMethod"] == "OPTIONS"
    assert head_echo.status_code == 200
    assert head_echo.content == b""
    assert int(head_echo.headers["Content-Length"]) > 0


def test_handler_exception_is_502_internal_server_error(server: LocalApiServer) -> None:
    # Given a route whose code raises
    # When it is requested
    response = requests.get(f"{server.url}/boom", timeout=10)

    # Then API Gateway's 502 comes back
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}
    assert response.headers["x-amzn-ErrorType"] == "InternalServerErrorException"


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": 200, "body": {"not": "a string"}},
        {"body": "no status"},
        {"statusCode": 200, "body": "x", "unexpected": 1},
        "just a string",
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
    ],
)
def test_malformed_proxy_response_is_502_over_http(result: Any) -> None:
    # Given a handler returning something that is not a proxy response
    with LocalApiServer(lambda event, context: result, [Route("GET", "/x")]) as running:
        # When it is invoked
        response = requests.get(f"{running.url}/x", timeout=10)

    # Then the client gets API Gateway's 502
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


# ------------------------------------------------------------------------------------- headers and bodies


def test_request_headers_pass_through_with_last_value_and_all_values(server: LocalApiServer) -> None:
    # Given a request with a repeated header and a user agent
    request = (
        b"GET /results/r-1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: probe/1.0\r\n"
        b"X-Tag: first\r\nX-Tag: second\r\nConnection: close\r\n\r\n"
    )

    # When it is sent
    status, _, body = raw_request(server, request)

    # Then headers has the last value, multiValueHeaders all of them, identity the user agent and source IP
    event = json.loads(body)["event"]
    assert status == 200
    assert event["headers"]["X-Tag"] == "second"
    assert event["multiValueHeaders"]["X-Tag"] == ["first", "second"]
    assert event["headers"]["User-Agent"] == "probe/1.0"
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["requestContext"]["identity"]["userAgent"] == "probe/1.0"
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"


def test_binary_body_round_trips_and_multi_value_response_headers_are_sent(server: LocalApiServer) -> None:
    # Given a body that is not UTF-8
    data = bytes(range(256)) + b"\x89PNG\r\n\x1a\n\xff\xfe"

    # When it is posted
    response = requests.post(
        f"{server.url}/blobs", data=data, headers={"Content-Type": "application/octet-stream"}, timeout=10
    )

    # Then it reached the function base64-encoded and came back byte for byte, with both cookies and the headers
    assert response.status_code == 201
    assert response.content == data
    assert response.headers["X-Was-Base64"] == "true"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Secure", "b=2; Secure"]


def test_text_body_arrives_as_text(server: LocalApiServer) -> None:
    # Given a UTF-8 JSON body
    payload = {"plate": PLATE}

    # When it is posted to the ANY route
    event = event_of(requests.post(f"{server.url}/echo/json", json=payload, timeout=10))

    # Then it arrives as the same text, not base64
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == payload


def test_request_context_describes_the_route_and_stage(server: LocalApiServer) -> None:
    # Given a request on a parameterised resource
    # When it is fetched
    event = event_of(requests.get(f"{server.url}/results/r-42", timeout=10))

    # Then the requestContext names the resource, stage, method and an IAM identity that is empty locally
    context = event["requestContext"]
    assert event["resource"] == context["resourcePath"] == "/results/{id}"
    assert context["stage"] == "local"
    assert context["httpMethod"] == "GET"
    assert context["protocol"] == "HTTP/1.1"
    assert context["path"] == "/local/results/r-42"
    assert context["accountId"] == "123456789012"
    assert context["domainName"] == "127.0.0.1"
    assert isinstance(context["requestTimeEpoch"], int)
    for name in ("user", "userArn", "caller", "accessKey", "accountId"):
        assert name in context["identity"]
        assert context["identity"][name] is None
    assert event["pathParameters"] == {"id": "r-42"}


# ------------------------------------------------------------------------------------- context and server


def test_each_request_gets_a_fresh_lambda_context(server: LocalApiServer) -> None:
    # Given two requests
    # When both are served
    first = requests.get(f"{server.url}/results/a", timeout=10).json()["context"]
    second = requests.get(f"{server.url}/results/b", timeout=10).json()["context"]

    # Then each had its own request id, and the context looks like the runtime's
    assert first["aws_request_id"] != second["aws_request_id"]
    assert first["function_name"] == "QueryFunction"
    assert first["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:QueryFunction"
    assert first["memory_limit_in_mb"] == "128"
    assert 0 < first["remaining"] <= 29_000


def test_context_factory_makes_the_context() -> None:
    # Given a context factory
    made: list[LocalLambdaContext] = []

    def factory() -> LocalLambdaContext:
        made.append(LocalLambdaContext("custom-fn", memory_limit_in_mb=512))
        return made[-1]

    app = make_app()
    with LocalApiServer(lambda e, c: app.resolve(e, c), ROUTES, context_factory=factory) as running:
        # When a request is served
        context = requests.get(f"{running.url}/results/x", timeout=10).json()["context"]

    # Then the handler got the factory's context
    assert len(made) == 1
    assert context["function_name"] == "custom-fn"
    assert context["aws_request_id"] == made[0].aws_request_id


def test_stop_leaves_no_thread_running_even_with_an_open_keep_alive_connection() -> None:
    # Given a running server and a client holding a keep-alive connection open
    app = make_app()
    running = LocalApiServer(lambda e, c: app.resolve(e, c), ROUTES).start()
    url = running.url
    session = requests.Session()
    assert session.get(f"{url}/results/1", timeout=10).status_code == 200
    assert adapter_threads()

    # When the server stops
    running.stop()

    # Then no adapter thread is left and the port is closed
    session.close()
    assert adapter_threads() == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/results/1", timeout=2)


def test_request_bodies_are_not_logged(server: LocalApiServer, caplog: pytest.LogCaptureFixture) -> None:
    # Given debug logging, and a body holding a secret, sent to a route that works and one that fails
    caplog.set_level(logging.DEBUG)
    secret = "owner-name-张三-secret"
    requests.post(f"{server.url}/echo/x", data=secret.encode(), timeout=10)
    requests.post(f"{server.url}/results/1", data=secret.encode(), timeout=10)

    # Then the requests were logged, their bodies not
    assert "/echo/x" in caplog.text
    assert secret not in caplog.text


# --------------------------------------------------------------------------------------- pure functions


def test_routes_from_template_reads_the_functions_api_events(tmp_path: Path) -> None:
    # Given a SAM template with Api events (short tags included), an S3 event and another function
    template_file = tmp_path / "template.yaml"
    template_file.write_text(
        """
Resources:
  QueryApi:
    Type: AWS::Serverless::Api
    Properties: {StageName: prod, Auth: {DefaultAuthorizer: AWS_IAM}}
  QueryFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        GetResult:
          Type: Api
          Properties: {RestApiId: !Ref QueryApi, Path: "/results/{id}", Method: get}
        ListResults:
          Type: Api
          Properties: {RestApiId: !Ref QueryApi, Path: /results, Method: GET}
        Everything:
          Type: Api
          Properties: {RestApiId: !Ref QueryApi, Path: "/docs/{proxy+}", Method: any}
        Upload:
          Type: S3
          Properties: {Bucket: !Ref Images, Events: s3:ObjectCreated:*}
  OtherFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Other: {Type: Api, Properties: {Path: /other, Method: get}}
""",
        encoding="utf-8",
    )

    # When the query function's routes are read
    routes = routes_from_template(load_template(template_file), "QueryFunction")

    # Then exactly its Api events come back, methods upper-cased and "any" as ANY
    assert routes == [Route("GET", "/results/{id}"), Route("GET", "/results"), Route("ANY", "/docs/{proxy+}")]


def test_routes_from_template_rejects_unknown_function_and_intrinsic_paths() -> None:
    # Given a template whose Api event path is an intrinsic
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Events": {"E": {"Type": "Api", "Properties": {"Path": {"Ref": "P"}, "Method": "get"}}}},
            }
        }
    }

    # When routes are read / Then both mistakes are reported
    with pytest.raises(ValueError, match="plain strings"):
        routes_from_template(template, "Fn")
    with pytest.raises(ValueError, match="Missing"):
        routes_from_template(template, "Missing")


@pytest.mark.parametrize("resource", ["results", "/a/{proxy+}/b", "/a/{id", "/a/{id}/{id}", "/a//b"])
def test_route_rejects_malformed_resources(resource: str) -> None:
    # Given a malformed resource / When a route is made / Then it is refused
    with pytest.raises(ValueError):
        Route("GET", resource)


def test_match_route_prefers_literal_over_parameter_over_greedy_and_method_over_any() -> None:
    # Given overlapping routes
    routes = [
        Route("ANY", "/{proxy+}"),
        Route("GET", "/results/{id}"),
        Route("GET", "/results/latest"),
        Route("ANY", "/results/{id}"),
    ]

    # When paths are matched / Then the most specific route wins
    assert match_route(routes, "GET", "/results/latest") == (Route("GET", "/results/latest"), {})
    assert match_route(routes, "GET", "/results/r-1") == (Route("GET", "/results/{id}"), {"id": "r-1"})
    assert match_route(routes, "DELETE", "/results/r-1") == (Route("ANY", "/results/{id}"), {"id": "r-1"})
    assert match_route(routes, "GET", "/results/r-1/") == (Route("GET", "/results/{id}"), {"id": "r-1"})
    assert match_route(routes, "GET", "/a/b") == (Route("ANY", "/{proxy+}"), {"proxy": "a/b"})
    assert match_route(routes, "GET", "/") is None  # {proxy+} needs at least one path part
    assert match_route([Route("GET", "/results")], "POST", "/results") is None


def test_build_event_without_query_body_or_parameters() -> None:
    # Given a bare GET on a resource without parameters
    route = Route("GET", "/openapi.json")

    # When its event is built
    event = build_event("GET", "/openapi.json", "", [("Host", "localhost:3000")], b"", route, {})

    # Then the optional parts are None, as API Gateway sends them
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["resourcePath"] == "/openapi.json"
    assert event["requestContext"]["domainName"] == "localhost"


def test_build_event_base64_encodes_binary_media_types_and_non_utf8_bodies() -> None:
    # Given a text body under a binary media type, and a non-UTF-8 body under a text one
    route = Route("POST", "/blobs")
    image = build_event(
        "POST", "/blobs", "", [("Content-Type", "image/jpeg")], b"abc", route, {}, binary_media_types=["image/*"]
    )
    latin1 = build_event("POST", "/blobs", "", [("Content-Type", "text/plain")], "é".encode("latin-1"), route, {})

    # Then both are base64-encoded
    assert (image["body"], image["isBase64Encoded"]) == ("YWJj", True)
    assert (latin1["body"], latin1["isBase64Encoded"]) == ("6Q==", True)


def test_response_from_proxy_merges_headers_with_multi_value_headers_winning() -> None:
    # Given a response naming a header in both maps, a numeric header and a base64 body
    result = {
        "statusCode": 200,
        "headers": {"X-Both": "single", "X-Count": 3, "Content-Length": "999"},
        "multiValueHeaders": {"x-both": ["multi-1", "multi-2"], "Set-Cookie": ["a=1", "b=2"]},
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }

    # When it becomes an HTTP response
    status, headers, body = response_from_proxy(result)

    # Then multiValueHeaders' values replace the single one, framing headers are dropped, JSON is the default type
    assert status == 200
    assert body == b"\x00\x01"
    assert ("Content-Type", "application/json") in headers
    assert [value for name, value in headers if name.lower() == "x-both"] == ["multi-1", "multi-2"]
    assert ("X-Count", "3") in headers
    assert [value for name, value in headers if name == "Set-Cookie"] == ["a=1", "b=2"]
    assert not [name for name, _ in headers if name.lower() == "content-length"]


def test_response_from_proxy_turns_a_malformed_result_into_502() -> None:
    # Given a result whose body is an object / When it is converted / Then API Gateway's 502 comes out
    status, headers, body = response_from_proxy({"statusCode": 200, "body": {"a": 1}})
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}
    assert ("x-amzn-ErrorType", "InternalServerErrorException") in headers


# ----------------------------------------------------------------------------------------- gateway responses

ERROR_SHAPE = '{"error":{"code":"$context.error.responseType","message":$context.error.messageString}}'


def test_gateway_responses_shape_status_and_headers_over_http() -> None:
    # Given a server with DEFAULT_4XX in the documented shape, DEFAULT_5XX with a header and its own status,
    # and a MISSING_AUTHENTICATION_TOKEN response of its own
    app = make_app()
    responses = {
        "DEFAULT_4XX": {"ResponseTemplates": {"application/json": ERROR_SHAPE}},
        "DEFAULT_5XX": {
            "StatusCode": "503",
            "ResponseTemplates": {
                "application/json": '{"oops":$context.error.messageString,"id":"$context.requestId"}'
            },
            "ResponseParameters": {"Headers": {"Retry-After": "'5'"}},
        },
    }
    with LocalApiServer(lambda event, context: app.resolve(event, context), ROUTES, gateway_responses=responses) as s:
        # When a route that does not exist, a method that does not exist and a failing function are requested
        unknown = requests.get(f"{s.url}/nope", timeout=10)
        wrong_method = requests.put(f"{s.url}/results", timeout=10)
        boom = requests.get(f"{s.url}/boom", timeout=10)

    # Then the 4XX answers take DEFAULT_4XX's template with the specific response type
    for response in (unknown, wrong_method):
        assert response.status_code == 403
        assert response.json() == {
            "error": {"code": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token"}
        }
    # And the failing function's 502 takes DEFAULT_5XX's status, template and header
    assert boom.status_code == 503
    assert boom.headers["Retry-After"] == "5"
    assert boom.json() == {"oops": "Internal server error", "id": boom.headers["x-amzn-RequestId"]}


def test_gateway_responses_from_template_reads_sam_and_cloudformation_forms() -> None:
    # Given a template whose API has SAM GatewayResponses and an AWS::ApiGateway::GatewayResponse resource
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "Get": {
                            "Type": "Api",
                            "Properties": {"RestApiId": {"Ref": "Api"}, "Path": "/x", "Method": "get"},
                        }
                    }
                },
            },
            "Api": {
                "Type": "AWS::Serverless::Api",
                "Properties": {
                    "GatewayResponses": {"DEFAULT_4XX": {"ResponseTemplates": {"application/json": ERROR_SHAPE}}}
                },
            },
            "Throttled": {
                "Type": "AWS::ApiGateway::GatewayResponse",
                "Properties": {"RestApiId": {"Ref": "Api"}, "ResponseType": "THROTTLED", "StatusCode": "429"},
            },
            "Implicit": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Events": {"Get": {"Type": "Api", "Properties": {"Path": "/y", "Method": "get"}}}},
            },
        }
    }
    # When the function's gateway responses are read
    # Then both forms are there; a function on SAM's implicit API has none
    assert gateway_responses_from_template(template, "Fn") == {
        "DEFAULT_4XX": {"ResponseTemplates": {"application/json": ERROR_SHAPE}},
        "THROTTLED": {"StatusCode": "429"},
    }
    assert gateway_responses_from_template(template, "Implicit") == {}
