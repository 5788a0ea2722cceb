"""Recognisers, one per kind, chosen by settings.

``build_recognizers(settings)`` returns ``{"plate": ..., "vehicle_license": ...}``.  The
upstream providers share one pooled HTTP session per process.  ``local`` uses the
optional offline engine (package ``vehicle_ocr_local``); when it is not installed the
recogniser still exists and fails every upload with ``PROVIDER_NOT_AVAILABLE``, so each
upload ends with a clear FAILED record instead of a crash at cold start.
"""

from __future__ import annotations

import importlib

import requests

from vehicle_ocr.errors import ConfigurationError, PipelineError
from vehicle_ocr.keys import api_key_source
from vehicle_ocr.providers.apizero import ApizeroVehicleLicenseRecognizer
from vehicle_ocr.providers.base import ProviderAnswer, Recognizer
from vehicle_ocr.providers.http import shared_session
from vehicle_ocr.providers.tianapi import TianapiPlateRecognizer
from vehicle_ocr.settings import Settings

__all__ = [
    "ApizeroVehicleLicenseRecognizer",
    "ProviderAnswer",
    "Recognizer",
    "TianapiPlateRecognizer",
    "UnavailableRecognizer",
    "build_recognizers",
]

LOCAL_ENGINE_MODULE = "vehicle_ocr_local.engine"
LOCAL_NOT_INSTALLED = "offline engine not installed: pip install 'vehicle-ocr[local]'"
_LOCAL_CLASSES = {"plate": "LocalPlateRecognizer", "vehicle_license": "LocalVehicleLicenseRecognizer"}


class UnavailableRecognizer:
    """Stands in for a provider that is not installed; every call fails with PROVIDER_NOT_AVAILABLE."""

    def __init__(self, name: str, kind: str, message: str, cause: BaseException | None = None):
        self.name = name
        self.kind = kind
        self.message = message
        self._cause = cause

    def __repr__(self) -> str:
        return f"UnavailableRecognizer(name={self.name!r}, kind={self.kind!r})"

    def recognize(self, image: bytes) -> ProviderAnswer:
        raise PipelineError(self.name, "PROVIDER_NOT_AVAILABLE", self.message) from self._cause


def _local(kind: str) -> Recognizer:
    try:
        engine = importlib.import_module(LOCAL_ENGINE_MODULE)
    except ImportError as exc:
        return UnavailableRecognizer("local", kind, LOCAL_NOT_INSTALLED, exc)
    return getattr(engine, _LOCAL_CLASSES[kind])()


def build_recognizers(settings: Settings, session: requests.Session | None = None) -> dict[str, Recognizer]:
    """One recogniser per kind (``"plate"``, ``"vehicle_license"``) as configured.

    ``session`` defaults to the process-wide pooled session.  Raises
    :class:`ConfigurationError` for an unknown provider or a provider without a key.
    """
    timeout = (settings.connect_timeout_s, settings.read_timeout_s)
    bounds = {"deadline_s": settings.call_deadline_s, "max_answer_bytes": settings.max_answer_bytes}
    recognizers: dict[str, Recognizer] = {}

    if settings.plate_provider == "tianapi":
        recognizers["plate"] = TianapiPlateRecognizer(
            settings.tianapi_url, api_key_source("tianapi", settings), session or shared_session(), timeout, **bounds
        )
    elif settings.plate_provider == "local":
        recognizers["plate"] = _local("plate")
    else:
        raise ConfigurationError(f"PLATE_PROVIDER must be tianapi or local, got {settings.plate_provider!r}")

    if settings.license_provider == "apizero":
        recognizers["vehicle_license"] = ApizeroVehicleLicenseRecognizer(
            settings.apizero_url, api_key_source("apizero", settings), session or shared_session(), timeout, **bounds
        )
    elif settings.license_provider == "local":
        recognizers["vehicle_license"] = _local("vehicle_license")
    else:
        raise ConfigurationError(f"LICENSE_PROVIDER must be apizero or local, got {settings.license_provider!r}")

    return recognizers
