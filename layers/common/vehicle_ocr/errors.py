"""Typed failures.  Each carries what a FAILED record and a failure message need."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from vehicle_ocr.codes import PIPELINE, Action, lookup

if TYPE_CHECKING:
    from vehicle_ocr.shapes import RecordError


class RecognitionError(Exception):
    """An upload that cannot produce a result: ends as a FAILED record plus one failure message."""

    source: ClassVar[Literal["upstream", "pipeline"]] = "pipeline"

    def __init__(self, provider: str, code: str | int, message: str | None = None, *, retryable: bool | None = None):
        info = lookup(self.table_provider(provider), code)
        self.provider = provider
        self.code = str(code)
        self.message = message or info.message
        self.retryable = info.retryable if retryable is None else retryable
        self.action: Action = info.action
        self.attempts = 1  # upstream calls made before giving up; the pipeline updates it
        # The request reached the upstream but no answer came back (timeout, dropped connection):
        # the provider may have billed it.  Such calls are retried at most UPSTREAM_TIMEOUT_RETRIES times.
        self.possibly_billed = False
        super().__init__(f"{provider} {self.code}: {self.message}")

    @staticmethod
    def table_provider(provider: str) -> str:
        return provider

    def as_error(self) -> RecordError:
        """The ``error`` object of docs/contract.md's record and failure message."""
        return {
            "code": self.code,
            "source": self.source,
            "provider": self.provider,
            "message": self.message,
            "retryable": self.retryable,
        }


class UpstreamError(RecognitionError):
    """The provider answered with one of its own error codes."""

    source: ClassVar[Literal["upstream", "pipeline"]] = "upstream"


class PipelineError(RecognitionError):
    """Something the pipeline detected itself: bad image, unroutable key, transport failure.

    ``provider`` names the provider involved (for transport failures) or ``pipeline``.
    """

    @staticmethod
    def table_provider(provider: str) -> str:
        return PIPELINE


class ConfigurationError(RuntimeError):
    """Raised at cold start when a setting is missing or invalid; names what is wrong."""
