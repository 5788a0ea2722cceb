"""Serve a Lambda handler on localhost the way an API Gateway REST API (Lambda proxy, payload 1.0) would.

Each HTTP request becomes the proxy event API Gateway sends, the handler's proxy response becomes the HTTP
response, and the gateway's own answers are reproduced: an unknown route or method is
``403 {"message": "Missing Authentication Token"}``, a handler that raises or returns a malformed response is
``502 {"message": "Internal server error"}``, both in the shape the API's gateway responses give them
(``gateway_responses``, read from the template by :func:`gateway_responses_from_template`).

What the event carries (sources: the API Gateway developer guide, "Input format of a Lambda function for proxy
integration", and live REST API captures):

- ``path``, ``requestContext.path`` and ``pathParameters`` keep the request's percent-encoding, as REST APIs
  deliver them: ``GET /plates/%E6%B2%AAA0762%E5%AD%A6`` gives ``{"number": "%E6%B2%AAA0762%E5%AD%A6"}``, and the
  function decodes (``urllib.parse.unquote``: curl encodes in lower-case hex, requests in upper-case). Raw
  non-ASCII bytes in the request line are percent-encoded first, as conforming clients do, so they reach the
  function as the encoded spelling does.
  ``decode_path_parameters=True`` hands out decoded ``pathParameters`` instead (what ``sam local start-api``
  does, not what API Gateway does).
- ``queryStringParameters`` / ``multiValueQueryStringParameters`` are URL-decoded (``+`` is a space); a repeated
  name keeps every value in the multi-value map and its last one in the single-value map; ``?a=`` gives ``""``;
  no query string gives ``None`` for both.
- ``headers`` holds the last value of each header, ``multiValueHeaders`` every value in order.
- ``requestContext.identity`` has the ``AWS_IAM`` caller fields (``user``, ``userArn``, ``caller``,
  ``accessKey``, ``accountId``) set to ``None``: nothing is signed locally.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from vehicle_ocr_local.template import ACCOUNT, REGION

logger = logging.getLogger(__name__)

ANY = "ANY"
# What API Gateway's ANY method stands for.
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")

DEFAULT_STAGE = "local"
DEFAULT_API_ID = "1234567890"  # what `sam local generate-event apigateway aws-proxy` uses

# RFC 3986 pchar plus "/"; "%" is kept so that escapes already in the request survive unchanged.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_PARAMETER = re.compile(r"^\{([^{}/+]+)(\+?)\}$")
# Bytes a conforming client never sends raw in a request line: non-ASCII (raw UTF-8 from curl) and controls.
# http.server decodes the line as latin-1 and splits it on str.split()'s whitespace, which takes 0x85 (NEL),
# 0xA0 (NBSP) and 0x1C-0x1F for separators: 入 is E5 85 A5, so "GET /plates/入 HTTP/1.1" had four words.
_UNSAFE_REQUEST_LINE_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Response fields of payload format 1.0; API Gateway rejects anything else as a malformed proxy response.
_RESPONSE_FIELDS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Framing headers are the server's business, never the function's.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

GatewayResponse = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class GatewayError:
    """An answer API Gateway gives itself: its gateway response type, default status and message."""

    response_type: str
    status: int
    message: str
    error_type: str  # the x-amzn-ErrorType header

    @property
    def default_type(self) -> str:
        return "DEFAULT_5XX" if self.status >= 500 else "DEFAULT_4XX"


MISSING_AUTHENTICATION_TOKEN = GatewayError(
    "MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token", "MissingAuthenticationTokenException"
)
# A function that fails or answers a malformed proxy response: a 502 no specific response type covers.
INTERNAL_SERVER_ERROR = GatewayError("DEFAULT_5XX", 502, "Internal server error", "InternalServerErrorException")
# What a gateway response without a template of its own answers.
DEFAULT_RESPONSE_TEMPLATE = '{"message":$context.error.messageString}'
_TEMPLATE_VARIABLE = re.compile(r"\$(?:context\.([A-Za-z]+(?:\.[A-Za-z]+)*)|\{context\.([A-Za-z]+(?:\.[A-Za-z]+)*)\})")


class GatewayResponses:
    """API Gateway's own answers, customised by the API's gateway responses (``GatewayResponses`` in SAM).

    ``responses`` maps a response type (``MISSING_AUTHENTICATION_TOKEN``, ``DEFAULT_4XX``, ...) to its
    ``StatusCode``, ``ResponseTemplates`` and ``ResponseParameters``. As in API Gateway, a type without a
    response of its own takes ``DEFAULT_4XX`` / ``DEFAULT_5XX``; without either, the built-in
    ``{"message": ...}``. Templates are rendered with ``$context.error.responseType``, ``.message``,
    ``.messageString`` (the message as a JSON string), ``$context.requestId`` and ``$context.stage``;
    any other ``$context`` variable renders empty. Only static header values (``'text'``) are sent.
    """

    def __init__(self, responses: Mapping[str, Mapping[str, Any]] | None = None, *, stage: str = DEFAULT_STAGE):
        self.responses = {str(name).upper(): dict(spec or {}) for name, spec in (responses or {}).items()}
        self.stage = stage

    def render(self, error: GatewayError, request_id: str = "") -> GatewayResponse:
        own = self.responses.get(error.response_type)
        fallback = self.responses.get(error.default_type)
        status = _status_code(own) or _status_code(fallback) or error.status
        spec = own if own is not None else fallback or {}
        templates = spec.get("ResponseTemplates") or {}
        template = templates.get("application/json") if isinstance(templates, Mapping) else None
        if not isinstance(template, str):
            template = DEFAULT_RESPONSE_TEMPLATE
        variables = {
            "error.responseType": error.response_type,
            "error.message": error.message,
            "error.messageString": json.dumps(error.message, ensure_ascii=False),
            "requestId": request_id,
            "stage": self.stage,
        }

        def value(match: re.Match[str]) -> str:
            return variables.get(match.group(1) or match.group(2), "")

        body = _TEMPLATE_VARIABLE.sub(value, template).encode("utf-8")
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error.error_type)]
        headers += _static_headers(spec.get("ResponseParameters"))
        return status, headers, body


def _status_code(spec: Mapping[str, Any] | None) -> int | None:
    try:
        code = int(str((spec or {}).get("StatusCode")))
    except ValueError:
        return None  # absent, or an intrinsic function that cannot be resolved here
    return code if 100 <= code <= 599 else None


def _static_headers(parameters: Any) -> list[tuple[str, str]]:
    """Headers with static values from SAM's ``{"Headers": {name: "'v'"}}`` or CloudFormation's form."""
    if not isinstance(parameters, Mapping):
        return []
    pairs = dict(parameters.get("Headers") or {}) if isinstance(parameters.get("Headers"), Mapping) else {}
    prefix = "gatewayresponse.header."
    pairs.update({name[len(prefix) :]: value for name, value in parameters.items() if str(name).startswith(prefix)})
    return [
        (str(name), value[1:-1])
        for name, value in pairs.items()
        if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'"
    ]


def _gateway_error(status: int, message: str, error_type: str) -> GatewayResponse:
    """An error in API Gateway's built-in shape, with no gateway responses configured."""
    response_type = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
    return GatewayResponses().render(GatewayError(response_type, status, message, error_type))


