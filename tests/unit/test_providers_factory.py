"""build_recognizers and the shared transport (session, retries) it wires in."""

from __future__ import annotations

import logging
import sys
import textwrap

import pytest

# Fixtures fake_upstream, upstream_session, refused_url: tests/fakes/fixtures.py (plugin in tests/conftest.py).
from tests.fakes.fixtures import APIZERO_TEST_KEY, TIANAPI_TEST_KEY
from tests.fakes.upstream import DEFAULT_PLATE, DEFAULT_VEHICLE_LICENSE, Reply
from vehicle_ocr.codes import Action
from vehicle_ocr.errors import ConfigurationError, PipelineError
from vehicle_ocr.providers import (
    ApizeroVehicleLicenseRecognizer,
    TianapiPlateRecognizer,
    UnavailableRecognizer,
    build_recognizers,
)
from vehicle_ocr.providers.http import UpstreamLimits, new_session, post, shared_session
from vehicle_ocr.settings import Settings


def settings(**overrides) -> Settings:
    values = {"tianapi_key": TIANAPI_TEST_KEY, "apizero_key": APIZERO_TEST_KEY} | overrides
    return Settings(results_table="t", failure_queue_url="q", event_bus_name="b", **values)


@pytest.fixture
def no_local_engine(monkeypatch):
    """The optional offline engine is not importable (None in sys.modules makes import fail)."""
    monkeypatch.setitem(sys.modules, "vehicle_ocr_local", None)
    monkeypatch.setitem(sys.modules, "vehicle_ocr_local.engine", None)


@pytest.fixture
def stub_local_engine(tmp_path, monkeypatch):
    """A stand-in ``vehicle_ocr_local.engine`` with the two classes the factory expects."""
    package = tmp_path / "vehicle_ocr_local"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "engine.py").write_text(
        textwrap.dedent(
            """
            class LocalPlateRecognizer:
                name, kind = "local", "plate"

            class LocalVehicleLicenseRecognizer:
                name, kind = "local", "vehicle_license"
            """
        )
    )
    for module in ("vehicle_ocr_local", "vehicle_ocr_local.engine"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for module in ("vehicle_ocr_local", "vehicle_ocr_local.engine"):
        sys.modules.pop(module, None)


# --------------------------------------------------------------------------- build_recognizers


def test_default_providers_are_built_by_kind(upstream_session):
    """Given the default settings (tianapi for plates, apizero for vehicle licences),
    when recognisers are built with a session,
    then each kind maps to its provider with the configured URL, timeouts and that session."""
    config = settings(connect_timeout_s=1.5, read_timeout_s=9.0)

    built = build_recognizers(config, upstream_session)

    assert set(built) == {"plate", "vehicle_license"}
    plate, licence = built["plate"], built["vehicle_license"]
    assert isinstance(plate, TianapiPlateRecognizer) and (plate.name, plate.kind) == ("tianapi", "plate")
    assert isinstance(licence, ApizeroVehicleLicenseRecognizer)
    assert (licence.name, licence.kind) == ("apizero", "vehicle_license")
    assert (plate.url, licence.url) == (config.tianapi_url, config.apizero_url)
    assert plate.timeout == licence.timeout == (1.5, 9.0)
    assert plate._session is upstream_session and licence._session is upstream_session


def test_built_recognizers_work_end_to_end(fake_upstream, upstream_session):
    """Given settings pointing at the fake upstream with the right env keys,
    when both built recognisers are used,
    then each gets its provider's default answer."""
    config = settings(tianapi_url=fake_upstream.tianapi_url, apizero_url=fake_upstream.apizero_url)

    built = build_recognizers(config, upstream_session)

    assert built["plate"].recognize(b"plate image").payload == [DEFAULT_PLATE]
    assert built["vehicle_license"].recognize(b"licence image").payload == DEFAULT_VEHICLE_LICENSE
    assert fake_upstream.billed() == 2


def test_without_a_session_the_process_wide_one_is_shared():
    """Given no session,
    when recognisers are built twice (two cold-start paths in one process),
    then all of them share the one process-wide pooled session."""
    first, second = build_recognizers(settings()), build_recognizers(settings())

    sessions = {id(r._session) for r in (*first.values(), *second.values())}
    assert sessions == {id(shared_session())}


def test_local_without_the_engine_fails_each_upload_clearly(no_local_engine):
    """Given PLATE_PROVIDER=local and LICENSE_PROVIDER=local but no offline engine installed,
    when recognisers are built and used,
    then building succeeds and every recognise raises PROVIDER_NOT_AVAILABLE with the install hint."""
    built = build_recognizers(settings(plate_provider="local", license_provider="local"))

    for kind in ("plate", "vehicle_license"):
        recognizer = built[kind]
        assert isinstance(recognizer, UnavailableRecognizer)
        assert (recognizer.name, recognizer.kind) == ("local", kind)
        with pytest.raises(PipelineError) as caught:
            recognizer.recognize(b"image")
        error = caught.value
        assert (error.provider, error.code) == ("local", "PROVIDER_NOT_AVAILABLE")
        assert error.message == "offline engine not installed: pip install 'vehicle-ocr[local]'"
        assert error.retryable is False and error.action is Action.FIX_CONFIG
        assert isinstance(error.__cause__, ImportError)


def test_local_with_the_engine_uses_its_recognizers(stub_local_engine):
    """Given an installed offline engine,
    when recognisers are built for local,
    then the engine's own classes are used for both kinds."""
    built = build_recognizers(settings(plate_provider="local", license_provider="local"))

    assert type(built["plate"]).__name__ == "LocalPlateRecognizer"
    assert type(built["vehicle_license"]).__name__ == "LocalVehicleLicenseRecognizer"
    assert type(built["plate"]).__module__ == "vehicle_ocr_local.engine"


def test_providers_can_be_mixed(no_local_engine, upstream_session):
    """Given tianapi for plates and local for vehicle licences (no apizero key needed),
    when recognisers are built,
    then each kind gets its own choice."""
    built = build_recognizers(settings(apizero_key=None, license_provider="local"), upstream_session)

    assert isinstance(built["plate"], TianapiPlateRecognizer)
    assert isinstance(built["vehicle_license"], UnavailableRecognizer)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"tianapi_key": None}, "TIANAPI_KEY"),
        ({"apizero_key": None}, "APIZERO_KEY"),
        ({"plate_provider": "baidu"}, "PLATE_PROVIDER"),
        ({"license_provider": "baidu"}, "LICENSE_PROVIDER"),
    ],
)
def test_misconfiguration_is_reported_at_build_time(overrides, named):
    """Given a provider without a key or an unknown provider,
    when recognisers are built,
    then ConfigurationError names the setting to fix."""
    with pytest.raises(ConfigurationError, match=named):
        build_recognizers(settings(**overrides))


