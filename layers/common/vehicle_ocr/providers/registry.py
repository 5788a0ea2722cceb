"""What a provider is, as one declaration: the registry settings, the factory and the code table loop over.

A provider recognises one kind (the offline engine ``local`` has one spec per kind).  Its
spec names the settings it reads (``<SETTINGS_NAME>_URL``, ``_KEY``, ``_KEY_PARAMETER``,
``_REQUESTS_PER_SECOND``), its documented codes, and a factory that builds its recogniser
once per process from the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vehicle_ocr.codes import CodeRow, register_codes
from vehicle_ocr.errors import ConfigurationError

if TYPE_CHECKING:
    from vehicle_ocr.providers.base import Recognizer
    from vehicle_ocr.settings import Settings


@dataclass(frozen=True)
class ProviderSpec:
    """One provider, declared once: its kind, settings, key, rate, codes and how to build it."""

    name: str  # "tianapi": a record's ``provider``
    kind: str  # the kind it recognises
    factory: Callable[[Settings], Recognizer]
    settings_name: str | None = None  # "TIANAPI": where its URL, key and rate are read; None: no settings
    default_url: str | None = None
    default_rps: float | None = None  # its documented rate limit (None: not paced)
    needs_key: bool = False
    key_parameter: str | None = None  # the template parameter naming its SSM SecureString
    codes: tuple[CodeRow, ...] = ()  # its documented codes
    paid: bool = False  # each call costs money: never sent an image another provider could not read


_PROVIDERS: dict[tuple[str, str], ProviderSpec] = {}


def register_provider(spec: ProviderSpec) -> ProviderSpec:
    """Add a provider (its module calls this at import); its codes join the code table."""
    _PROVIDERS[(spec.kind, spec.name)] = spec
    if spec.codes:
        register_codes(spec.name, spec.codes)
    return spec


def unregister_provider(kind: str, name: str) -> None:
    _PROVIDERS.pop((kind, name), None)


def provider_spec(kind: str, name: str) -> ProviderSpec:
    try:
        return _PROVIDERS[(kind, name)]
    except KeyError:
        known = ", ".join(spec.name for spec in providers_for(kind)) or "none"
        raise ConfigurationError(f"unknown provider {name!r} for kind {kind!r}; known: {known}") from None


def providers_for(kind: str) -> tuple[ProviderSpec, ...]:
    return tuple(spec for (spec_kind, _), spec in _PROVIDERS.items() if spec_kind == kind)


def all_providers() -> tuple[ProviderSpec, ...]:
    return tuple(_PROVIDERS.values())