def missing_authentication_token() -> GatewayResponse:
    """What a REST API answers for a resource or method it does not have (and for an unsigned IAM request)."""
    return GatewayResponses().render(MISSING_AUTHENTICATION_TOKEN)


def internal_server_error() -> GatewayResponse:
    """What a REST API answers when the function fails or returns a malformed proxy response."""
    return GatewayResponses().render(INTERNAL_SERVER_ERROR)


# --------------------------------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    """One method on one resource of the REST API, e.g. ``Route("GET", "/results/{id}")``."""

    method: str
    resource: str
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        method = self.method.upper()
        if method not in (ANY, *HTTP_METHODS):
            raise ValueError(f"unsupported method {self.method!r} for {self.resource!r}")
        if not self.resource.startswith("/"):
            raise ValueError(f"resource must start with '/': {self.resource!r}")
        segments = tuple(self.resource.strip("/").split("/")) if self.resource != "/" else ()
        names: list[str] = []
        for position, segment in enumerate(segments):
            if not segment:
                raise ValueError(f"empty path part in {self.resource!r}")
            if "{" in segment or "}" in segment:
                parameter = _PARAMETER.match(segment)
                if not parameter:
                    raise ValueError(f"malformed path parameter {segment!r} in {self.resource!r}")
                if parameter.group(2) and position != len(segments) - 1:
                    raise ValueError(f"greedy parameter must be the last path part: {self.resource!r}")
                names.append(parameter.group(1))
        if len(names) != len(set(names)):
            raise ValueError(f"repeated path parameter in {self.resource!r}")
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "segments", segments)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(m.group(1) for s in self.segments if (m := _PARAMETER.match(s)))

    def _match(self, parts: Sequence[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """Specificity key (literal 0, ``{x}`` 1, ``{x+}`` 2 per path part) and raw parameters, if ``parts`` match."""
        rank: list[int] = []
        params: dict[str, str] = {}
        for position, segment in enumerate(self.segments):
            parameter = _PARAMETER.match(segment)
            if parameter and parameter.group(2):  # {proxy+}: one or more remaining parts
                rest = parts[position:]
                if not rest or not all(rest):
                    return None
                params[parameter.group(1)] = "/".join(rest)
                rank.append(2)
                return tuple(rank), params
            if position >= len(parts):
                return None
            if parameter:
                if not parts[position]:
                    return None
                params[parameter.group(1)] = parts[position]
                rank.append(1)
            elif segment == parts[position]:
                rank.append(0)
            else:
                return None
        if len(parts) != len(self.segments):
            return None
        return tuple(rank), params


def routes_from_template(template: Mapping[str, Any], function_logical_id: str) -> list[Route]:
    """The function's SAM ``Events`` of ``Type: Api`` as routes (``Method: any`` is ``ANY``)."""
    resources = template.get("Resources", {})
    if function_logical_id not in resources:
        raise ValueError(f"no resource {function_logical_id!r} in the template")
    events = (resources[function_logical_id].get("Properties") or {}).get("Events") or {}
    routes: list[Route] = []
    for name, event in events.items():
        if event.get("Type") != "Api":
            continue
        properties = event.get("Properties") or {}
        path, method = properties.get("Path"), properties.get("Method")
        if not isinstance(path, str) or not isinstance(method, str):
            raise ValueError(f"{function_logical_id} event {name}: Path and Method must be plain strings")
        route = Route(method, path)
        if route in routes:
            raise ValueError(f"{function_logical_id} event {name}: {route.method} {route.resource} declared twice")
        routes.append(route)
    return routes


def gateway_responses_from_template(template: Mapping[str, Any], function_logical_id: str) -> dict[str, Any]:
    """The gateway responses of the REST API the function's ``Api`` events name (``RestApiId: !Ref X``).

    SAM's ``GatewayResponses`` property of that ``AWS::Serverless::Api``, merged with any
    ``AWS::ApiGateway::GatewayResponse`` resources for it. Events without ``RestApiId`` use SAM's implicit
    API, which has none: ``{}``.
    """
    resources = template.get("Resources", {})
    if function_logical_id not in resources:
        raise ValueError(f"no resource {function_logical_id!r} in the template")
    events = (resources[function_logical_id].get("Properties") or {}).get("Events") or {}
    apis = {
        (event.get("Properties") or {}).get("RestApiId", {}).get("Ref")
        for event in events.values()
        if event.get("Type") == "Api" and isinstance((event.get("Properties") or {}).get("RestApiId"), dict)
    } - {None}
    if len(apis) > 1:
        raise ValueError(f"{function_logical_id}: Api events on several APIs {sorted(apis)}: serve one at a time")
    if not apis:
        return {}
    (api,) = apis
    responses = dict(((resources.get(api) or {}).get("Properties") or {}).get("GatewayResponses") or {})
    for resource in resources.values():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::ApiGateway::GatewayResponse" and properties.get("RestApiId") == {"Ref": api}:
            responses[properties["ResponseType"]] = {
                name: properties[name]
                for name in ("StatusCode", "ResponseTemplates", "ResponseParameters")
                if name in properties
            }
    return responses


def normalize_path(raw_path: str | bytes) -> str:
    """The request path as it travels: non-ASCII (and other non-URI) bytes percent-encoded, escapes kept."""
    data = raw_path if isinstance(raw_path, bytes) else raw_path.encode("utf-8")
    return quote(data, safe=_PATH_SAFE)


def _path_parts(path: str) -> list[str]:
    if path in ("", "/"):
        return []
    trimmed = path[1:] if path.startswith("/") else path
    if trimmed.endswith("/"):  # REST APIs ignore one trailing slash when choosing the resource
        trimmed = trimmed[:-1]
    return trimmed.split("/")


def match_route(routes: Iterable[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The most specific route for ``method`` and ``path``, with its raw (still percent-encoded) parameters.

    A literal path part beats ``{x}``, which beats ``{x+}``; a route of the exact method beats ``ANY``. ``None``
    means API Gateway would answer 403 Missing Authentication Token (no such resource, or no such method on it).
    """
    method = method.upper()
    parts = _path_parts(normalize_path(path))
    best: tuple[tuple[tuple[int, ...], int], Route, dict[str, str]] | None = None
    for route in routes:
        if route.method != method and not (route.method == ANY and method in HTTP_METHODS):
            continue
        matched = route._match(parts)
        if matched is None:
            continue
        key = (matched[0], 0 if route.method == method else 1)
        if best is None or key < best[0]:
            best = (key, route, matched[1])
    return None if best is None else (best[1], best[2])


# ---------------------------------------------------------------------------------------------------- event


def _request_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment.year}:{moment:%H:%M:%S} +0000"


def _is_binary(content_type: str | None, binary_media_types: Sequence[str]) -> bool:
    if not content_type or not binary_media_types:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    major = media_type.split("/", 1)[0]
    for candidate in binary_media_types:
        candidate = candidate.strip().lower()
        if candidate in ("*/*", media_type) or candidate == f"{major}/*":
            return True
    return False


def build_event(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    route: Route,
    path_params: Mapping[str, str],
    *,
    stage: str = DEFAULT_STAGE,
    source_ip: str = "127.0.0.1",
    decode_path_parameters: bool = False,
    binary_media_types: Sequence[str] = (),
    api_id: str = DEFAULT_API_ID,
    account_id: str = ACCOUNT,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The REST API Lambda proxy event (payload format 1.0) for one request.

    ``raw_path`` is the path as received (percent-encoded or not), ``query_string`` the raw text after ``?``,
    ``path_params`` the raw values :func:`match_route` returned.
    """
    path = normalize_path(raw_path)
    method = method.upper()
    now = now or datetime.now(UTC)

    multi_headers: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}  # header names are case-insensitive: group under the first spelling seen
    for name, value in headers:
        multi_headers.setdefault(spelled.setdefault(name.lower(), name), []).append(value)

    pairs = parse_qsl(query_string or "", keep_blank_values=True, encoding="utf-8", errors="replace")
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)

    parameters = (
        {
            name: unquote(value, errors="replace") if decode_path_parameters else value
            for name, value in path_params.items()
        }
        if route.parameter_names
        else None
    )

    content_type = next((values[-1] for name, values in multi_headers.items() if name.lower() == "content-type"), None)
    user_agent = next((values[-1] for name, values in multi_headers.items() if name.lower() == "user-agent"), None)
    host = next((values[-1] for name, values in multi_headers.items() if name.lower() == "host"), "localhost")
    try:  # requestContext.domainName carries no port
        host = urlsplit(f"//{host}").hostname or "localhost"
    except ValueError:
        host = "localhost"
    if not body:
        event_body, is_base64 = None, False
    elif _is_binary(content_type, binary_media_types):
        event_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    else:
        try:
            event_body, is_base64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            event_body, is_base64 = base64.b64encode(body).decode("ascii"), True

    request_id = request_id or str(uuid.uuid4())
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": _resource_id(route.resource),
            "resourcePath": route.resource,
            "httpMethod": method,
            "extendedRequestId": base64.b64encode(secrets.token_bytes(11)).decode("ascii"),
            "requestTime": _request_time(now),
            "path": f"/{stage}{path}",
            "accountId": account_id,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": host.split(".", 1)[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
            },
            "domainName": host,
            "apiId": api_id,
        },
        "body": event_body,
        "isBase64Encoded": is_base64,
    }


