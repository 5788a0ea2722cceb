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
    """An upstream answer that was (or may have been) paid for, before normalisation.

    ``payload`` is the provider's own result: for tianapi a list of raw plate dicts (the
    three documented ``result`` shapes flattened), for apizero the ``data`` object.
    """

    provider: str
    payload: Any
    request_id: str | None = None
    # Set when the provider billed (or may have billed) an answer we cannot use: why.  The answer is
    # kept as paid all the same, so the image is never paid for again; ``payload`` is then a bounded
    # excerpt for the operator.
    unusable: str | None = None


class Recognizer(Protocol):
    name: str  # "tianapi", "apizero", "local"
    kind: str  # "plate" or "vehicle_license"

    def recognize(self, image: bytes) -> ProviderAnswer:
        """Recognise one image; raise UpstreamError / PipelineError on failure."""
        ...


PreparedCall = Callable[[], ProviderAnswer]


def prepared_call(recognizer: Recognizer, image: bytes) -> PreparedCall:
    """The recognition of ``image``, ready to go: a recogniser with ``prepare(image)`` (the paid HTTP ones)
    builds its request there, so that after a rate-limit slot only the sending is left (a request built
    after the slot reaches the provider later than the slot says, closer to the next one)."""
    prepare: Callable[[bytes], PreparedCall] | None = getattr(recognizer, "prepare", None)
    if prepare is not None:
        return prepare(image)
    return lambda: recognizer.recognize(image)
