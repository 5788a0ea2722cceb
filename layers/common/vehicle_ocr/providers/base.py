"""What every recogniser looks like to the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# Keys are fetched through a callable so they are read lazily (SSM, cached) and never stored on objects
# that might be logged.
KeySource = Callable[[], str]


@dataclass(frozen=True)
class ProviderAnswer:
    """A successful upstream answer, before normalisation.

    ``payload`` is the provider's own result: for tianapi a list of raw plate dicts (the
    three documented ``result`` shapes flattened), for apizero the ``data`` object.
    """

    provider: str
    payload: Any
    request_id: str | None = None


class Recognizer(Protocol):
    name: str  # "tianapi", "apizero", "local"
    kind: str  # "plate" or "vehicle_license"

    def recognize(self, image: bytes) -> ProviderAnswer:
        """Recognise one image; raise UpstreamError / PipelineError on failure."""
        ...