def _resource_id(resource: str) -> str:
    """A stable 10-character id per resource, shaped like API Gateway's (FNV-1a: the same in every process)."""
    value = 0xCBF29CE484222325
    for byte in resource.encode("utf-8"):
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[(value >> (6 * i)) % 36] for i in range(10))


# ------------------------------------------------------------------------------------------------- response


class MalformedProxyResponse(ValueError):
    """The function's answer is not a payload-1.0 proxy response."""


def _header_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedProxyResponse(f"header {name!r} has a {type(value).__name__} value")


def _parse_proxy_response(result: Any) -> GatewayResponse:
    if not isinstance(result, dict):
        raise MalformedProxyResponse(f"the result is a {type(result).__name__}, not an object")
    unknown = set(result) - _RESPONSE_FIELDS
    if unknown:
        raise MalformedProxyResponse(f"unexpected fields {sorted(unknown)}")
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedProxyResponse(f"statusCode {status!r} is not an HTTP status")

    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedProxyResponse("headers and multiValueHeaders must be objects")
    merged: dict[str, tuple[str, list[str]]] = {}  # lower-case name -> (spelling, values)
    for name, value in single.items():
        if value is not None:
            merged[name.lower()] = (name, [_header_value(name, value)])
    for name, values in multi.items():  # the same name in both: only multiValueHeaders' values are sent
        if values is None:
            continue
        if not isinstance(values, list):
            raise MalformedProxyResponse(f"multiValueHeaders[{name!r}] is not a list")
        merged[name.lower()] = (name, [_header_value(name, value) for value in values if value is not None])
    headers = [
        (name, value) for key, (name, values) in merged.items() if key not in _FRAMING_HEADERS for value in values
    ]
    if "content-type" not in merged:
        headers.insert(0, ("Content-Type", "application/json"))  # REST APIs' default

    body = result.get("body")
    encoded = result.get("isBase64Encoded", False)
    if encoded is None:
        encoded = False
    if not isinstance(encoded, bool):
        raise MalformedProxyResponse("isBase64Encoded must be a boolean")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise MalformedProxyResponse(f"body is a {type(body).__name__}, not a string")
    elif encoded:
        try:
            payload = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise MalformedProxyResponse("body is not valid base64") from error
    else:
        payload = body.encode("utf-8")
    return status, headers, payload


