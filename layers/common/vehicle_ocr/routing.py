"""Which kind an object is, decided by its key prefix."""

from __future__ import annotations

from vehicle_ocr.errors import PipelineError
from vehicle_ocr.settings import Settings


def route(key: str, settings: Settings) -> str:
    """Return the kind for ``key`` or raise ``UNROUTABLE``.

    The longest matching prefix wins so that nested prefixes (``a/`` and ``a/b/``) stay unambiguous.
    """
    matches = [(prefix, kind) for kind, prefix in settings.prefixes.items() if key.startswith(prefix)]
    if not matches:
        known = " or ".join(repr(prefix) for prefix in settings.prefixes.values())
        raise PipelineError("pipeline", "UNROUTABLE", f"key matches none of the prefixes {known}")
    return max(matches, key=lambda match: len(match[0]))[1]
