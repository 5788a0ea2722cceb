"""Shared HTTP transport and answer handling for the paid upstream APIs.

Every upstream call costs money, so:

* the transport never repeats a request that may have reached the server: urllib3 only
  retries failures to *establish* a connection (refused, DNS, connect timeout);
* a failure after the request was sent (read timeout, dropped connection, the overall
  deadline) is marked ``possibly_billed``: the pipeline retries those at most
  ``UPSTREAM_TIMEOUT_RETRIES`` times;
* an answer that may have been billed (any HTTP 2xx answer, or any answer carrying the
  provider's success code) is never an exception: it comes back as a
  :class:`ProviderAnswer`, marked ``unusable`` when nothing can be made of it, so that it is
  stored as a paid answer and never asked for again.

Resources are bounded whatever the upstream does: the body is streamed and refused past
``max_answer_bytes`` (compressed or decompressed), and one call, connect to last byte, is
cut at ``deadline_s`` by a watchdog that shuts the socket down (a read timeout alone
restarts with every byte an upstream drips).

Messages name the provider, the HTTP status and sizes; never the URL query, the key, the
body or the image.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from vehicle_ocr.bounded import cut_text, safe_message, within_budget
from vehicle_ocr.codes import is_documented
from vehicle_ocr.errors import ConfigurationError, PipelineError, UpstreamError
from vehicle_ocr.providers.base import KeySource, ProviderAnswer
from vehicle_ocr.providers.keys import api_key_source

if TYPE_CHECKING:
    from vehicle_ocr.settings import Settings

Timeout = float | tuple[float, float]

USER_AGENT = "vehicle-ocr/0.1"
CONNECT_RETRIES = 2
POOL_MAXSIZE = 16
DEFAULT_MAX_ANSWER_BYTES = 4 * 1024 * 1024
DEFAULT_DEADLINE_S = 30.0
# A paid answer is stored in DynamoDB (400 KB items) with its bookkeeping: keep it well under.
PAID_ANSWER_BUDGET_BYTES = 200_000
_CHUNK = 64 * 1024

_shared_session: requests.Session | None = None
_shared_lock = threading.Lock()
_active_call = threading.local()


# ----------------------------------------------------------------------------- session
def connect_only_retry(connect_retries: int = CONNECT_RETRIES) -> Retry:
    """A urllib3 Retry that repeats connection establishment only.

    ``connect`` covers errors raised before the request is sent (urllib3's
    ``ConnectTimeoutError`` family, which includes refused connections and DNS
    failures).  ``read=False`` re-raises read errors at once (timeouts, connections
    dropped after sending), ``other=0`` and ``status=0`` stop everything else, and no
    status code or Retry-After header triggers a retry.
    """
    return Retry(
        total=connect_retries,
        connect=connect_retries,
        read=False,
        status=0,
        other=0,
        redirect=0,
        status_forcelist=None,
        backoff_factor=0.1,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=False,
    )


class _WatchedConnection:
    """Tells the call running on this thread which connection carries its request (for the deadline)."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_active_call, "deadline", None)
        if deadline is not None:
            deadline.attach(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


def new_session(*, pool_maxsize: int = POOL_MAXSIZE, connect_retries: int = CONNECT_RETRIES) -> requests.Session:
    """A new pooled session for the upstream APIs.  Create one per process and reuse it."""
    session = requests.Session()
    adapter = _DeadlineAdapter(
        pool_connections=4,
        pool_maxsize=pool_maxsize,
        max_retries=connect_only_retry(connect_retries),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    # Only encodings urllib3 decodes with a bounded output buffer.
    session.headers["Accept-Encoding"] = "gzip, deflate"
    return session


def shared_session() -> requests.Session:
    """The process-wide session (created on first use, reused by every warm invocation)."""
    global _shared_session
    if _shared_session is None:
        with _shared_lock:
            if _shared_session is None:
                _shared_session = new_session()
    return _shared_session


class _Deadline:
    """Shuts the call's socket down once ``seconds`` have passed, wherever the call is blocked."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._connection: Any = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _active_call.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _active_call.deadline = None

    def attach(self, connection: Any) -> None:
        with self._lock:
            self._connection = connection
            if self.expired:
                self._shut_down()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shut_down()

    def _shut_down(self) -> None:  # called with the lock held
        sock = getattr(self._connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


# ----------------------------------------------------------------------------- transport
@dataclass(frozen=True)
class UpstreamLimits:
    """How long one upstream call may take, and how large an answer it may read."""

    connect_timeout_s: float = 3.05
    read_timeout_s: float = 20.0
    deadline_s: float = DEFAULT_DEADLINE_S
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES

    @classmethod
    def of(cls, timeout: Timeout, **overrides: Any) -> UpstreamLimits:
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        return cls(connect_timeout_s=connect, read_timeout_s=read, **overrides)


@dataclass(frozen=True)
class HttpAnswer:
    """What came back: the status and the decoded body, or why the body could not be read."""

    status: int
    body: bytes | None
    problem: str | None = None  # set when body is None

    def json(self) -> Any:
        """The body as JSON (NaN and infinities as Python reads them), or None when it is not JSON."""
        if self.body is None:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _timeout(provider: str, message: str, *, possibly_billed: bool) -> PipelineError:
    error = PipelineError(provider, "UPSTREAM_TIMEOUT", message)
    error.possibly_billed = possibly_billed
    return error


def _never_sent(exc: BaseException) -> bool:
    """True when a requests error happened before the request left: it cannot have been billed."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the last cause
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def post(session: requests.Session, url: str, *, provider: str, limits: UpstreamLimits, **kwargs: Any) -> HttpAnswer:
    """POST once; the status and the (bounded) body, or a PipelineError naming ``provider``.

    - connect timeout → ``UPSTREAM_TIMEOUT``; read timeout or overall deadline →
      ``UPSTREAM_TIMEOUT``, possibly billed
    - refused → ``UPSTREAM_UNAVAILABLE``; dropped after sending → ``UPSTREAM_UNAVAILABLE``,
      possibly billed
    - malformed URL → ``CONFIGURATION_ERROR``

    Redirects are not followed (a redirected POST would lose its body or leak the key).
    """
    kwargs.setdefault("allow_redirects", False)
    with _Deadline(limits.deadline_s) as deadline:
        try:
            with session.post(
                url, timeout=(limits.connect_timeout_s, limits.read_timeout_s), stream=True, **kwargs
            ) as response:
                body, problem = _read_body(response, limits.max_answer_bytes)
                return HttpAnswer(response.status_code, body, problem)
        except requests.ConnectTimeout as exc:
            raise _timeout(
                provider, f"could not connect within {limits.connect_timeout_s:g}s", possibly_billed=False
            ) from exc
        except (requests.Timeout, ReadTimeoutError) as exc:
            raise _timeout(provider, f"no answer within {limits.read_timeout_s:g}s", possibly_billed=True) from exc
        except (
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL,
        ) as exc:
            raise PipelineError(
                provider, "CONFIGURATION_ERROR", "the configured URL is not a valid http(s) URL"
            ) from exc
        except (requests.RequestException, HTTPError, OSError) as exc:
            if deadline.expired:
                raise _timeout(
                    provider, f"no complete answer within the {limits.deadline_s:g}s deadline", possibly_billed=True
                ) from exc
            if isinstance(exc, requests.ConnectionError) and _is_read_timeout(exc):
                raise _timeout(
                    provider, f"answer stalled for more than {limits.read_timeout_s:g}s", possibly_billed=True
                ) from exc
            never_sent = isinstance(exc, requests.ConnectionError) and _never_sent(exc)
            error = PipelineError(
                provider,
                "UPSTREAM_UNAVAILABLE",
                f"connection failed or broke before a complete answer ({type(exc).__name__})",
            )
            error.possibly_billed = not never_sent
            raise error from exc


def _is_read_timeout(exc: requests.ConnectionError) -> bool:
    # requests turns a read timeout while the *body* streams in into a ConnectionError.
    return bool(exc.args) and isinstance(exc.args[0], ReadTimeoutError)


def _read_body(response: requests.Response, limit: int) -> tuple[bytes | None, str | None]:
    """The decoded body, or None and why: never more than ``limit`` bytes, compressed or not."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        return None, f"answer of {int(declared)} bytes is over the {limit}-byte limit"
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    try:
        # urllib3 (>= 2.6) decompresses into at most one chunk at a time: a gzip bomb cannot grow past it.
        for chunk in raw.stream(_CHUNK, decode_content=True):
            size += len(chunk)
            if size > limit or raw.tell() > limit:
                return None, f"answer over the {limit}-byte limit"
            chunks.append(chunk)
    except urllib3.exceptions.DecodeError as exc:
        return None, f"answer body cannot be decoded ({type(exc).__name__})"
    return b"".join(chunks), None


# ----------------------------------------------------------------------------- interpretation
def answer_code(body: Any) -> int | None:
    """The integer ``code`` of a provider's JSON answer (numeric strings accepted), else None."""
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, str) and re.fullmatch(r"-?[0-9]{1,9}", code.strip()):
        return int(code.strip())
    if isinstance(code, int) and not isinstance(code, bool) and abs(code) < 10**9:
        return code
    return None


class UnusableAnswer(ValueError):
    """A (billed) answer whose content is not what the provider documents."""


class HttpRecognizer:
    """One paid upstream over HTTP: a subclass says how to ask and how to read a success."""

    name: str
    kind: str
    success_code: int

    def __init__(
        self,
        url: str,
        api_key: KeySource,
        session: requests.Session,
        timeout: Timeout,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ):
        self.url = url
        self._api_key = api_key
        self._session = session
        self.timeout = timeout
        self.limits = UpstreamLimits.of(timeout, deadline_s=deadline_s, max_answer_bytes=max_answer_bytes)

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(url={self.url!r}, timeout={self.timeout!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpRecognizer:
        """The recogniser as configured, on the process-wide pooled session."""
        config = settings.provider(cls.name)
        if not config.url:
            raise ConfigurationError(f"{config.settings_name}_URL is empty")
        return cls(
            config.url,
            api_key_source(cls.name, settings),
            shared_session(),
            (settings.connect_timeout_s, settings.read_timeout_s),
            deadline_s=settings.call_deadline_s,
            max_answer_bytes=settings.max_answer_bytes,
        )

    def request(self, api_key: str, image: bytes) -> dict[str, Any]:
        """The keyword arguments of the POST (body and headers)."""
        raise NotImplementedError

    def payload(self, body: dict[str, Any]) -> Any:
        """The result of a success answer; raises UnusableAnswer when it is not of a documented shape."""
        raise NotImplementedError

    def recognize(self, image: bytes) -> ProviderAnswer:
        return self.prepare(image)()

    def prepare(self, image: bytes) -> Callable[[], ProviderAnswer]:
        """The call with its key read and its body built (base64, form or JSON: tens of ms for a large
        photo): after a rate slot only the sending is left. Retries send the same body again."""
        key = self._api_key()
        request = self.request(key, image)

        def send() -> ProviderAnswer:
            answer = post(self._session, self.url, provider=self.name, limits=self.limits, **request)
            return self.interpret(answer, secrets=(key,))

        return send

    def interpret(self, answer: HttpAnswer, *, secrets: tuple[str, ...] = ()) -> ProviderAnswer:
        """Classify an answer: an error code raises; anything that may have been billed is returned."""
        body = answer.json()
        code = answer_code(body)
        if code is not None and code != self.success_code:
            # A documented code keeps the documented message; only an undocumented one borrows the upstream's text.
            message = None if is_documented(self.name, code) else safe_message(body.get("msg"), secrets=secrets)
            raise UpstreamError(self.name, code, message)
        if code is None and not answer.ok:
            raise _http_failure(self.name, answer)
        # From here the provider billed the call (its success code) or may have (a 2xx answer):
        # the answer is kept as paid whatever it holds, and never asked for again.
        try:
            if answer.body is None:
                raise UnusableAnswer(answer.problem or "no body")
            if not isinstance(body, dict):
                raise UnusableAnswer(
                    f"HTTP {answer.status} with a {len(answer.body)}-byte body that is not a JSON object"
                )
            if code is None:
                raise UnusableAnswer(f"HTTP {answer.status} JSON answer without a usable code")
            if not answer.ok:
                raise UnusableAnswer(f"success code {code} with HTTP {answer.status}")
            payload = self.payload(body)
        except UnusableAnswer as exc:
            return ProviderAnswer(self.name, payload=_excerpt(answer, body), unusable=cut_text(str(exc), 200))
        request_id = body.get("request_id")
        return ProviderAnswer(
            provider=self.name,
            payload=within_budget(payload, PAID_ANSWER_BUDGET_BYTES),
            request_id=request_id if isinstance(request_id, str) else None,
        )


def _excerpt(answer: HttpAnswer, body: Any) -> dict[str, Any]:
    """What an operator gets to see of an unusable answer: bounded, never the whole of a huge body."""
    if body is not None:
        kept: Any = body
    elif answer.body is not None:
        kept = answer.body[:2048].decode("utf-8", errors="replace")
    else:
        kept = None
    return {"http_status": answer.status, "body": within_budget(kept, 16_384)}


def _http_failure(provider: str, answer: HttpAnswer) -> PipelineError:
    """A non-2xx answer without a provider code: the transport's status decides."""
    size = "an unread" if answer.body is None else f"a {len(answer.body)}-byte"
    detail = f"HTTP {answer.status} with {size} body and no code"
    if answer.status == 429:
        return PipelineError(provider, "UPSTREAM_RATE_LIMITED", detail)
    if answer.status >= 500:
        return PipelineError(provider, "UPSTREAM_UNAVAILABLE", detail)
    return PipelineError(provider, "UPSTREAM_HTTP_ERROR", detail)
