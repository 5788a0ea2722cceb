"""What a document kind is, as one declaration, and the registry every other module loops over.

A kind says where its objects are uploaded (a key prefix, set by ``<NAME>_PREFIX``), which
providers recognise it by default (``<NAME>_PROVIDERS``), and how its answers become a
record: the record field holding the result, how to normalise a provider's answer into
it, what a success event says about it, which plate numbers it names (for the plate
index) and which other values are indexed (a VIN).  Nothing outside the kinds' own
modules branches on a kind's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vehicle_ocr.errors import ConfigurationError

if TYPE_CHECKING:
    from vehicle_ocr.providers.base import ProviderAnswer

# A normaliser returns the record's result and what it had to cut (None when nothing was).
Normalizer = Callable[["ProviderAnswer"], tuple[Any, dict[str, int] | None]]


@dataclass(frozen=True)
class KindSpec:
    """One document kind, declared once: its prefix, record field, event, normaliser and indexes."""

    name: str  # "plate": the record's ``kind``
    settings_name: str  # "PLATE": PLATE_PREFIX, PLATE_PROVIDERS (and the one-provider PLATE_PROVIDER)
    default_prefix: str  # "plates/"
    default_providers: tuple[str, ...]  # ("tianapi",)
    record_field: str  # "plates": where a SUCCEEDED record holds the result
    detail_type: str  # "Plate Recognized": the success event's detail-type
    normalize: Normalizer
    event_detail: Callable[[Any], dict[str, Any]]  # identifiers only: never personal data
    plate_numbers: Callable[[Any], list[str]] = lambda result: []
    # Attributes the results table indexes for this kind (its GSIs, e.g. "vin"), and their values.
    index_attributes: tuple[str, ...] = ()
    index_values: Callable[[Any], dict[str, str | None]] = field(default=lambda result: {})
    # One line for a listing (the CLI's tables): identifiers only, never personal data.
    summary: Callable[[Any], str] = field(default=lambda result: "")
    # Fields of the result that name a person: kept behind the IAM-authenticated API, left out of listings.
    personal_fields: tuple[str, ...] = ()
    # A record names one vehicle by all its identifiers (a licence: plate number and VIN), so erasing
    # what one of them names also erases what the others name; a street photo's plates are strangers.
    one_vehicle_per_record: bool = False


_KINDS: dict[str, KindSpec] = {}


def register_kind(spec: KindSpec) -> KindSpec:
    """Add a kind (its module calls this at import).  Registering a name twice replaces it."""
    _KINDS[spec.name] = spec
    return spec


def unregister_kind(name: str) -> None:
    _KINDS.pop(name, None)


def kind_spec(name: str) -> KindSpec:
    try:
        return _KINDS[name]
    except KeyError:
        raise ConfigurationError(f"unknown kind {name!r}; known kinds: {', '.join(_KINDS) or 'none'}") from None


def all_kinds() -> tuple[KindSpec, ...]:
    return tuple(_KINDS.values())
