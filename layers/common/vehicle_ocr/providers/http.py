"""Shared HTTP transport for the paid upstream APIs.

Every upstream call costs money, so the transport never repeats a request that may have
reached the server: urllib3 only retries failures to *establish* a connection (refused,
DNS, connect timeout).  Read errors, dropped connections after the request was sent and
HTTP status codes are never retried here; retrying a whole upload is the pipeline's
decision, driven by the ``retryable`` flag of the error it gets.

Transport failures become :class:`PipelineError` with the pipeline codes of
``vehicle_ocr.codes``.  Messages name the provider, the HTTP status and the body size;
never the URL query, the key, the body or the image.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from vehicle_ocr.errors import PipelineError

Timeout = float | tuple[float, float]

USER_AGENT = "vehicle-ocr/0.1"
CONNECT_RETRIES = 2
POOL_MAXSIZE = 16

_shared_session: requests.Session | None = None
_shared_lock = threading.Lock()


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


def new_session(*, pool_maxsize: int = POOL_MAXSIZE, connect_retries: int = CONNECT_RETRIES) -> requests.Session:
    """A new pooled session for the upstream APIs.  Create one per process and reuse it."""
    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=4,
        pool_maxsize=pool_maxsize,
        max_retries=connect_only_retry(connect_retries),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def shared_session() -> requests.Session:
    """The process-wide session (created on first use, reused by every warm invocation)."""
    global _shared_session
    if _shared_session is None:
        with _shared_lock:
            if _shared_session is None:
                _shared_session = new_session()
    return _shared_session


def _describe_timeout(timeout: Timeout) -> tuple[float, float]:
    if isinstance(timeout, tuple):
        return timeout[0], timeout[1]
    return timeout, timeout


def _is_read_timeout(exc: requests.ConnectionError) -> bool:
    # requests turns a read timeout while the *body* streams in into a ConnectionError.
    return bool(exc.args) and isinstance(exc.args[0], ReadTimeoutError)


def post_json_answer(
    session: requests.Session,
    url: str,
    *,
    provider: str,
    timeout: Timeout,
    **request_kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    """POST once and return ``(http_status, body)`` when the body is a JSON object.

    A JSON object carrying ``code`` is returned whatever the HTTP status (apizero sends
    its error codes with 4xx/5xx); so is any JSON object with a 2xx status (the caller
    validates it).  Everything else raises :class:`PipelineError` naming ``provider``:

    - timeout (connect or read) → ``UPSTREAM_TIMEOUT``
    - connection refused / reset / closed, broken body → ``UPSTREAM_UNAVAILABLE``
    - no usable JSON: HTTP 429 → ``UPSTREAM_RATE_LIMITED``, 5xx → ``UPSTREAM_UNAVAILABLE``,
      other non-2xx → ``UPSTREAM_HTTP_ERROR``, 2xx → ``UPSTREAM_BAD_RESPONSE``
    - malformed URL → ``CONFIGURATION_ERROR``

    Redirects are not followed (a redirected POST would lose its body or leak the key).
    """
    request_kwargs.setdefault("allow_redirects", False)
    connect_s, read_s = _describe_timeout(timeout)
    try:
        response = session.post(url, timeout=timeout, **request_kwargs)
    except requests.ConnectTimeout as exc:
        raise PipelineError(provider, "UPSTREAM_TIMEOUT", f"could not connect within {connect_s:g}s") from exc
    except requests.Timeout as exc:
        raise PipelineError(provider, "UPSTREAM_TIMEOUT", f"no answer within {read_s:g}s") from exc
    except (
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
        requests.exceptions.InvalidURL,
    ) as exc:
        raise PipelineError(provider, "CONFIGURATION_ERROR", "the configured URL is not a valid http(s) URL") from exc
    except requests.ConnectionError as exc:
        if _is_read_timeout(exc):
            raise PipelineError(provider, "UPSTREAM_TIMEOUT", f"answer stalled for more than {read_s:g}s") from exc
        raise PipelineError(
            provider,
            "UPSTREAM_UNAVAILABLE",
            f"connection failed or was closed without an answer ({type(exc).__name__})",
        ) from exc
    except requests.exceptions.ChunkedEncodingError as exc:
        raise PipelineError(
            provider, "UPSTREAM_UNAVAILABLE", "connection broke while the answer was being read"
        ) from exc
    except requests.RequestException as exc:  # TooManyRedirects, ContentDecodingError, ...
        raise PipelineError(provider, "UPSTREAM_BAD_RESPONSE", f"unusable answer ({type(exc).__name__})") from exc

    status = response.status_code
    content = response.content
    try:
        body = json.loads(content)
    except (ValueError, RecursionError) as exc:
        body = None
        cause: Exception | None = exc
    else:
        cause = None

    if isinstance(body, dict) and ("code" in body or 200 <= status < 300):
        return status, body

    what = "JSON without a code" if isinstance(body, dict) else ("non-object JSON" if cause is None else "non-JSON")
    detail = f"HTTP {status} with a {len(content)}-byte {what} body"
    if status == 429:
        code = "UPSTREAM_RATE_LIMITED"
    elif status >= 500:
        code = "UPSTREAM_UNAVAILABLE"
    elif not 200 <= status < 300:
        code = "UPSTREAM_HTTP_ERROR"
    else:
        code = "UPSTREAM_BAD_RESPONSE"
    error = PipelineError(provider, code, detail)
    if cause is not None:
        raise error from cause
    raise error


def answer_code(body: dict[str, Any], *, provider: str, status: int) -> int:
    """The integer ``code`` of a provider's JSON answer (numeric strings accepted)."""
    code = body.get("code")
    if isinstance(code, str) and re.fullmatch(r"-?[0-9]{1,9}", code.strip()):
        return int(code.strip())
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    shown = "no code" if code is None else f"a {type(code).__name__} code"
    raise PipelineError(provider, "UPSTREAM_BAD_RESPONSE", f"HTTP {status} JSON answer with {shown}")


def answer_message(body: dict[str, Any], limit: int = 200) -> str | None:
    """The provider's own ``msg``, if it sent a usable one (shortened; never the body itself)."""
    message = body.get("msg")
    if isinstance(message, str) and message.strip():
        return message.strip()[:limit]
    return None
