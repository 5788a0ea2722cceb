"""The console's web application (WSGI, werkzeug): one page, its static files, and a small JSON API.

Served by `vehicle-ocr console` and, under ``/console/``, by `vehicle-ocr up` on the query API's port.
Localhost only, whoever serves it:

* a request whose ``Host`` is not a loopback name or address is refused (DNS rebinding: a page
  from elsewhere whose name resolves to 127.0.0.1 must not read the console);
* a request from a non-loopback peer is refused (in case the server was bound wider);
* a request that changes something (POST) must carry ``X-Console: 1`` and, if the browser sends
  an ``Origin``, a loopback one: another site's form or script cannot upload or redrive.
"""

from __future__ import annotations

import ipaddress
import json
import mimetypes
import re
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from vehicle_ocr.queries import InvalidCursor
from vehicle_ocr.usage import InvalidRange, day_range
from vehicle_ocr_local.console.backend import ConsoleBackend, ConsoleError

PREFIX = "/console"
LOCAL_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}
STATUSES = ("SUCCEEDED", "FAILED")
_IMAGE_MAGIC = (
    (b"\xff\xd8", "image/jpeg"),
    (b"\x89PNG", "image/png"),
    (b"BM", "image/bmp"),
    (b"GIF8", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
_RECORD_ID = re.compile(r"^[0-9a-f]{32}$")
_PAGE_SECURITY = {
    # The page loads only its own files: no CDN, no inline script, nothing framed.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Another site cannot even embed a photo (or anything else) of the console in its own page.
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Request(Request):
    max_content_length = 11 * 1024 * 1024  # one photo (backend.MAX_UPLOAD_BYTES) and its form fields


def is_local_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback (any port)."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[: name.find("]") + 1] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_peer(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class ConsoleApp:
    """The WSGI application; ``backend`` is built lazily (the local stack makes its resources first)."""

    def __init__(self, backend: ConsoleBackend | Any):
        self._backend = backend
        self.url_map = Map(
            [
                Rule(f"{PREFIX}/", endpoint="page"),
                Rule(f"{PREFIX}/static/<name>", endpoint="static"),
                Rule(f"{PREFIX}/api/status", endpoint="status"),
                Rule(f"{PREFIX}/api/results", endpoint="results"),
                Rule(f"{PREFIX}/api/results/<record_id>", endpoint="record"),
                Rule(f"{PREFIX}/api/results/<record_id>/photo", endpoint="photo"),
                Rule(f"{PREFIX}/api/object", endpoint="object"),
                Rule(f"{PREFIX}/api/failures", endpoint="failures"),
                Rule(f"{PREFIX}/api/usage", endpoint="usage"),
                Rule(f"{PREFIX}/api/upload", endpoint="upload", methods=["POST"]),
                Rule(f"{PREFIX}/api/redrive", endpoint="redrive", methods=["POST"]),
            ],
            strict_slashes=True,
        )

    @property
    def backend(self) -> ConsoleBackend:
        if callable(self._backend) and not isinstance(self._backend, ConsoleBackend):
            self._backend = self._backend()
        return self._backend

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = _Request(environ)
        return self.respond(request)(environ, start_response)

    def respond(self, request: Request) -> Response:
        if not is_local_host(request.host) or not is_loopback_peer(request.remote_addr):
            return _json({"error": "the console answers on localhost only"}, 403)
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if request.headers.get("X-Console") != "1" or (origin and not is_local_host(origin.split("://", 1)[-1])):
                return _json({"error": "refused: not sent by the console's own page"}, 403)
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
            return getattr(self, f"on_{endpoint}")(request, **values)
        except ConsoleError as error:
            return _json({"error": str(error)}, error.status)
        except InvalidCursor as error:
            return _json({"error": str(error)}, 400)
        except HTTPException as error:
            if error.code == 308:  # /console → /console/
                return error.get_response(request.environ)
            return _json({"error": error.description or error.name}, error.code or 500)

    # -------------------------------------------------------------------------------------- endpoints
    def on_page(self, request: Request) -> Response:
        return self._asset("index.html")

    def on_static(self, request: Request, name: str) -> Response:
        return self._asset(name)

    def on_status(self, request: Request) -> Response:
        backend = self.backend
        return _json({"where": backend.where, "bucket": backend.bucket, "prefixes": dict(backend.prefixes)})

    def on_results(self, request: Request) -> Response:
        args = request.args
        kind = _choice(args.get("kind"), tuple(self.backend.prefixes), "kind")
        status = _choice(args.get("status"), STATUSES, "status")
        try:
            limit = max(1, min(100, int(args.get("limit", "30"))))
        except ValueError:
            raise ConsoleError(400, "limit must be a number") from None
        page = self.backend.listing(
            kind=kind, status=status, plate=(args.get("plate") or "").strip() or None, limit=limit,
            cursor=args.get("cursor") or None,
        )  # fmt: skip
        return _json(page)

    def on_record(self, request: Request, record_id: str) -> Response:
        return _json(self.backend.record(_record_id(record_id)))

    def on_photo(self, request: Request, record_id: str) -> Response:
        data, _ = self.backend.photo(_record_id(record_id))
        # The type comes from the bytes, never from the uploader's Content-Type (an "image" could be HTML or SVG).
        return Response(data, content_type=_sniff(data), headers={**_PAGE_SECURITY, "Cache-Control": "private"})

    def on_failures(self, request: Request) -> Response:
        return _json({"codes": self.backend.failures_by_code()})

    def on_object(self, request: Request) -> Response:
        key = request.args.get("key")
        if not key:
            raise ConsoleError(400, "key is required")
        record = self.backend.latest_for(key)
        return _json({"record": record})

    def on_usage(self, request: Request) -> Response:
        try:
            first, last = day_range(
                request.args.get("from") or None, request.args.get("to") or None, today=datetime.now(UTC).date()
            )
        except InvalidRange as error:
            raise ConsoleError(400, str(error)) from None
        return _json(self.backend.usage(first, last))

    def on_upload(self, request: Request) -> Response:
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise ConsoleError(400, "no file")
        kind = _choice(request.form.get("kind"), tuple(self.backend.prefixes), "kind")
        if kind is None:
            raise ConsoleError(400, "kind is required")
        key = self.backend.upload(kind, upload.filename, upload.read(), upload.mimetype or None)
        return _json({"bucket": self.backend.bucket, "key": key}, 201)

    def on_redrive(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ConsoleError(400, "a JSON body with id or code")
        record_id = body.get("id")
        if record_id is not None:
            record_id = _record_id(str(record_id))
        code = body.get("code")
        report = self.backend.redrive(record_id=record_id, code=str(code) if code is not None else None)
        return _json(
            {
                "redriven": report.redriven,
                "outcomes": report.outcomes,
                "kept": report.kept,
                "in_flight": report.in_flight,
            }
        )

    # -------------------------------------------------------------------------------------- helpers
    def _asset(self, name: str) -> Response:
        files = resources.files("vehicle_ocr_local.console") / "static"
        if "/" in name or name.startswith(".") or not (files / name).is_file():
            raise NotFound()
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        return Response((files / name).read_bytes(), content_type=content_type, headers=_PAGE_SECURITY)


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status=status,
        content_type="application/json; charset=utf-8",
        headers=_PAGE_SECURITY,
    )


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise ConsoleError(400, f"{name} must be one of {', '.join(allowed)}")
    return value


def _record_id(value: str) -> str:
    if not _RECORD_ID.match(value):
        raise ConsoleError(400, "a record id is 32 hexadecimal characters")
    return value


def _sniff(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, content_type in _IMAGE_MAGIC:
        if data.startswith(magic):
            return content_type
    return "application/octet-stream"
