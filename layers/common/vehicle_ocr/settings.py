"""Settings, read and validated once at cold start.

What depends on a kind or a provider is read by looping over their registries
(``vehicle_ocr.kinds``, ``vehicle_ocr.providers.registry``): a kind ``K`` reads
``K_PREFIX`` and its chain ``K_PROVIDERS`` (or the one-provider ``K_PROVIDER``); a provider
``P`` reads ``P_URL``, ``P_KEY`` (locally), ``P_KEY_PARAMETER`` (in AWS) and
``P_REQUESTS_PER_SECOND``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from vehicle_ocr.errors import ConfigurationError
from vehicle_ocr.kinds import all_kinds
from vehicle_ocr.providers.registry import all_providers, provider_spec


@dataclass(frozen=True)
class ProviderSettings:
    """One provider's endpoint, key and rate limit."""

    settings_name: str  # "TIANAPI"
    url: str | None = None
    # Locally the key comes straight from the environment; in AWS from an SSM SecureString.
    key: str | None = None
    key_parameter: str | None = None
    requests_per_second: float | None = None  # across the fleet; None: not paced

    def __repr__(self) -> str:  # never let a key reach a log line through repr()
        key = "***" if self.key else None
        return (
            f"ProviderSettings({self.settings_name}, url={self.url!r}, key={key}, "
            f"key_parameter={self.key_parameter!r}, requests_per_second={self.requests_per_second})"
        )


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def default_prefixes() -> Mapping[str, str]:
    return _frozen({kind.name: kind.default_prefix for kind in all_kinds()})


def read_prefixes(env: Mapping[str, str]) -> Mapping[str, str]:
    """Kind -> key prefix as the function reads it: ``<KIND>_PREFIX``, else the kind's default."""
    read = _Reader(env)
    prefixes = {kind.name: read.optional(f"{kind.settings_name}_PREFIX", kind.default_prefix) for kind in all_kinds()}
    return _frozen(prefixes)


def default_chains() -> Mapping[str, tuple[str, ...]]:
    return _frozen({kind.name: kind.default_providers for kind in all_kinds()})


def default_providers() -> Mapping[str, ProviderSettings]:
    return _frozen(
        {
            spec.name: ProviderSettings(spec.settings_name, spec.default_url, requests_per_second=spec.default_rps)
            for spec in _provider_specs()
            if spec.settings_name
        }
    )


def _provider_specs() -> tuple[Any, ...]:
    import vehicle_ocr.providers  # noqa: F401 - registers the built-in providers

    return all_providers()


