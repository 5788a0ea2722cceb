"""Settings are validated once at cold start and fail loudly, naming what is missing."""

import pytest

from vehicle_ocr.errors import ConfigurationError
from vehicle_ocr.providers.apizero import DEFAULT_URL as DEFAULT_APIZERO_URL
from vehicle_ocr.providers.tianapi import DEFAULT_URL as DEFAULT_TIANAPI_URL
from vehicle_ocr.settings import Settings

BASE = {
    "RESULTS_TABLE": "results",
    "FAILURE_QUEUE_URL": "http://queue",
    "EVENT_BUS_NAME": "bus",
    "TIANAPI_KEY_PARAMETER": "/vehicle-ocr/tianapi-key",
    "APIZERO_KEY_PARAMETER": "/vehicle-ocr/apizero-key",
}


def test_defaults_follow_the_design():
    # Given only the required variables / When read / Then the documented defaults apply
    settings = Settings.from_env(BASE)
    assert dict(settings.chains) == {"plate": ("tianapi",), "vehicle_license": ("apizero",)}
    assert settings.provider("tianapi").url == DEFAULT_TIANAPI_URL
    assert settings.provider("apizero").url == DEFAULT_APIZERO_URL
    assert dict(settings.prefixes) == {"plate": "plates/", "vehicle_license": "vehicle-licenses/"}
    assert (settings.requests_per_second("tianapi"), settings.requests_per_second("apizero")) == (5.0, 2.0)


@pytest.mark.parametrize("missing", ["RESULTS_TABLE", "FAILURE_QUEUE_URL", "EVENT_BUS_NAME"])
def test_missing_required_variable_is_named(missing):
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"PLATE_PROVIDER": "acme"}, "PLATE_PROVIDER"),
        ({"LICENSE_PROVIDER": "tianapi"}, "LICENSE_PROVIDER"),
        ({"MAX_IMAGE_BYTES": "ten"}, "MAX_IMAGE_BYTES"),
        ({"UPSTREAM_READ_TIMEOUT": "-1"}, "UPSTREAM_READ_TIMEOUT"),
        ({"TIANAPI_KEY_PARAMETER": ""}, "TIANAPI_KEY"),
        ({"APIZERO_KEY_PARAMETER": ""}, "APIZERO_KEY"),
        ({"LICENSE_PREFIX": "plates/"}, "PREFIX"),
    ],
)
def test_invalid_setting_is_named(override, named):
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env({**BASE, **override})


def test_local_providers_need_no_keys():
    env = {k: v for k, v in BASE.items() if "KEY" not in k}
    settings = Settings.from_env({**env, "PLATE_PROVIDER": "LOCAL", "LICENSE_PROVIDER": "local"})
    assert dict(settings.chains) == {"plate": ("local",), "vehicle_license": ("local",)}


def test_a_chain_is_read_in_order_and_wins_over_the_single_provider():
    # Given both the chain and the one-provider variable (the local stack sets the latter)
    settings = Settings.from_env({**BASE, "PLATE_PROVIDERS": "tianapi, local", "PLATE_PROVIDER": "local"})
    # Then the chain is used, in its order
    assert settings.chains["plate"] == ("tianapi", "local")


def test_repr_never_shows_a_key():
    settings = Settings.from_env({**BASE, "TIANAPI_KEY": "secret-tianapi", "APIZERO_KEY": "secret-apizero"})
    assert "secret" not in repr(settings)
    assert settings.provider("tianapi").key == "secret-tianapi"
