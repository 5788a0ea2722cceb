"""Recognisers: each kind gets the chain of providers its settings name, built once per process.

Importing this package registers the built-in providers (tianapi, apizero, local); their
specs live in their own modules (``vehicle_ocr.providers.registry``).  The HTTP providers
share one pooled session per process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from vehicle_ocr.providers import apizero, local, tianapi
from vehicle_ocr.providers.apizero import ApizeroVehicleLicenseRecognizer
from vehicle_ocr.providers.base import ProviderAnswer, Recognizer
from vehicle_ocr.providers.registry import ProviderSpec, provider_spec, providers_for, register_provider
from vehicle_ocr.providers.tianapi import TianapiPlateRecognizer

if TYPE_CHECKING:  # settings imports this package (through the registry): at run time, a cycle
    from vehicle_ocr.settings import Settings

__all__ = [
    "ApizeroVehicleLicenseRecognizer",
    "ProviderAnswer",
    "ProviderSpec",
    "Recognizer",
    "TianapiPlateRecognizer",
    "apizero",
    "build_recognizers",
    "local",
    "provider_spec",
    "providers_for",
    "register_provider",
    "tianapi",
]


def build_recognizers(settings: Settings, kinds: Iterable[str] | None = None) -> dict[str, tuple[Recognizer, ...]]:
    """Each kind's chain of recognisers (of ``kinds`` only, if given), in the order they are tried.

    Raises :class:`ConfigurationError` (at cold start) for an unknown provider, a provider
    without a key, or ``local`` without the offline engine installed.
    """
    return {
        kind: tuple(provider_spec(kind, name).factory(settings) for name in chain)
        for kind, chain in settings.chains.items()
        if kinds is None or kind in kinds
    }