@dataclass(frozen=True)
class Settings:
    """The function's configuration, read and checked once at cold start (``from_env``)."""

    results_table: str
    failure_queue_url: str
    event_bus_name: str
    prefixes: Mapping[str, str] = field(default_factory=default_prefixes)  # kind → key prefix
    chains: Mapping[str, tuple[str, ...]] = field(default_factory=default_chains)  # kind → providers, in order
    providers: Mapping[str, ProviderSettings] = field(default_factory=default_providers)  # name → its settings
    max_image_bytes: int = 10 * 1024 * 1024
    connect_timeout_s: float = 3.05
    read_timeout_s: float = 20.0
    # Transient upstream failures are retried inside the invocation, with exponential backoff...
    max_attempts: int = 3
    retry_base_delay_s: float = 0.5
    # ...then by Lambda: an upload still failing transiently on its last asynchronous attempt ends FAILED.
    async_attempts: int = 3
    # A call that reached the upstream and got no answer (timeout, dropped connection) may have been
    # billed: it is tried again at most this many times per upload, across Lambda's retries too.
    timeout_retries: int = 1
    # One call, connect to last byte, and the largest answer read (compressed or decompressed).
    call_deadline_s: float = 30.0
    max_answer_bytes: int = 4 * 1024 * 1024
    # Events from any other bucket are refused (None: not checked, e.g. tests that drive the pipeline directly).
    images_bucket: str | None = None
    # Paid answers, stored by Powertools idempotency before anything else happens (None: not stored).
    idempotency_table: str | None = None
    content_dedupe: bool = True  # identical image bytes reuse a stored answer instead of paying again
    content_dedupe_ttl_s: int = 30 * 24 * 3600
    # The fleet-wide rate budget's DynamoDB table (vehicle_ocr.rate_budget); None: this process paces
    # itself to each whole limit (one process is the fleet, e.g. `vehicle-ocr recognize`).
    rate_budget_table: str | None = None
    upstream_max_image_bytes: int = 3 * 1024 * 1024  # tianapi: "图片大小不超过3M"
    # Records (and their plate sightings) expire this many days after they are written (None: kept forever).
    record_retention_days: int | None = None

    def provider(self, name: str) -> ProviderSettings:
        try:
            return self.providers[name]
        except KeyError:
            raise ConfigurationError(f"provider {name!r} has no settings") from None

    def requests_per_second(self, provider: str) -> float | None:
        """A provider's rate limit, across the fleet (None: not paced, e.g. the offline engine)."""
        config = self.providers.get(provider)
        return config.requests_per_second if config else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        read = _Reader(os.environ if env is None else env)
        settings = cls(
            results_table=read.required("RESULTS_TABLE"),
            failure_queue_url=read.required("FAILURE_QUEUE_URL"),
            event_bus_name=read.required("EVENT_BUS_NAME"),
            prefixes=read_prefixes(read.env),
            chains=_frozen({kind.name: read.chain(kind.settings_name, kind.default_providers) for kind in all_kinds()}),
            providers=_frozen(
                {
                    spec.name: ProviderSettings(
                        spec.settings_name,
                        url=read.optional(f"{spec.settings_name}_URL", spec.default_url),
                        key=read.optional(f"{spec.settings_name}_KEY"),
                        key_parameter=read.optional(f"{spec.settings_name}_KEY_PARAMETER"),
                        requests_per_second=read.number(f"{spec.settings_name}_REQUESTS_PER_SECOND", spec.default_rps),
                    )
                    for spec in _provider_specs()
                    if spec.settings_name
                }
            ),
            max_image_bytes=int(read.number("MAX_IMAGE_BYTES", 10 * 1024 * 1024, int)),
            connect_timeout_s=read.number("UPSTREAM_CONNECT_TIMEOUT", 3.05),
            read_timeout_s=read.number("UPSTREAM_READ_TIMEOUT", 20.0),
            max_attempts=int(read.number("UPSTREAM_MAX_ATTEMPTS", 3, int)),
            retry_base_delay_s=read.number("UPSTREAM_RETRY_BASE_DELAY", 0.5),
            async_attempts=int(read.number("ASYNC_MAX_ATTEMPTS", 3, int)),
            timeout_retries=read.count("UPSTREAM_TIMEOUT_RETRIES", 1),
            call_deadline_s=read.number("UPSTREAM_CALL_DEADLINE", 30.0),
            max_answer_bytes=int(read.number("UPSTREAM_MAX_ANSWER_BYTES", 4 * 1024 * 1024, int)),
            images_bucket=read.optional("IMAGES_BUCKET"),
            idempotency_table=read.optional("IDEMPOTENCY_TABLE"),
            content_dedupe=read.flag("CONTENT_DEDUPE", True),
            content_dedupe_ttl_s=int(read.number("CONTENT_DEDUPE_TTL_SECONDS", 30 * 24 * 3600, int)),
            rate_budget_table=read.optional("RATE_BUDGET_TABLE"),
            upstream_max_image_bytes=int(read.number("UPSTREAM_MAX_IMAGE_BYTES", 3 * 1024 * 1024, int)),
            record_retention_days=read.number("RECORD_RETENTION_DAYS", None, int),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Fail loudly, naming the setting, on what would only fail later, upload by upload."""
        kinds = {kind.name: kind for kind in all_kinds()}
        if len(set(self.prefixes.values())) != len(self.prefixes):
            names = ", ".join(f"{kinds[k].settings_name}_PREFIX" if k in kinds else k for k in self.prefixes)
            raise ConfigurationError(f"{names} must differ")
        for kind, chain in self.chains.items():
            if not chain:
                raise ConfigurationError(f"{kinds[kind].settings_name}_PROVIDERS names no provider")
            for name in chain:
                try:
                    spec = provider_spec(kind, name)
                except ConfigurationError as exc:
                    variable = f"{kinds[kind].settings_name}_PROVIDERS" if len(chain) > 1 else ""
                    variable = variable or f"{kinds[kind].settings_name}_PROVIDER"
                    raise ConfigurationError(f"{variable}: {exc}") from None
                config = self.providers.get(name)
                if spec.needs_key and not (config and (config.key or config.key_parameter)):
                    variable = spec.settings_name or name.upper()
                    raise ConfigurationError(
                        f"provider {name} (for {kind}) needs {variable}_KEY or {variable}_KEY_PARAMETER"
                    )


class _Reader:
    """Environment variables, each validated as it is read; errors name the variable."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def optional(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value or default

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigurationError(f"environment variable {name} is required but not set")
        return value

    def number(self, name: str, default: Any, kind: type = float) -> Any:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigurationError(f"environment variable {name} must be a number, got {raw!r}") from None
        if value <= 0:
            raise ConfigurationError(f"environment variable {name} must be positive, got {raw!r}")
        return value

    def count(self, name: str, default: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        if not raw.isdigit():
            raise ConfigurationError(f"environment variable {name} must be a whole number >= 0, got {raw!r}")
        return int(raw)

    def flag(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"environment variable {name} must be true or false, got {raw!r}")

    def chain(self, settings_name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """``<K>_PROVIDERS`` (comma-separated, tried in order), else ``<K>_PROVIDER``, else the kind's default."""
        many, one = self.optional(f"{settings_name}_PROVIDERS"), self.optional(f"{settings_name}_PROVIDER")
        if many is not None:  # the chain is the more specific of the two
            names = _names(many)
            if len(set(names)) != len(names):
                raise ConfigurationError(f"{settings_name}_PROVIDERS names a provider twice: {many!r}")
            return tuple(names)
        return (one.lower(),) if one is not None else default


def _names(text: str) -> list[str]:
    return [name.strip().lower() for name in text.split(",") if name.strip()]
