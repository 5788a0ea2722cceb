"""A local HTTP server that speaks both upstream protocols, codes included.

``FakeUpstream`` answers like tianapi ``licenseplate/index`` and apizero ``ocr-vehicle-license``
on 127.0.0.1, following each provider's document, so tests exercise the real transport over
real sockets::

    with FakeUpstream(tianapi_key="tk", apizero_key="ak") as up:
        up.set_answer(image, {"color": "yellow", "number": "沪A0762学"})
        up.script("tianapi", [Reply(code=130), Reply(stall_s=2.0), Reply(close=True)])
        ... point the recognisers at up.tianapi_url / up.apizero_url ...
        assert up.billed("tianapi") == 1

Protocol checks are those of the documents (key, parameters, base64, 3 MB limit).  Codes and
messages are the fake's own transcription of the providers' documents (``TIANAPI_CODES``:
code -> 错误信息; ``APIZERO_CODES``: code -> (status, 说明)), never the project's code table,
so a wrong project table fails its tests instead of agreeing with itself.  Success messages are
the documented ones: ``"success"`` (tianapi, code 200) and ``"成功"`` (apizero, code 0).  The
apizero document gives no HTTP status for its codes: ``APIZERO_ERRORS`` holds plausible ones.

Scripted replies (consumed one per request, per provider) override everything; then the optional
rate limit; then the protocol.  Besides plain answers a :class:`Reply` injects faults: a success
whose ``result`` / ``data`` is any JSON value or absent (``ABSENT``), an exact body text
(``raw_json``, for NaN, 1e400 or 40-digit numbers), a gzip-compressed body (``gzip``), a body
padded to a size (``pad_to``; with ``gzip`` a 1 GiB answer is a ~1 MB stream the fake never holds
in memory), a body sent one byte at a time (``drip_s``), a stall (``stall_s``), a closed
connection (``close``), an HTML body (``garbage``), any HTTP status (``http_status``).

Accounting: ``calls`` holds ``Call(provider, outcome, image_sha256, at)`` per request, where
``outcome`` is the code the body carries, as a string (``"200"``, ``"130"``, ``"0"``, ``"4015"``;
an integral number or a string of digits counts), else ``"http_<status>"`` for an answer
without a code, ``"garbage"`` or ``"closed"``; ``at`` is when the request arrived
(``time.monotonic()``, the clock the rate limit counts with).  Billing follows the documents:
``billed()`` counts the answers whose body carries the success code (tianapi 200, "成功调用,
code=>200并产生计费"; apizero 0), whatever the HTTP status, compression, padding or pace, and
whether or not the client read it: a stalled or dripped success the client gave up on is billed,
like the real service would.  ``requests`` holds what the server saw about each request's form
(method, content type, field names, whether the key was right and in which places) - never the key.

Thread-safe: one thread per connection, HTTP/1.1 keep-alive, all state behind one lock.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import json
import re
import secrets
import socket
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

TIANAPI = "tianapi"
APIZERO = "apizero"
PROVIDERS = (TIANAPI, APIZERO)
TIANAPI_PATH = "/licenseplate/index"
APIZERO_PATH = "/api/ocr-vehicle-license"
PATHS = {TIANAPI_PATH: TIANAPI, APIZERO_PATH: APIZERO}

SUCCESS_CODE = {TIANAPI: 200, APIZERO: 0}  # the only billed codes, as the documents say
SUCCESS_MSG = {TIANAPI: "success", APIZERO: "成功"}  # the documents' success examples
UNDOCUMENTED_MSG = "undocumented code"  # for a scripted code neither document lists (give ``msg``)
TIANAPI_MAX_IMAGE_BYTES = 3 * 1024 * 1024  # "图片大小不超过3M"
MAX_REQUEST_BYTES = 32 * 1024 * 1024

# tianapi's document, "返回状态码": 错误状态码 -> 错误信息, exactly as written there.
# ("错误码1开头的是系统级错误,2开头的是用户级错误,其中200表示请求成功处理并计费。")
TIANAPI_CODES: dict[int, str] = {
    100: "内部服务器错误",
    110: "当前API已下线",
    120: "API暂时维护中",
    130: "API调用频率超限",
    140: "API没有调用权限",
    150: "API可用次数不足",
    160: "账号未申请该API",
    170: "Referer请求来源受限",
    180: "IP请求来源受限",
    190: "当前key不可用",
    230: "key错误或为空",
    240: "缺少key参数",
    250: "数据返回为空",
    260: "参数值不得为空",
    270: "参数值不符合要求",
    280: "缺少必要的参数",
    290: "超过最大输入限制",
}

# apizero's document, "8. 错误码": code -> (status, 说明), exactly as written there.
APIZERO_CODES: dict[int, tuple[str, str]] = {
    4000: ("VALIDATION_ERROR", "缺少必填参数 input_type / input_data,或参数格式不合法"),
    4015: ("KEY_REQUIRED", "此接口需要 API Key,匿名不可调用"),
    5020: ("UPSTREAM_ERROR", "上游服务 HTTP 异常,请稍后重试"),
    5021: ("UPSTREAM_INVALID", "图片无法识别,请确认为行驶证且图片清晰完整"),
    5030: ("UPSTREAM_MISSING", "行驶证识别服务未开通,请联系管理员"),
}

# apizero documents code and status name but no HTTP status: what it plausibly sends with each.
_APIZERO_HTTP_STATUS = {4000: 400, 4015: 401, 5020: 502, 5021: 422, 5030: 503}
APIZERO_ERRORS: dict[int, tuple[int, str]] = {
    code: (_APIZERO_HTTP_STATUS[code], status) for code, (status, _) in APIZERO_CODES.items()
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
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_DATA_URI = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)


class _Marker:
    def __init__(self, name: str):
        self._name = name

    def __repr__(self) -> str:
        return self._name


UNSET: Any = _Marker("UNSET")  # Reply.result / Reply.data not given: the normal payload
ABSENT: Any = _Marker("ABSENT")  # Reply.result / Reply.data = ABSENT: the key is left out of the body


@dataclass(frozen=True)
class Reply:
    """One scripted behaviour.

    What is sent (the first that applies):

    - ``Reply(close=True)``: read the request, close the socket without answering (not billed).
    - ``Reply(garbage=True)``: HTTP 200 (or ``http_status``) with an HTML body (not billed).
    - ``Reply(raw_json='{"code":200,"result":{"number":NaN}}')``: exactly this text as the JSON
      body, HTTP 200 (or ``http_status``), for what ``json.dumps`` cannot write (NaN, 1e400,
      40-digit integers, duplicate keys, truncated text).  Billed when its top-level ``code`` is
      the success code, read leniently: Python's ``json`` (NaN and friends accepted), else a
      leading ``{"code": <digits>`` of unparsable text; an integral number or digit string counts.
    - ``Reply(code=130)``: the provider's JSON error with its documented message (or ``msg``);
      HTTP 200 for tianapi, the ``APIZERO_ERRORS`` status for apizero (or ``http_status``).
      ``Reply(code=200)`` (tianapi) / ``Reply(code=0)`` (apizero): a billed success, also with any
      ``http_status`` (``Reply(code=200, http_status=500)`` is billed) and ``msg``.
    - ``Reply(code=200, result=<any JSON value>)`` (tianapi) / ``Reply(code=0, data=<any JSON
      value>)`` (apizero): a billed success whose ``result`` / ``data`` is that raw value instead
      of the plate / licence: ``result="oops"``, ``data=[1, 2]``, ``data=None`` (JSON null),
      ``data=ABSENT`` (no ``data`` key at all).  Without ``code`` it means the success code; with
      an error code the value is added to the error body.  Each provider reads only its own field
      (``result`` for tianapi, ``data`` for apizero).
    - ``Reply(http_status=429, body=b"Too Many Requests")``: a raw answer with this body
      (billed if it is JSON carrying the success code, read like ``raw_json``).
    - none of these: the normal answer (protocol checks, then the stored or default payload).

    How it is sent (combines with any of the above, and with a normal answer):

    - ``stall_s=2.0``: wait before answering (the answer is recorded, and billed, on arrival).
      With ``release=<threading.Event>``, the wait ends as soon as the test sets the event: a
      call held exactly while something else happens, for no longer (``stall_s`` is its bound).
    - ``pad_to=5_000_000``: the (uncompressed) body is at least this many bytes: a JSON object the
      fake builds gets a last field ``"padding": "<spaces>"``; a ``raw_json`` / ``body`` / HTML body
      gets trailing spaces (still valid JSON).  The padding is never built in memory: it is
      streamed in 1 MiB pieces, so ``pad_to=1 << 30`` is cheap.
    - ``gzip=True``: the body gzip-compressed, with ``Content-Encoding: gzip`` (and the compressed
      ``Content-Length``).  With ``pad_to=1 << 30`` it is a valid ~1 MB gzip stream (each 1 MiB of
      padding is one cached, independently compressed deflate segment; CRC computed, not read).
    - ``drip_s=0.5``: after the headers, send the body one byte every ``drip_s`` seconds, stopping
      early when the fake stops or the client hangs up.
    """

    code: int | str | None = None
    msg: str | None = None
    http_status: int | None = None
    body: bytes | None = None
    stall_s: float = 0.0
    close: bool = False
    garbage: bool = False
    result: Any = field(default=UNSET, hash=False)
    data: Any = field(default=UNSET, hash=False)
    raw_json: str | None = None
    gzip: bool = False
    pad_to: int | None = None
    drip_s: float | None = None
    release: threading.Event | None = field(default=None, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.release is not None and not self.stall_s > 0:
            raise ValueError("release ends a stall: give stall_s too")
        if self.raw_json is not None and self.body is not None:
            raise ValueError("give raw_json or body, not both")
        if self.pad_to is not None and self.pad_to < 0:
            raise ValueError(f"pad_to must be >= 0, got {self.pad_to}")
        if self.drip_s is not None and not self.drip_s > 0:
            raise ValueError(f"drip_s must be > 0, got {self.drip_s}")
        for name in ("result", "data"):
            value = getattr(self, name)
            if value is not UNSET and value is not ABSENT:
                _json(value)  # fail here, not in the server thread, if it is not JSON


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
    content_type: str = JSON_CONTENT_TYPE
    outcome: str = ""
    stall_s: float = 0.0
    close: bool = False
    json_object: bool = False  # body is a JSON object the fake built: padding goes in a field
    pad: int = 0  # spaces inserted at pad_at, streamed, never built
    pad_at: int | None = None
    gzip: bool = False
    drip_s: float | None = None
    release: threading.Event | None = None

    def deliver(self, reply: Reply) -> None:
        """Apply a reply's delivery fields (stall, padding, gzip, drip) that it sets."""
        if reply.stall_s:
            self.stall_s = reply.stall_s
            self.release = reply.release
        if reply.gzip:
            self.gzip = True
        if reply.drip_s is not None:
            self.drip_s = reply.drip_s
        if reply.pad_to is not None and not self.close:
            if self.pad_at is None:
                if self.json_object and self.body.endswith(b"}"):
                    self.body = self.body[:-1] + b',"padding":""}'
                    self.pad_at = len(self.body) - 2
                else:
                    self.pad_at = len(self.body)
            self.pad = max(0, reply.pad_to - len(self.body))


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


_CODE_PREFIX = re.compile(rb'^\s*\{\s*"code"\s*:\s*"?\s*(-?\d{1,18})(?!\d)')
_DIGITS = re.compile(r"\s*-?\d{1,18}\s*")


def _as_code(value: Any) -> int | None:
    """A body's ``code`` read leniently: an integer, an integral number or a string of digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return None


def _body_code(body: bytes) -> int | None:
    """The code a body carries: Python's json (NaN, Infinity, 1e400 accepted), else a leading ``{"code": n``."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        match = _CODE_PREFIX.match(body)
        return int(match.group(1)) if match else None
    return _as_code(decoded.get("code")) if isinstance(decoded, dict) else None


def _outcome(body: bytes, status: int) -> str:
    code = _body_code(body)
    return f"http_{status}" if code is None else str(code)


# --------------------------------------------------------------------------- body streaming
# A body is head + <pad spaces> + tail; the spaces are streamed in 1 MiB pieces.  Gzipped, each
# piece is one independently compressed raw-deflate segment ending in a full flush (byte-aligned,
# not final), so the same cached ~1 KB segment repeats: 1 GiB of padding is ~1 MB on the wire.

_PIECE = 1 << 20
_SPACES = b" " * _PIECE
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # deflate, no name, mtime 0, best, unknown OS


def _deflate(data: bytes, *, final: bool) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


@functools.cache
def _deflated_spaces() -> bytes:
    return _deflate(_SPACES, final=False)


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, row) for row in matrix]


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """zlib's crc32_combine: the CRC-32 of A+B from crc(A), crc(B) and len(B)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


@functools.lru_cache(maxsize=256)
def _crc32_spaces(count: int) -> int:
    if count <= _PIECE:
        return zlib.crc32(memoryview(_SPACES)[:count])
    half = count // 2
    return _crc32_combine(_crc32_spaces(half), _crc32_spaces(count - half), count - half)


def _body_pieces(answer: _Answer) -> tuple[list[tuple[bytes, int]], int]:
    """What to write, as (bytes, times) pairs, and their total length (the Content-Length)."""
    at = len(answer.body) if answer.pad_at is None else answer.pad_at
    head, tail, pad = answer.body[:at], answer.body[at:], answer.pad
    full, rest = divmod(pad, _PIECE)
    if not answer.gzip:
        pieces = [(head, 1), (_SPACES, full), (_SPACES[:rest], 1), (tail, 1)]
    else:
        crc = _crc32_combine(zlib.crc32(head), _crc32_spaces(pad), pad) if pad else zlib.crc32(head)
        crc = zlib.crc32(tail, crc)
        trailer = struct.pack("<II", crc, (len(answer.body) + pad) & 0xFFFFFFFF)
        pieces = [
            (_GZIP_HEADER, 1),
            (_deflate(head, final=False) if head else b"", 1),
            (_deflated_spaces(), full),
            (_deflate(_SPACES[:rest], final=False) if rest else b"", 1),
            (_deflate(tail, final=True), 1),
            (trailer, 1),
        ]
    pieces = [(chunk, times) for chunk, times in pieces if chunk and times]
    return pieces, sum(len(chunk) * times for chunk, times in pieces)


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
        self._latency: dict[str, float] = {}
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

    def clear_script(self, provider: str) -> None:
        """Drop the scripted behaviours nobody asked for (the fake keeps running, its accounting too)."""
        with self._lock:
            self._scripts[self._check_provider(provider)].clear()

    def rate_limit(self, provider: str, per_second: float | None) -> None:
        """Beyond ``per_second`` requests in any 1 s window: tianapi code 130, apizero HTTP 429 text."""
        self._check_provider(provider)
        with self._lock:
            if per_second is None:
                self._limits.pop(provider, None)
            else:
                self._limits[provider] = (per_second, deque())

    def latency(self, provider: str, seconds: float) -> None:
        """Answer ``provider``'s requests this long after they arrive (a refusal over the limit comes at once)."""
        self._check_provider(provider)
        with self._lock:
            self._latency[provider] = seconds

    def reset(self) -> None:
        """Forget answers, scripts, limits, latencies and accounting (the server keeps running)."""
        with self._lock:
            self._answers.clear()
            for queue in self._scripts.values():
                queue.clear()
            self._limits.clear()
            self._latency.clear()
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
            latency = self._latency.get(provider, 0.0)
            stored = self._answers.get((provider, parsed.image_sha256)) if parsed.image_sha256 else None

        answer: _Answer | None = None
        if scripted is not None:
            answer = self._render_reply(provider, scripted, stored)
        if answer is None and limited:
            answer = self._rate_limited(provider)
        if answer is None:
            answer = self._protocol_answer(provider, parsed, stored)
            answer.stall_s = max(answer.stall_s, latency)
        if scripted is not None:  # its stall, padding, gzip and drip (a content-less one: on the normal answer)
            answer.deliver(scripted)

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
            answer = self._render_reply(provider, stored, None) or self._success(provider, None)
            answer.deliver(stored)
            return answer
        return self._success(provider, stored)

    def _render_reply(self, provider: str, reply: Reply, stored: Any) -> _Answer | None:
        """The answer a Reply asks for (its delivery fields not yet applied), or None to answer normally."""
        payload = reply.result if provider == TIANAPI else reply.data
        if reply.close:
            return _Answer(outcome="closed", close=True)
        if reply.garbage:
            return _Answer(reply.http_status or 200, GARBAGE_BODY, "text/html; charset=utf-8", outcome="garbage")
        if reply.raw_json is not None:
            status = reply.http_status or 200
            body = reply.raw_json.encode("utf-8")
            return _Answer(status, body, JSON_CONTENT_TYPE, outcome=_outcome(body, status))
        if reply.code is not None or payload is not UNSET:
            code = SUCCESS_CODE[provider] if reply.code is None else int(reply.code)
            if code != SUCCESS_CODE[provider]:
                return self._error(provider, code, reply.msg, reply.http_status, payload)
            answer = self._success(provider, None if isinstance(stored, Reply) else stored, payload, reply.msg)
            if reply.http_status is not None:
                answer.status = reply.http_status
            return answer
        if reply.http_status is not None or reply.body is not None:
            status = reply.http_status or 200
            body = reply.body if reply.body is not None else HTTPStatus(status).phrase.encode()
            content_type = "application/json" if body[:1] in (b"{", b"[") else "text/plain; charset=utf-8"
            return _Answer(status, body, content_type, outcome=_outcome(body, status))
        return None

    def _rate_limited(self, provider: str) -> _Answer:
        if provider == TIANAPI:
            return self._error(TIANAPI, 130)
        return _Answer(429, b"Too Many Requests", "text/plain; charset=utf-8", outcome="http_429")

    def _error(
        self,
        provider: str,
        code: int,
        msg: str | None = None,
        http_status: int | None = None,
        payload: Any = UNSET,
    ) -> _Answer:
        """An error answer with the document's message (or ``msg``), and ``payload`` under result / data if given."""
        if provider == TIANAPI:
            message = msg if msg is not None else TIANAPI_CODES.get(code, UNDOCUMENTED_MSG)
            body: dict[str, Any] = {"code": code, "msg": message}
            if payload is not UNSET and payload is not ABSENT:
                body["result"] = payload
            return _Answer(http_status or 200, _json(body), outcome=str(code), json_object=True)
        status, name = _apizero_http_status(code)
        message = msg if msg is not None else APIZERO_CODES.get(code, ("", UNDOCUMENTED_MSG))[1]
        body = {"code": code, "status": name, "msg": message}
        if payload is not UNSET and payload is not ABSENT:
            body["data"] = payload
        body["request_id"] = _request_id()
        return _Answer(http_status or status, _json(body), outcome=str(code), json_object=True)

    def _success(self, provider: str, stored: Any, payload: Any = UNSET, msg: str | None = None) -> _Answer:
        """A billed success: the stored (or default) payload, or ``payload`` as given (ABSENT: no key)."""
        message = SUCCESS_MSG[provider] if msg is None else msg
        if provider == TIANAPI:
            body: dict[str, Any] = {"code": SUCCESS_CODE[TIANAPI], "msg": message}
            if payload is UNSET:
                body["result"] = self._plates_result(stored)
            elif payload is not ABSENT:
                body["result"] = payload
            return _Answer(200, _json(body), outcome=str(SUCCESS_CODE[TIANAPI]), json_object=True)
        body = {"code": SUCCESS_CODE[APIZERO], "msg": message}
        if payload is UNSET:
            body["data"] = dict(DEFAULT_VEHICLE_LICENSE) if stored is None else stored
        elif payload is not ABSENT:
            body["data"] = payload
        body["request_id"] = _request_id()
        return _Answer(200, _json(body), outcome=str(SUCCESS_CODE[APIZERO]), json_object=True)

    def _plates_result(self, stored: Any) -> Any:
        plates = [dict(DEFAULT_PLATE)] if stored is None else stored
        plates = [plates] if isinstance(plates, dict) else list(plates)
        shape = self.result_shape
        if shape == "object":
            return plates[0] if len(plates) == 1 else plates
        if shape == "list":
            return plates
        if shape == "wrapped":
            return {"list": plates}
        raise ValueError(f"result_shape must be one of {RESULT_SHAPES}, got {shape!r}")


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
        if answer.stall_s > 0 and self._stall(answer, upstream._stopping):
            answer.close = True  # the fake is stopping: do not answer after all
        if answer.close:
            self._hang_up()
            return
        self._send_answer(answer)

    @staticmethod
    def _stall(answer: _Answer, stopping: threading.Event) -> bool:
        """Wait ``stall_s``, or until the reply's release is set; True when the fake stops meanwhile."""
        if answer.release is None:
            return stopping.wait(answer.stall_s)
        deadline = time.monotonic() + answer.stall_s
        while (left := deadline - time.monotonic()) > 0 and not answer.release.is_set():
            if stopping.wait(min(left, 0.05)):
                return True
        return False

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_answer(self, answer: _Answer) -> None:
        """Headers, then the body streamed piece by piece (or one byte every ``drip_s`` seconds)."""
        stopping = self.server.upstream._stopping
        pieces, length = _body_pieces(answer)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            if answer.gzip:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            for chunk, times in pieces:
                for _ in range(times):
                    if not answer.drip_s:
                        self.wfile.write(chunk)
                        continue
                    for offset in range(len(chunk)):
                        if stopping.wait(answer.drip_s):  # the fake is stopping: leave the rest unsent
                            self._hang_up()
                            return
                        self.wfile.write(chunk[offset : offset + 1])
        except OSError:  # the client hung up
            self.close_connection = True

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
