"""Which recogniser an object goes to, decided by its key prefix."""

from __future__ import annotations

from vehicle_ocr.errors import PipelineError
from vehicle_ocr.settings import Settings
from vehicle_ocr.shapes import PLATE, VEHICLE_LICENSE


def route(key: str, settings: Settings) -> str:
    """Return the kind for ``key`` or raise ``UNROUTABLE``.

    The longest matching prefix wins so that nested prefixes (``a/`` and ``a/b/``) stay unambiguous.
    """
    prefixes = {settings.plate_prefix: PLATE, settings.license_prefix: VEHICLE_LICENSE}
    matches = [prefix for prefix in prefixes if key.startswith(prefix)]
    if not matches:
        raise PipelineError(
            "pipeline",
            "UNROUTABLE",
            f"key matches neither {settings.plate_prefix!r} nor {settings.license_prefix!r}",
        )
    return prefixes[max(matches, key=len)]
