"""A local HTTP server that speaks both upstream protocols, codes included.

``FakeUpstream`` answers like tianapi ``licenseplate/index`` (seeds/000_d2304e3ca4febe02.txt)
and apizero ``ocr-vehicle-license`` (seeds/004_d75211672f8df966.txt) on 127.0.0.1, so
tests exercise the real transport over real sockets::

    with FakeUpstream(tianapi_key="tk", apizero_key="ak") as up:
        up.set_answer(image, {"color": "yellow", "number": "沪A0762学"})
        up.script("tianapi", [Reply(code=130), Reply(stall_s=2.0), Reply(close=True)])
        ... point the recognisers at up.tianapi_url / up.apizero_url ...
        assert up.billed("tianapi") == 1

Protocol checks are those of the documents (key, parameters, base64, 3 MB limit);
messages come from ``vehicle_ocr.codes``.  Scripted replies (consumed one per request,
per provider) override everything; then the optional rate limit; then the protocol.

Accounting: ``calls`` holds ``Call(provider, outcome, image_sha256, at)`` per request, where
``outcome`` is the JSON code as a string (``"200"``, ``"130"``, ``"0"``, ``"4015"``) or
``"http_<status>"`` for a non-JSON answer, ``"garbage"`` or ``"closed"``, and ``at`` is when
the request arrived (``time.monotonic()``, the clock the rate limit counts with).  A stalled
answer is recorded (and billed, like the real service would) even if the client gave up.
``requests`` holds what the server saw about each request's form (method, content
type, field names, whether the key was right and in which places) - never the key.

Thread-safe: one thread per connection, HTTP/1.1 keep-alive, all state behind one lock.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
import secrets
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from vehicle_ocr.codes import lookup

TIANAPI = "tianapi"
APIZERO = "apizero"
PROVIDERS = (TIANAPI, APIZERO)
TIANAPI_PATH = "/licenseplate/index"
APIZERO_PATH = "/api/ocr-vehicle-license"
PATHS = {TIANAPI_PATH: TIANAPI, APIZERO_PATH: APIZERO}

SUCCESS_CODE = {TIANAPI: 200, APIZERO: 0}
TIANAPI_MAX_IMAGE_BYTES = 3 * 1024 * 1024  # "图片大小不超过3M"
MAX_REQUEST_BYTES = 32 * 1024 * 1024

# apizero documents code and status name but no HTTP status: what it plausibly sends with each.
APIZERO_ERRORS: dict[int, tuple[int, str]] = {
    4000: (400, "VALIDATION_ERROR"),
    4015: (401, "KEY_REQUIRED"),
    5020: (502, "UPSTREAM_ERROR"),
    5021: (422, "UPSTREAM_INVALID"),
    5030: (503, "UPSTREAM_MISSING"),
}

DEFAULT_PLATE: dict[str, str] = {"color": "blue", "number": "沪A12345"}
# The document's example with a 17-character VIN whose check digit (position 9) is right.
DEFAULT_VEHICLE_LICENSE: dict[str, str] = {
    "plate_number": "沪A12345",
    "vehicle_type": "小型轿车",
    "owner": "张三",
    "address": "上海市XX路XX号",
    "use_character": "非营运",
    "model": "丰田CAMRY",
    "vin": "LSVAU218XN2183294",
    "engine_number": "4A123456",
    "register_date": "2020-06-01",
    "issue_date": "2020-06-05",
    "license_issuing_authority": "上海市公安局交通警察总队",
    "document_id": "SHXXXXXXXXXX",
    "approved_passengers_capacity": "5人",
    "total_mass": "1945",
    "curb_weight": "1495",
    "ratified_load_capacity": "",
    "gabarite": "4885x1840x1455",
    "traction_mass": "",
    "remarks": "",
    "inspection_record": "2022 2024",
}

RESULT_SHAPES = ("object", "list", "wrapped")
GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
_DATA_URI = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)


@dataclass(frozen=True)
class Reply:
    """One scripted behaviour.

    - ``Reply(code=130)``: the provider's JSON error (or success, for 200 / 0) with its
      documented message (or ``msg``); HTTP 200 for tianapi, ``APIZERO_ERRORS`` status for apizero.
    - ``Reply(http_status=429, body=b"Too Many Requests")``: a raw non-JSON answer.
    - ``Reply(stall_s=2.0)``: wait, then answer (normally, or as the other fields say).
    - ``Reply(close=True)``: read the request, close the socket without answering.
    - ``Reply(garbage=True)``: HTTP 200 (or ``http_status``) with an HTML body.
    """

    code: int | str | None = None
    msg: str | None = None
    http_status: int | None = None
    body: bytes | None = None
    stall_s: float = 0.0
    close: bool = False
    garbage: bool = False


class Call(NamedTuple):
    provider: str
    outcome: str
    image_sha256: str | None
    at: float = 0.0  # arrival, time.monotonic()


@dataclass(frozen=True)
class RequestRecord:
    provider: str
    method: str
    content_type: str
    fields: frozenset[str]  # form / query field names (tianapi) or JSON keys (apizero)
    key_ok: bool | None  # None: no key sent at all
    key_via: frozenset[str]  # where a correct key was found: "form", "query", "authorization", "x-api-key"
    http_status: int | None  # None when the connection was closed without an answer
    outcome: str


@dataclass
class _Parsed:
    method: str
    content_type: str
    fields: frozenset[str] = frozenset()
    key_ok: bool | None = None
    key_via: frozenset[str] = frozenset()
    error_code: int | None = None  # protocol violation found while parsing
    image_sha256: str | None = None


@dataclass
class _Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    outcome: str = ""
    stall_s: float = 0.0
    close: bool = False


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _request_id() -> str:
    return "req_" + secrets.token_hex(6)


def _apizero_http_status(code: int) -> tuple[int, str]:
    if code in APIZERO_ERRORS:
        return APIZERO_ERRORS[code]
    return (400 if 4000 <= code < 5000 else 500 if 5000 <= code < 6000 else 200), "UNKNOWN"


class FakeUpstream:
    """Both upstream APIs on one local port.  Use as a context manager."""

    def __init__(self, tianapi_key: str = "tk", apizero_key: str = "ak", host: str = "127.0.0.1"):
        self._keys = {TIANAPI: tianapi_key, APIZERO: apizero_key}
        self._host = host
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.result_shape = "object"
        self._answers: dict[tuple[str, str], Any] = {}
        self._scripts: dict[str, deque[Reply]] = {p: deque() for p in PROVIDERS}
        self._limits: dict[str, tuple[float, deque[float]]] = {}
        self._calls: list[Call] = []
        self._requests: list[RequestRecord] = []

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeUpstream:
        self._stopping.clear()
        self._server = _Server((self._host, 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-upstream", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes stalled answers
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeUpstream is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def tianapi_url(self) -> str:
        return self.base_url + TIANAPI_PATH

    @property
    def apizero_url(self) -> str:
        return self.base_url + APIZERO_PATH

    # ----------------------------------------------------------------- configuration
    def set_answer(self, image: bytes, payload: Any, provider: str | None = None) -> None:
        """What ``image`` (matched by sha256 of the decoded bytes) returns.

        ``payload``: for tianapi a plate dict or a list of them (shaped by ``result_shape``),
        for apizero the ``data`` object, or a :class:`Reply` returned for every request with
        this image (after the key and parameter checks).  ``provider`` defaults to: both
        for a Reply, tianapi for a list or a dict with ``number``/``color``, else apizero.
        """
        if provider is None:
            if isinstance(payload, Reply):
                targets: Iterable[str] = PROVIDERS
            elif isinstance(payload, list) or (isinstance(payload, dict) and {"number", "color"} & payload.keys()):
                targets = (TIANAPI,)
            else:
                targets = (APIZERO,)
        else:
            targets = (self._check_provider(provider),)
        digest = sha256_hex(image)
        with self._lock:
            for target in targets:
                self._answers[(target, digest)] = payload

    def script(self, provider: str, replies: Iterable[Reply]) -> None:
        """Queue behaviours consumed one per request to ``provider`` before normal answers."""
        self._check_provider(provider)
        with self._lock:
            self._scripts[provider].extend(replies)

    def scripted_left(self, provider: str) -> int:
        with self._lock:
            return len(self._scripts[self._check_provider(provider)])

    def rate_limit(self, provider: str, per_second: float | None) -> None:
        """Beyond ``per_second`` requests in any 1 s window: tianapi code 130, apizero HTTP 429 text."""
        self._check_provider(provider)
        with self._lock:
            if per_second is None:
                self._limits.pop(provider, None)
            else:
                self._limits[provider] = (per_second, deque())

    def reset(self) -> None:
        """Forget answers, scripts, limits and accounting (the server keeps running)."""
        with self._lock:
            self._answers.clear()
            for queue in self._scripts.values():
                queue.clear()
            self._limits.clear()
            self._calls.clear()
            self._requests.clear()
            self.result_shape = "object"

    # ----------------------------------------------------------------- accounting
    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted so far (keep-alive reuse shows as fewer connections than calls)."""
        server = self._server
        return 0 if server is None else server.connections_opened

    def billed(self, provider: str | None = None) -> int:
        """Successful (billed) answers: tianapi code 200, apizero code 0."""
        with self._lock:
            return sum(
                1
                for call in self._calls
                if (provider is None or call.provider == provider) and call.outcome == str(SUCCESS_CODE[call.provider])
            )

    @staticmethod
    def _check_provider(provider: str) -> str:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
        return provider

    # ----------------------------------------------------------------- request handling
    def _handle(self, provider: str, method: str, query: str, headers: Any, body: bytes) -> _Answer:
        arrived = time.monotonic()
        if provider == TIANAPI:
            parsed = self._parse_tianapi(method, query, headers, body)
        else:
            parsed = self._parse_apizero(method, headers, body)

        with self._lock:
            scripted = self._scripts[provider].popleft() if self._scripts[provider] else None
            limited = scripted is None and self._over_limit(provider, arrived)
            stored = self._answers.get((provider, parsed.image_sha256)) if parsed.image_sha256 else None

        answer: _Answer | None = None
        if scripted is not None:
            answer = self._render_reply(provider, scripted, stored)
        if answer is None and limited:
            answer = self._rate_limited(provider)
        if answer is None:
            answer = self._protocol_answer(provider, parsed, stored)
            if scripted is not None:  # a stall-only reply: wait, then answer normally
                answer.stall_s = scripted.stall_s

        record = RequestRecord(
            provider=provider,
            method=method,
            content_type=parsed.content_type,
            fields=parsed.fields,
            key_ok=parsed.key_ok,
            key_via=parsed.key_via,
            http_status=None if answer.close else answer.status,
            outcome=answer.outcome,
        )
        with self._lock:
            self._calls.append(Call(provider, answer.outcome, parsed.image_sha256, arrived))
            self._requests.append(record)
        return answer

    def _over_limit(self, provider: str, now: float) -> bool:  # called with the lock held
        limit = self._limits.get(provider)
        if limit is None:
            return False
        per_second, stamps = limit
        while stamps and now - stamps[0] >= 1.0:
            stamps.popleft()
        if len(stamps) >= per_second:
            return True
        stamps.append(now)
        return False

    # tianapi ---------------------------------------------------------------
    def _parse_tianapi(self, method: str, query: str, headers: Any, body: bytes) -> _Parsed:
        content_type = headers.get("Content-Type", "") or ""
        parsed = _Parsed(method=method, content_type=content_type)
        fields: dict[str, str] = {}
        via: dict[str, str] = {}
        for name, values in parse_qs(query, keep_blank_values=True).items():
            fields[name], via[name] = values[0], "query"
        if method == "POST" and content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            text = body.decode("utf-8", errors="replace")
            for name, values in parse_qs(text, keep_blank_values=True).items():
                fields[name], via[name] = values[0], "form"
        parsed.fields = frozenset(fields)

        if "key" not in fields:
            parsed.error_code = 240
            return parsed
        parsed.key_ok = secrets.compare_digest(fields["key"].encode(), self._keys[TIANAPI].encode())
        parsed.key_via = frozenset({via["key"]}) if parsed.key_ok else frozenset()
        if not parsed.key_ok:
            parsed.error_code = 230
            return parsed

        if "img" not in fields:
            if fields.get("imgurl"):  # we cannot fetch it: answer as for an unregistered image
                return parsed
            parsed.error_code = 260 if "imgurl" in fields else 280
            return parsed
        if fields["img"] == "":
            parsed.error_code = 260
            return parsed
        try:
            image = base64.b64decode(fields["img"], validate=True)
        except (binascii.Error, ValueError):
            parsed.error_code = 270
            return parsed
        if not image:
            parsed.error_code = 260
            return parsed
        parsed.image_sha256 = sha256_hex(image)
        if len(image) > TIANAPI_MAX_IMAGE_BYTES:
            parsed.error_code = 290
        return parsed

    # apizero ---------------------------------------------------------------
    def _parse_apizero(self, method: str, headers: Any, body: bytes) -> _Parsed:
        content_type = headers.get("Content-Type", "") or ""
        parsed = _Parsed(method=method, content_type=content_type)
        expected = self._keys[APIZERO].encode()
        offered: dict[str, str] = {}
        authorization = headers.get("Authorization")
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            offered["authorization"] = token.strip() if scheme.lower() == "bearer" else ""
        if headers.get("X-Api-Key") is not None:
            offered["x-api-key"] = headers.get("X-Api-Key").strip()
        if offered:
            parsed.key_via = frozenset(
                where for where, key in offered.items() if key and secrets.compare_digest(key.encode(), expected)
            )
            parsed.key_ok = bool(parsed.key_via)
        if not parsed.key_ok:
            parsed.error_code = 4015
            return parsed

        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            parsed.error_code = 4000
            return parsed
        if not isinstance(request, dict):
            parsed.error_code = 4000
            return parsed
        parsed.fields = frozenset(request)
        input_type, input_data = request.get("input_type"), request.get("input_data")
        if input_type not in ("url", "base64") or not isinstance(input_data, str) or not input_data.strip():
            parsed.error_code = 4000
            return parsed
        if input_type == "url":
            if not input_data.startswith(("http://", "https://")):
                parsed.error_code = 4000
            return parsed  # we cannot fetch it: answer as for an unregistered image
        try:
            image = base64.b64decode(_DATA_URI.sub("", input_data.strip()), validate=True)
        except (binascii.Error, ValueError):
            parsed.error_code = 4000
            return parsed
        if not image:
            parsed.error_code = 4000
            return parsed
        parsed.image_sha256 = sha256_hex(image)
        return parsed

    # answers ---------------------------------------------------------------
    def _protocol_answer(self, provider: str, parsed: _Parsed, stored: Any) -> _Answer:
        if parsed.method != "POST" and provider == APIZERO:
            return _Answer(405, b"Method Not Allowed", "text/plain; charset=utf-8", outcome="http_405")
        if parsed.error_code is not None:
            return self._error(provider, parsed.error_code)
        if isinstance(stored, Reply):
            rendered = self._render_reply(provider, stored, None)
            if rendered is not None:
                return rendered
            stored = None
        return self._success(provider, stored)

    def _render_reply(self, provider: str, reply: Reply, stored: Any) -> _Answer | None:
        """The answer a Reply asks for, or None when it only stalls (then answer normally)."""
        if reply.close:
            return _Answer(outcome="closed", close=True, stall_s=reply.stall_s)
        if reply.garbage:
            answer = _Answer(reply.http_status or 200, GARBAGE_BODY, "text/html; charset=utf-8", outcome="garbage")
        elif reply.code is not None:
            code = int(reply.code)
            if code == SUCCESS_CODE[provider]:
                answer = self._success(provider, None if isinstance(stored, Reply) else stored)
                if reply.http_status is not None:
                    answer.status = reply.http_status
            else:
                answer = self._error(provider, code, reply.msg, reply.http_status)
        elif reply.http_status is not None or reply.body is not None:
            status = reply.http_status or 200
            body = reply.body if reply.body is not None else HTTPStatus(status).phrase.encode()
            content_type = "application/json" if body[:1] in (b"{", b"[") else "text/plain; charset=utf-8"
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = None
            code = decoded.get("code") if isinstance(decoded, dict) else None
            outcome = str(code) if isinstance(code, int) else f"http_{status}"
            answer = _Answer(status, body, content_type, outcome=outcome)
        else:
            return None
        answer.stall_s = reply.stall_s
        return answer

    def _rate_limited(self, provider: str) -> _Answer:
        if provider == TIANAPI:
            return self._error(TIANAPI, 130)
        return _Answer(429, b"Too Many Requests", "text/plain; charset=utf-8", outcome="http_429")

    def _error(self, provider: str, code: int, msg: str | None = None, http_status: int | None = None) -> _Answer:
        message = msg if msg is not None else lookup(provider, code).message
        if provider == TIANAPI:
            return _Answer(http_status or 200, _json({"code": code, "msg": message}), outcome=str(code))
        status, name = _apizero_http_status(code)
        body = {"code": code, "status": name, "msg": message, "request_id": _request_id()}
        return _Answer(http_status or status, _json(body), outcome=str(code))

    def _success(self, provider: str, stored: Any) -> _Answer:
        if provider == TIANAPI:
            plates = [dict(DEFAULT_PLATE)] if stored is None else stored
            plates = [plates] if isinstance(plates, dict) else list(plates)
            shape = self.result_shape
            if shape == "object":
                result: Any = plates[0] if len(plates) == 1 else plates
            elif shape == "list":
                result = plates
            elif shape == "wrapped":
                result = {"list": plates}
            else:
                raise ValueError(f"result_shape must be one of {RESULT_SHAPES}, got {shape!r}")
            return _Answer(200, _json({"code": 200, "msg": "success", "result": result}), outcome="200")
        data = dict(DEFAULT_VEHICLE_LICENSE) if stored is None else stored
        body = {"code": 0, "msg": "成功", "data": data, "request_id": _request_id()}
        return _Answer(200, _json(body), outcome="0")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], upstream: FakeUpstream):
        self.upstream = upstream
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.connections_opened = 0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
            self.connections_opened += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close kept-alive connections so no client keeps talking to a stopped fake."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or vanish are part of the tests; anything else is a bug in the fake.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeUpstream/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        split = urlsplit(self.path)
        provider = PATHS.get(split.path)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._send(411, b"Length Required", "text/plain; charset=utf-8", close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST_BYTES:
            self._send(413 if length > 0 else 400, b"Bad Content-Length", "text/plain; charset=utf-8", close=True)
            return
        body = self.rfile.read(length) if length else b""
        if provider is None:
            self._send(404, b"Not Found", "text/plain; charset=utf-8")
            return

        upstream = self.server.upstream
        answer = upstream._handle(provider, self.command, split.query, self.headers, body)
        if answer.stall_s > 0 and upstream._stopping.wait(answer.stall_s):
            answer.close = True  # the fake is stopping: do not answer after all
        if answer.close:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(answer.status, answer.body, answer.content_type)

    def _send(self, status: int, body: bytes, content_type: str, close: bool = False) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True
