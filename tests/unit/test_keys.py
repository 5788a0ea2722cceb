"""API keys: from the environment locally, from SSM SecureStrings (via Powertools, cached) in AWS.

The SSM path runs against a moto server started here and reached over HTTP, the way the
Lambda reaches SSM.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from vehicle_ocr.codes import Action
from vehicle_ocr.errors import ConfigurationError, PipelineError
from vehicle_ocr.providers.keys import KEY_MAX_AGE_S, api_key_source
from vehicle_ocr.settings import ProviderSettings, Settings
from vehicle_ocr_local.emulator import SerializedMotoServer
from vehicle_ocr_local.stack import free_port


def settings(**values: str) -> Settings:
    """Settings with ``tianapi_key``, ``apizero_key_parameter``... given; nothing else configured."""
    providers = {
        name: ProviderSettings(
            name.upper(), key=values.get(f"{name}_key"), key_parameter=values.get(f"{name}_key_parameter")
        )
        for name in ("tianapi", "apizero")
    }
    return Settings(results_table="t", failure_queue_url="q", event_bus_name="b", providers=providers)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server on a free port (port 0 is not supported by every moto version)."""
    port = free_port()
    server = SerializedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """boto3 (and so Powertools) pointed at moto with fake credentials; Powertools caches emptied."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    parameters.clear_caches()
    yield moto_url
    parameters.clear_caches()


@pytest.fixture
def ssm(aws: str):
    return boto3.client("ssm", endpoint_url=aws, region_name="us-east-1")


def new_parameter_name() -> str:
    return f"/vehicle-ocr/test/{uuid.uuid4().hex}/key"


def count_ssm_reads() -> list[str]:
    """Record every GetParameter call the Powertools SSM provider makes from now on."""
    seen: list[str] = []
    client = DEFAULT_PROVIDERS["ssm"].client
    client.meta.events.register("before-call.ssm.GetParameter", lambda params, **_: seen.append(params["Name"]))
    return seen


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize("provider", ["tianapi", "apizero"])
def test_env_key_is_used_without_touching_ssm(aws, provider):
    """Given an env key and also an SSM parameter name that does not exist,
    when the key source is called,
    then the env key comes back and no SSM provider was ever created."""
    source = api_key_source(
        provider, settings(**{f"{provider}_key": "env-secret", f"{provider}_key_parameter": new_parameter_name()})
    )

    assert source() == "env-secret"
    assert "ssm" not in DEFAULT_PROVIDERS


@pytest.mark.parametrize("provider", ["tianapi", "apizero"])
def test_no_key_at_all_names_both_variables(provider):
    """Given neither an env key nor an SSM parameter for `provider`,
    when a key source is asked for,
    then ConfigurationError names both environment variables."""
    with pytest.raises(ConfigurationError) as caught:
        api_key_source(provider, settings())

    upper = provider.upper()
    assert f"{upper}_KEY " in str(caught.value) and f"{upper}_KEY_PARAMETER" in str(caught.value)


def test_unknown_provider_is_a_configuration_error():
    """Given a provider that needs no key,
    when a key source is asked for,
    then ConfigurationError says so."""
    with pytest.raises(ConfigurationError, match="local"):
        api_key_source("local", settings(tianapi_key="k"))


# --------------------------------------------------------------------------- SSM


def test_ssm_securestring_is_read_decrypted(ssm):
    """Given the key only as an SSM SecureString,
    when the key source is called,
    then the decrypted value comes back."""
    name = new_parameter_name()
    ssm.put_parameter(Name=name, Value="ssm-secret", Type="SecureString")

    assert api_key_source("tianapi", settings(tianapi_key_parameter=name))() == "ssm-secret"


def test_ssm_is_read_lazily_on_first_call(ssm):
    """Given a key source built before the parameter exists,
    when the parameter is created and then the source is called,
    then building did not read SSM and the call returns the value."""
    name = new_parameter_name()
    source = api_key_source("apizero", settings(apizero_key_parameter=name))
    assert "ssm" not in DEFAULT_PROVIDERS

    ssm.put_parameter(Name=name, Value="created-later", Type="SecureString")

    assert source() == "created-later"


def test_ssm_value_is_read_once_and_cached(ssm):
    """Given a key read once from SSM,
    when the parameter changes and the source is called again (even a new source, as on a warm start),
    then the cached value is returned without another GetParameter call."""
    name = new_parameter_name()
    ssm.put_parameter(Name=name, Value="first", Type="SecureString")
    config = settings(tianapi_key_parameter=name)
    assert api_key_source("tianapi", config)() == "first"
    reads = count_ssm_reads()

    ssm.put_parameter(Name=name, Value="second", Type="SecureString", Overwrite=True)

    assert api_key_source("tianapi", config)() == "first"
    assert reads == []
    assert KEY_MAX_AGE_S == 300


def test_cache_expiry_reads_the_new_value(ssm):
    """Given a cached key whose parameter changed,
    when the cache is cleared (as max_age expiry would),
    then the next call reads SSM again and returns the new value."""
    name = new_parameter_name()
    ssm.put_parameter(Name=name, Value="old", Type="SecureString")
    source = api_key_source("apizero", settings(apizero_key_parameter=name))
    assert source() == "old"
    ssm.put_parameter(Name=name, Value="new", Type="SecureString", Overwrite=True)

    parameters.clear_caches()

    assert source() == "new"


def test_missing_parameter_is_a_terminal_configuration_error(aws):
    """Given an SSM parameter name that does not exist,
    when the key source is called,
    then PipelineError CONFIGURATION_ERROR names the provider and the parameter, is not retryable,
    and is chained to the Powertools error."""
    name = new_parameter_name()
    source = api_key_source("tianapi", settings(tianapi_key_parameter=name))

    with pytest.raises(PipelineError) as caught:
        source()

    error = caught.value
    assert (error.provider, error.code, error.retryable, error.action) == (
        "tianapi",
        "CONFIGURATION_ERROR",
        False,
        Action.FIX_CONFIG,
    )
    assert name in error.message and "ParameterNotFound" in error.message
    assert isinstance(error.__cause__, parameters.GetParameterError)


def test_unreachable_ssm_is_retryable(aws, monkeypatch):
    """Given SSM cannot be reached at all,
    when the key source is called,
    then the CONFIGURATION_ERROR is marked retryable (nothing is wrong with the parameter itself)."""
    with socket.socket() as holder:  # bound, not listening: connections are refused
        holder.bind(("127.0.0.1", 0))
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{holder.getsockname()[1]}")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        parameters.clear_caches()
        source = api_key_source("tianapi", settings(tianapi_key_parameter=new_parameter_name()))

        with pytest.raises(PipelineError) as caught:
            source()

    assert caught.value.code == "CONFIGURATION_ERROR"
    assert caught.value.retryable is True


def test_key_never_appears_in_errors_or_reprs(ssm):
    """Given a key read from SSM,
    when the source, the settings and a failure for another parameter are turned into text,
    then the key appears in none of them."""
    name = new_parameter_name()
    ssm.put_parameter(Name=name, Value="very-secret-value", Type="SecureString")
    config = settings(tianapi_key_parameter=name, apizero_key="env-secret-value")
    source = api_key_source("tianapi", config)
    assert source() == "very-secret-value"

    with pytest.raises(PipelineError) as caught:
        api_key_source("tianapi", settings(tianapi_key_parameter=name + "-missing"))()

    text = repr(source) + repr(config) + str(caught.value)
    assert "very-secret-value" not in text and "env-secret-value" not in text