def response_from_proxy(result: Any, gateway: GatewayResponses | None = None, request_id: str = "") -> GatewayResponse:
    """``(status, headers, body)`` for a proxy response; a malformed one gives API Gateway's 502."""
    try:
        return _parse_proxy_response(result)
    except MalformedProxyResponse as error:
        logger.warning("Malformed Lambda proxy response: %s", error)
        return (gateway or GatewayResponses()).render(INTERNAL_SERVER_ERROR, request_id)


# -------------------------------------------------------------------------------------------------- context


class LocalLambdaContext:
    """What the Python runtime passes as ``context`` (awslambdaric's LambdaContext), for one invocation."""

    def __init__(
        self,
        function_name: str,
        *,
        memory_limit_in_mb: int = 128,
        timeout_seconds: float = 30,
        region: str = REGION,
        account_id: str = ACCOUNT,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = str(memory_limit_in_mb)  # the runtime reads it from the environment: a str
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# --------------------------------------------------------------------------------------------------- server


class _BadRequest(Exception):
    pass


def _split_target(target: str) -> tuple[bytes, str]:
    """Raw path bytes and decoded query text of a request target (http.server decodes it as latin-1)."""
    raw = target.encode("latin-1", errors="replace")
    if raw[:7].lower() == b"http://" or raw[:8].lower() == b"https://":
        parts = urlsplit(raw)
        raw_path, query = parts.path or b"/", parts.query
    else:
        raw = raw.split(b"#", 1)[0]
        raw_path, _, query = raw.partition(b"?")
    return raw_path, query.decode("utf-8", errors="replace")


def _serve_wsgi(
    app: Callable[..., Any], request: BaseHTTPRequestHandler, raw_path: bytes, query: str, body: bytes
) -> GatewayResponse:
    """One request answered by a WSGI application (werkzeug builds the environ and runs it)."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    headers = [(name, value) for name, value in request.headers.items() if name.lower() != "content-length"]
    builder = EnvironBuilder(
        path=unquote(raw_path.decode("latin-1")),
        query_string=query,
        method=request.command,
        headers=headers,
        data=body,
        environ_base={"REMOTE_ADDR": request.client_address[0]},
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    iterable, status, response_headers = run_wsgi_app(app, environ, buffered=True)
    payload = b"".join(iterable)
    out = [(name, value) for name, value in response_headers.items() if name.lower() != "content-length"]
    return int(status.split(" ", 1)[0]), out, payload


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    raw_requestline: bytes

    def version_string(self) -> str:
        return "vehicle-ocr-local-apigateway"

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("local API: " + format, *args)

    def parse_request(self) -> bool:
        """Percent-encode raw non-ASCII (and control) bytes of the request line first, as conforming clients do.

        API Gateway answers ``GET /plates/沪A0762学`` sent raw (curl sends what it is given) as it answers the
        percent-encoded spelling; http.server would split the line inside a character (see above).
        """
        line = self.raw_requestline
        body, ending = (line[:-2], line[-2:]) if line.endswith(b"\r\n") else (line.rstrip(b"\n"), b"\n")
        self.raw_requestline = _UNSAFE_REQUEST_LINE_BYTES.sub(lambda m: b"%%%02X" % m.group()[0], body) + ending
        return super().parse_request()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (malformed request line, headers too long, ...) as JSON, never HTML."""
        if self.request_version == "HTTP/0.9":  # the line did not parse: answer with a status line all the same
            self.request_version = "HTTP/1.1"
        self.close_connection = True
        if code == HTTPStatus.NOT_IMPLEMENTED:  # a method http.server has no do_ for: no such method on the API
            response = missing_authentication_token()
        else:
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:
                phrase = "Bad Request"
            response = _gateway_error(
                code, phrase, "BadRequestException" if code < 500 else "InternalServerErrorException"
            )
        status, headers, body = response
        self._send(status, [*headers, ("Connection", "close")], body, request_id=str(uuid.uuid4()))

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError as error:
                    raise _BadRequest("malformed chunked body") from error
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError as error:
            raise _BadRequest("malformed Content-Length") from error
        if size < 0:
            raise _BadRequest("malformed Content-Length")
        return self.rfile.read(size)

    def _dispatch(self) -> None:
        api = self.server.api
        request_id = str(uuid.uuid4())
        raw_path, query = _split_target(self.path)
        path = normalize_path(raw_path)
        try:
            body = self._read_body()
        except _BadRequest as error:
            self.close_connection = True
            bad_request = GatewayError("DEFAULT_4XX", 400, str(error), "BadRequestException")
            self._send(*api.gateway.render(bad_request, request_id), request_id=request_id)
            return
        mounted = api.mounted_at(path)
        if mounted is not None:  # not the API: a WSGI application served beside it (the console)
            try:
                response = _serve_wsgi(mounted, self, raw_path, query, body)
            except Exception:
                logger.exception("local API: the application under %s failed", path)
                response = internal_server_error()
            self._send(*response, request_id=request_id)
            return
        match = match_route(api.routes, self.command, path)
        if match is None:
            response = api.gateway.render(MISSING_AUTHENTICATION_TOKEN, request_id)
        else:
            route, params = match
            headers = list(self.headers.items())
            forwarded = [value for name, value in headers if name.lower() == "x-forwarded-for"]
            headers = [(name, value) for name, value in headers if name.lower() != "x-forwarded-for"]
            client_ip = self.client_address[0]
            headers += [
                ("X-Forwarded-For", ", ".join([*forwarded, client_ip])),
                ("X-Forwarded-Port", str(self.server.server_address[1])),
                ("X-Forwarded-Proto", "http"),
            ]
            event = build_event(
                self.command,
                path,
                query,
                headers,
                body,
                route,
                params,
                stage=api.stage,
                source_ip=client_ip,
                decode_path_parameters=api.decode_path_parameters,
                binary_media_types=api.binary_media_types,
                api_id=api.api_id,
                request_id=request_id,
            )
            response = api.invoke(event)
        self._send(*response, request_id=request_id)
        logger.info("%s %s -> %d", self.command, path, response[0])

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, *, request_id: str) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("x-amzn-RequestId", request_id)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that keeps hold of its connections and workers so that stop() can end them all."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], api: LocalApiServer) -> None:
        self.api = api
        self._lock = threading.Lock()
        self._workers: set[threading.Thread] = set()
        self._connections: set[socket.socket] = set()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(
            target=self._work, args=(request, client_address), name="local-apigw-request", daemon=True
        )
        with self._lock:
            self._workers.add(worker)
            self._connections.add(request)
        worker.start()

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._connections.discard(request)
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("local API: connection from %s ended with an error", client_address, exc_info=True)

    def end_connections(self, timeout: float) -> list[threading.Thread]:
        """Close every open connection, wait for the workers; the ones still running are returned."""
        with self._lock:
            connections, workers = list(self._connections), list(self._workers)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        return [worker for worker in workers if worker.is_alive()]


