"""Where the upstream API keys come from.

Locally a key is an environment variable (``<PROVIDER>_KEY``, e.g. ``TIANAPI_KEY``); in AWS it
is an SSM SecureString named by ``<PROVIDER>_KEY_PARAMETER``, read
through Powertools on first use and cached for ``KEY_MAX_AGE_S`` across warm invocations.
A key is returned by a :data:`KeySource` callable each time it is needed: it is never
logged, never kept on an object and never put in a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities import parameters

from vehicle_ocr.errors import ConfigurationError, PipelineError

if TYPE_CHECKING:  # runtime imports would be circular: vehicle_ocr.providers imports this module
    from vehicle_ocr.providers.base import KeySource
    from vehicle_ocr.settings import Settings

KEY_MAX_AGE_S = 300

# SSM / KMS answers that will not change by retrying: someone has to fix the deployment.
_TERMINAL_AWS_ERRORS = frozenset(
    {
        "ParameterNotFound",
        "ParameterVersionNotFound",
        "AccessDeniedException",
        "InvalidKeyId",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "ValidationException",
    }
)


def _aws_error_code(exc: BaseException) -> str | None:
    # Powertools raises GetParameterError inside its ``except``, so the botocore error is the context.
    seen = exc.__cause__ or exc.__context__
    response = getattr(seen, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def api_key_source(provider: str, settings: Settings) -> KeySource:
    """A callable returning ``provider``'s API key (env key if set, else the SSM parameter).

    Raises :class:`ConfigurationError` at once when neither is configured.  The SSM
    parameter is only read when the callable is first called; a failure to read it raises
    ``PipelineError(provider, "CONFIGURATION_ERROR")`` so the upload ends as a FAILED record.
    """
    config = settings.provider(provider)
    env_key, parameter_name, variable = config.key, config.key_parameter, config.settings_name

    if env_key:

        def from_environment() -> str:
            return env_key

        return from_environment

    if not parameter_name:
        raise ConfigurationError(f"{variable}_KEY or {variable}_KEY_PARAMETER must be set to call {provider}")

    def from_ssm() -> str:
        try:
            value = parameters.get_parameter(parameter_name, decrypt=True, max_age=KEY_MAX_AGE_S)
        except parameters.GetParameterError as exc:
            aws_code = _aws_error_code(exc)
            raise PipelineError(
                provider,
                "CONFIGURATION_ERROR",
                f"cannot read the {provider} API key from SSM parameter {parameter_name!r}"
                f" ({aws_code or type(exc).__name__})",
                retryable=aws_code not in _TERMINAL_AWS_ERRORS,
            ) from exc
        if not isinstance(value, str) or not value.strip():
            raise PipelineError(
                provider, "CONFIGURATION_ERROR", f"SSM parameter {parameter_name!r} holds no {provider} API key"
            )
        return value.strip()

    return from_ssm
