"""Every outcome code the pipeline can report, in one table.

Upstream codes come from the providers' own documents (transcribed by the fake upstream in
``tests/fakes/upstream.py``, which a test compares with this table); pipeline
codes are ours, upper-case words.  Classification (retryable or not, what the operator
must do) is looked up here and nowhere else, so a new code is one new row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What an operator has to do before a failed upload can succeed."""

    WAIT = "wait"  # transient: retry later, nothing to change
    FIX_CONFIG = "fix_config"  # key, whitelist, subscription or provider setting
    TOP_UP = "top_up"  # quota or balance exhausted
    BAD_IMAGE = "bad_image"  # the picture itself cannot be recognised
    CONTACT_PROVIDER = "contact_provider"  # upstream withdrew or broke the service
    NONE = "none"  # nothing to do: the upload was not meant for us


@dataclass(frozen=True)
class CodeInfo:
    """One row of the code table: what a provider's code means and what the operator does about it."""

    provider: str  # "tianapi", "apizero" or "pipeline"
    code: str
    message: str
    retryable: bool
    action: Action


# One documented code: (code, message, retryable, what the operator does).
CodeRow = tuple[int | str, str, bool, Action]


def _rows(provider: str, rows: Iterable[CodeRow]) -> dict[tuple[str, str], CodeInfo]:
    return {
        (provider, str(code)): CodeInfo(provider, str(code), message, retryable, action)
        for code, message, retryable, action in rows
    }


PIPELINE = "pipeline"

CODES: dict[tuple[str, str], CodeInfo] = {
    # The pipeline's own codes.
    **_rows(
        PIPELINE,
        [
            ("MALFORMED_EVENT", "the S3 event record lacks a bucket or object key", False, Action.NONE),
            ("UNROUTABLE", "object key matches no configured prefix", False, Action.NONE),
            ("UNEXPECTED_BUCKET", "the event names a bucket this deployment does not read", False, Action.NONE),
            ("OBJECT_NOT_FOUND", "object was deleted or replaced before it could be read", False, Action.NONE),
            ("IMAGE_EMPTY", "object is empty", False, Action.BAD_IMAGE),
            ("IMAGE_UNSUPPORTED", "object is not a JPEG, PNG, BMP, WebP, GIF or TIFF image", False, Action.BAD_IMAGE),
            ("IMAGE_CORRUPT", "image data is truncated or corrupt", False, Action.BAD_IMAGE),
            ("IMAGE_TOO_LARGE", "image exceeds the configured maximum size", False, Action.BAD_IMAGE),
            ("NO_PLATE_FOUND", "the recogniser found no licence plate in the image", False, Action.BAD_IMAGE),
            (
                "NO_LICENSE_FOUND",
                "the recogniser found no vehicle-licence fields in the image",
                False,
                Action.BAD_IMAGE,
            ),
            ("UPSTREAM_TIMEOUT", "upstream did not answer in time", True, Action.WAIT),
            (
                "UPSTREAM_UNAVAILABLE",
                "upstream could not be reached or answered with a server error",
                True,
                Action.WAIT,
            ),
            ("UPSTREAM_RATE_LIMITED", "upstream refused the request as too frequent (HTTP 429)", True, Action.WAIT),
            (
                "RATE_BUDGET_UNAVAILABLE",
                "no call to the provider could be scheduled in time (the fleet's rate budget)",
                True,
                Action.WAIT,
            ),
            # Not retryable: such an answer was (or may have been) billed, and asking again would pay again.
            (
                "UPSTREAM_BAD_RESPONSE",
                "upstream answered, and may have billed, something that is not its documented answer",
                False,
                Action.CONTACT_PROVIDER,
            ),
            (
                "UPSTREAM_HTTP_ERROR",
                "upstream refused the request with an HTTP error and no code",
                False,
                Action.FIX_CONFIG,
            ),
            ("CONFIGURATION_ERROR", "the pipeline is misconfigured", False, Action.FIX_CONFIG),
        ],
    ),
}


def register_codes(provider: str, rows: Iterable[CodeRow]) -> None:
    """A provider's documented codes (its spec registers them, see ``vehicle_ocr.providers.registry``)."""
    CODES.update(_rows(provider, rows))


def _load_providers() -> None:
    # The built-in providers register their codes when their package is imported.
    import vehicle_ocr.providers  # noqa: F401


def lookup(provider: str, code: str | int) -> CodeInfo:
    """Classify a code.  An undocumented upstream code is terminal and passed through as it came."""
    _load_providers()
    info = CODES.get((provider, str(code)))
    if info is not None:
        return info
    return CodeInfo(provider, str(code), "undocumented upstream code", False, Action.CONTACT_PROVIDER)


def is_documented(provider: str, code: str | int) -> bool:
    _load_providers()
    return (provider, str(code)) in CODES


def documented(provider: str) -> list[CodeInfo]:
    """Every documented code of one provider (used by tests and the README table)."""
    _load_providers()
    return [info for (p, _), info in CODES.items() if p == provider]
