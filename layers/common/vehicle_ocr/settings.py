"""Settings, read and validated once at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from vehicle_ocr.errors import ConfigurationError

PLATE_PROVIDERS = ("tianapi", "local")
LICENSE_PROVIDERS = ("apizero", "local")

DEFAULT_TIANAPI_URL = "https://apis.tianapi.com/licenseplate/index"
DEFAULT_APIZERO_URL = "https://v1.apizero.cn/api/ocr-vehicle-license"


@dataclass(frozen=True)
class Settings:
    results_table: str
    failure_queue_url: str
    event_bus_name: str
    plate_prefix: str = "plates/"
    license_prefix: str = "vehicle-licenses/"
    plate_provider: str = "tianapi"
    license_provider: str = "apizero"
    tianapi_url: str = DEFAULT_TIANAPI_URL
    apizero_url: str = DEFAULT_APIZERO_URL
    # Locally the keys come straight from the environment; in AWS from SSM SecureStrings.
    tianapi_key: str | None = None
    apizero_key: str | None = None
    tianapi_key_parameter: str | None = None
    apizero_key_parameter: str | None = None
    max_image_bytes: int = 10 * 1024 * 1024
    connect_timeout_s: float = 3.05
    read_timeout_s: float = 20.0
    # Transient upstream failures are retried inside the invocation, with exponential backoff.
    max_attempts: int = 3
    retry_base_delay_s: float = 0.5
    # A call that reached the upstream and got no answer (timeout, dropped connection) may have been
    # billed: it is tried again at most this many times per upload, across Lambda's retries too.
    timeout_retries: int = 1
    # One call, connect to last byte, and the largest answer read (compressed or decompressed).
    call_deadline_s: float = 30.0
    max_answer_bytes: int = 4 * 1024 * 1024
    # Events from any other bucket are refused (None: not checked, e.g. tests that drive the pipeline directly).
    images_bucket: str | None = None
    # ...then by Lambda: an upload still failing transiently on its last asynchronous attempt ends FAILED.
    async_attempts: int = 3
    # Paid answers, stored by Powertools idempotency before anything else happens (None: not stored).
    idempotency_table: str | None = None
    content_dedupe: bool = True  # identical image bytes reuse a stored answer instead of paying again
    content_dedupe_ttl_s: int = 30 * 24 * 3600
    # Requests per second each provider allows across the fleet, and how many instances share it.
    tianapi_rps: float = 5.0
    apizero_rps: float = 2.0
    pacing_instances: int = 1
    upstream_max_image_bytes: int = 3 * 1024 * 1024  # tianapi: "图片大小不超过3M"

    def __repr__(self) -> str:  # never let a key reach a log line through repr()
        hidden = {"tianapi_key", "apizero_key"}
        fields = ", ".join(
            f"{name}={'***' if name in hidden and value else value!r}" for name, value in self.__dict__.items()
        )
        return f"Settings({fields})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigurationError(f"environment variable {name} is required but not set")
            return value

        def optional(name: str, default: str | None = None) -> str | None:
            value = env.get(name, "").strip()
            return value or default

        def number(name: str, default: float, kind: type = float) -> float:
            raw = optional(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigurationError(f"environment variable {name} must be a number, got {raw!r}") from None
            if value <= 0:
                raise ConfigurationError(f"environment variable {name} must be positive, got {raw!r}")
            return value

        def count(name: str, default: int) -> int:
            raw = optional(name)
            if raw is None:
                return default
            if not raw.isdigit():
                raise ConfigurationError(f"environment variable {name} must be a whole number >= 0, got {raw!r}")
            return int(raw)

        def flag(name: str, default: bool) -> bool:
            raw = optional(name)
            if raw is None:
                return default
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigurationError(f"environment variable {name} must be true or false, got {raw!r}")

        def choice(name: str, allowed: tuple[str, ...]) -> str:
            value = optional(name, allowed[0]).lower()
            if value not in allowed:
                raise ConfigurationError(
                    f"environment variable {name} must be one of {', '.join(allowed)}, got {value!r}"
                )
            return value

        settings = cls(
            results_table=required("RESULTS_TABLE"),
            failure_queue_url=required("FAILURE_QUEUE_URL"),
            event_bus_name=required("EVENT_BUS_NAME"),
            plate_prefix=optional("PLATE_PREFIX", "plates/"),
            license_prefix=optional("LICENSE_PREFIX", "vehicle-licenses/"),
            plate_provider=choice("PLATE_PROVIDER", PLATE_PROVIDERS),
            license_provider=choice("LICENSE_PROVIDER", LICENSE_PROVIDERS),
            tianapi_url=optional("TIANAPI_URL", DEFAULT_TIANAPI_URL),
            apizero_url=optional("APIZERO_URL", DEFAULT_APIZERO_URL),
            tianapi_key=optional("TIANAPI_KEY"),
            apizero_key=optional("APIZERO_KEY"),
            tianapi_key_parameter=optional("TIANAPI_KEY_PARAMETER"),
            apizero_key_parameter=optional("APIZERO_KEY_PARAMETER"),
            max_image_bytes=int(number("MAX_IMAGE_BYTES", 10 * 1024 * 1024, int)),
            connect_timeout_s=number("UPSTREAM_CONNECT_TIMEOUT", 3.05),
            read_timeout_s=number("UPSTREAM_READ_TIMEOUT", 20.0),
            max_attempts=int(number("UPSTREAM_MAX_ATTEMPTS", 3, int)),
            retry_base_delay_s=number("UPSTREAM_RETRY_BASE_DELAY", 0.5),
            timeout_retries=int(count("UPSTREAM_TIMEOUT_RETRIES", 1)),
            call_deadline_s=number("UPSTREAM_CALL_DEADLINE", 30.0),
            max_answer_bytes=int(number("UPSTREAM_MAX_ANSWER_BYTES", 4 * 1024 * 1024, int)),
            images_bucket=optional("IMAGES_BUCKET"),
            async_attempts=int(number("ASYNC_MAX_ATTEMPTS", 3, int)),
            idempotency_table=optional("IDEMPOTENCY_TABLE"),
            content_dedupe=flag("CONTENT_DEDUPE", True),
            content_dedupe_ttl_s=int(number("CONTENT_DEDUPE_TTL_SECONDS", 30 * 24 * 3600, int)),
            tianapi_rps=number("TIANAPI_REQUESTS_PER_SECOND", 5.0),
            apizero_rps=number("APIZERO_REQUESTS_PER_SECOND", 2.0),
            pacing_instances=int(number("PACING_INSTANCES", 1, int)),
            upstream_max_image_bytes=int(number("UPSTREAM_MAX_IMAGE_BYTES", 3 * 1024 * 1024, int)),
        )
        settings._check_consistency()
        return settings

    def requests_per_second(self, provider: str) -> float | None:
        """This instance's share of a provider's rate limit (None: not paced, e.g. the offline engine)."""
        fleet = {"tianapi": self.tianapi_rps, "apizero": self.apizero_rps}.get(provider)
        return None if fleet is None else fleet / self.pacing_instances

    def _check_consistency(self) -> None:
        if self.plate_prefix == self.license_prefix:
            raise ConfigurationError("PLATE_PREFIX and LICENSE_PREFIX must differ")
        if self.plate_provider == "tianapi" and not (self.tianapi_key or self.tianapi_key_parameter):
            raise ConfigurationError("PLATE_PROVIDER=tianapi needs TIANAPI_KEY or TIANAPI_KEY_PARAMETER")
        if self.license_provider == "apizero" and not (self.apizero_key or self.apizero_key_parameter):
            raise ConfigurationError("LICENSE_PROVIDER=apizero needs APIZERO_KEY or APIZERO_KEY_PARAMETER")