Handler = Callable[[dict[str, Any], Any], Any]


class LocalApiServer:
    """Serve ``handler`` over HTTP on ``host:port`` as API Gateway would; ``port=0`` picks a free port.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Every request gets a fresh
    :class:`LocalLambdaContext` unless ``context_factory`` makes the context.
    """

    def __init__(
        self,
        handler: Handler,
        routes: Iterable[Route],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        context_factory: Callable[[], Any] | None = None,
        stage: str = DEFAULT_STAGE,
        function_name: str = "QueryFunction",
        memory_limit_in_mb: int = 128,
        timeout_seconds: float = 29,
        binary_media_types: Sequence[str] = (),
        decode_path_parameters: bool = False,
        api_id: str = DEFAULT_API_ID,
        stop_timeout: float = 10.0,
        gateway_responses: Mapping[str, Mapping[str, Any]] | None = None,
        mounts: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.handler = handler
        # Path prefix → WSGI application answering everything under it instead of the API (`up`'s console).
        self.mounts = dict(mounts or {})
        self.routes = list(routes)
        self.host = host
        self.port = port
        self.stage = stage
        self.function_name = function_name
        self.binary_media_types = tuple(binary_media_types)
        self.decode_path_parameters = decode_path_parameters
        self.api_id = api_id
        self.gateway = GatewayResponses(gateway_responses, stage=stage)
        self._context_factory = context_factory or (
            lambda: LocalLambdaContext(
                function_name, memory_limit_in_mb=memory_limit_in_mb, timeout_seconds=timeout_seconds
            )
        )
        self._stop_timeout = stop_timeout
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> LocalApiServer:
        if self._server is not None:
            raise RuntimeError("the server is already running")
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-apigw", daemon=True
        )
        self._thread.start()
        logger.info("local API serving %d routes on %s", len(self.routes), self.url)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join(self._stop_timeout)
        stuck = server.end_connections(self._stop_timeout)
        server.server_close()
        self._server, self._thread = None, None
        if stuck:
            logger.warning("local API: %d request(s) still running after stop", len(stuck))

    def __enter__(self) -> LocalApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def mounted_at(self, path: str) -> Callable[..., Any] | None:
        for prefix, app in self.mounts.items():
            if path == prefix or path.startswith(f"{prefix}/"):
                return app
        return None

    def invoke(self, event: dict[str, Any]) -> GatewayResponse:
        """Run the handler on ``event`` as Lambda would (JSON in, JSON out) and turn its answer into HTTP."""
        context = self._context_factory()
        request_id = str((event.get("requestContext") or {}).get("requestId") or "")
        try:
            result = self.handler(json.loads(json.dumps(event)), context)
            result = json.loads(json.dumps(result))  # Lambda serialises the result: non-JSON is an error
        except Exception:
            logger.exception(
                "local API: %s failed on %s %s", self.function_name, event["httpMethod"], event["resource"]
            )
            return self.gateway.render(INTERNAL_SERVER_ERROR, request_id)
        return response_from_proxy(result, self.gateway, request_id)
