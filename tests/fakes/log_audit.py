"""A pytest plugin that reads every log line of the whole suite for personal data and secrets.

Every record any logger emits during the run (Powertools' JSON lines included, with their
extra fields and exception text) is rendered and kept. When the session ends, the run fails
if any of them holds an owner name or address from the test data, an API key, or base64
image data. Tests can add what they planted with ``register_secret``.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Base64 of the first bytes of a JPEG, PNG, GIF and WebP: any encoded image data starts so.
IMAGE_BASE64_MARKERS = ("/9j/4", "iVBORw0KGgo", "R0lGODlh", "R0lGODdh", "UklGR")
_STANDARD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

_lines: list[str] = []
_secrets: dict[str, str] = {}  # secret → what it is
_lock = threading.Lock()
_original_handle = logging.Logger.handle


def register_secret(value: str, what: str) -> None:
    if value:
        _secrets[value] = what


def _render(record: logging.LogRecord) -> str:
    extras = {name: value for name, value in record.__dict__.items() if name not in _STANDARD_ATTRIBUTES}
    text = (
        f"{record.name} {record.levelname} {record.getMessage()} {json.dumps(extras, default=str, ensure_ascii=False)}"
    )
    if record.exc_info:
        text += " " + logging.Formatter().formatException(record.exc_info)
    return text


def _auditing_handle(self: logging.Logger, record: logging.LogRecord) -> Any:
    try:
        rendered = _render(record)
    except Exception as exc:
        rendered = f"<unrenderable record from {record.name}: {exc!r}>"
    with _lock:
        _lines.append(rendered)
    return _original_handle(self, record)


def _known_secrets() -> None:
    from tests.fakes.fixtures import APIZERO_TEST_KEY, TIANAPI_TEST_KEY
    from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE

    register_secret(TIANAPI_TEST_KEY, "tianapi API key")
    register_secret(APIZERO_TEST_KEY, "apizero API key")
    register_secret(DEFAULT_VEHICLE_LICENSE["owner"], "owner name")
    register_secret(DEFAULT_VEHICLE_LICENSE["address"], "owner address")
    truth = ROOT / "samples" / "ground_truth.json"
    if truth.exists():
        for entry in json.loads(truth.read_text(encoding="utf-8")).values():
            fields = entry.get("fields", {})
            register_secret(fields.get("owner", ""), "owner name (samples)")
            register_secret(fields.get("address", ""), "owner address (samples)")


def violations() -> list[str]:
    found = []
    with _lock:
        lines = list(_lines)
    for line in lines:
        for secret, what in _secrets.items():
            if secret in line:
                found.append(f"{what}: {line[:300]}")
        for marker in IMAGE_BASE64_MARKERS:
            if marker in line:
                found.append(f"base64 image data: {line[:300]}")
    return found


def lines_seen() -> int:
    with _lock:
        return len(_lines)


def pytest_configure(config: pytest.Config) -> None:
    logging.Logger.handle = _auditing_handle  # type: ignore[method-assign]
    _known_secrets()


# Under pytest-xdist the tests run in worker processes: each audits its own lines and hands the result
# to the controller (``workeroutput``), which judges the whole run and reports it.
_from_workers: list[dict[str, Any]] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    audit = getattr(node, "workeroutput", {}).get("log_audit")
    if audit is not None:
        _from_workers.append(audit)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = violations()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a worker: the controller judges
        workeroutput["log_audit"] = {"lines": lines_seen(), "found": found[:50], "count": len(found)}
        return
    found += [line for audit in _from_workers for line in audit["found"]]
    if found:
        session.config._log_audit_findings = found  # type: ignore[attr-defined]
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    found = getattr(config, "_log_audit_findings", [])
    count = len(found) + sum(audit["count"] - len(audit["found"]) for audit in _from_workers)
    seen = lines_seen() + sum(audit["lines"] for audit in _from_workers)
    terminalreporter.section("log audit")
    if found:
        terminalreporter.write_line(f"FAILED: {count} log lines carry personal data or secrets:", red=True)
        for line in found[:20]:
            terminalreporter.write_line(f"  {line}")
    else:
        terminalreporter.write_line(f"{seen} log lines, none with an owner, address, API key or base64 image data")