# --------------------------------------------------------------------------- transport


def test_session_retries_connection_establishment_only():
    """Given a new transport session,
    when its retry policy is inspected,
    then only connection errors are retried: never reads, statuses, redirects or other errors,
    and Retry-After is ignored."""
    session = new_session()
    adapter = session.get_adapter("https://apis.tianapi.com/")
    retry = adapter.max_retries

    assert session.get_adapter("http://127.0.0.1/") is adapter
    assert retry.connect == 2
    assert retry.read is False
    assert retry.status == 0 and retry.other == 0 and retry.redirect == 0
    assert not retry.status_forcelist
    assert retry.respect_retry_after_header is False
    assert "POST" not in retry.allowed_methods
    assert adapter._pool_maxsize >= 10


def test_refused_connections_are_retried(refused_url, upstream_session, caplog):
    """Given nothing listens at the URL,
    when one POST is attempted,
    then urllib3 retried the connection twice before UPSTREAM_UNAVAILABLE was raised."""
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")

    with pytest.raises(PipelineError) as caught:
        post(upstream_session, refused_url, provider="tianapi", limits=UpstreamLimits.of(1.0), data={"a": "b"})

    assert caught.value.code == "UPSTREAM_UNAVAILABLE"
    assert caught.value.possibly_billed is False  # nothing was sent, so nothing can have been billed
    retries = [r for r in caplog.records if "Retrying" in r.getMessage()]
    assert len(retries) == 2


def test_json_code_with_error_status_is_returned_to_the_caller(fake_upstream, upstream_session):
    """Given an HTTP 401 answer whose JSON body carries a code,
    when it is posted through the transport,
    then status and body are returned for the provider to interpret."""
    fake_upstream.script("apizero", [Reply(code=4015)])

    answer = post(upstream_session, fake_upstream.apizero_url, provider="apizero", limits=UpstreamLimits.of(2.0))

    assert answer.status == 401 and answer.json()["code"] == 4015


def test_redirects_are_not_followed(fake_upstream, upstream_session):
    """Given an upstream that answers 302 with a Location,
    when a POST is made,
    then it is not followed (the body and key would go elsewhere)."""
    fake_upstream.script("tianapi", [Reply(http_status=302, body=b"moved")])

    answer = post(upstream_session, fake_upstream.tianapi_url, provider="tianapi", limits=UpstreamLimits.of(2.0))

    assert answer.status == 302 and answer.body == b"moved"
    assert len(fake_upstream.calls) == 1


def test_invalid_url_is_a_configuration_error(upstream_session):
    """Given a URL without a scheme,
    when a POST is made,
    then CONFIGURATION_ERROR is raised instead of a transport error."""
    with pytest.raises(PipelineError) as caught:
        post(upstream_session, "apis.tianapi.com/licenseplate/index", provider="tianapi", limits=UpstreamLimits.of(1.0))

    assert caught.value.code == "CONFIGURATION_ERROR"


def test_session_reuses_connections(fake_upstream, upstream_session):
    """Given one session,
    when several requests are made,
    then they travel over one kept-alive connection (fast path for warm Lambdas)."""
    for _ in range(5):
        post(upstream_session, fake_upstream.tianapi_url, provider="tianapi", limits=UpstreamLimits.of(2.0), data={})

    assert len(fake_upstream.calls) == 5
    assert fake_upstream.connections_opened == 1
