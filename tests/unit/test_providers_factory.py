"""build_recognizers and the shared transport (session, retries) it wires in."""

from __future__ import annotations

import logging
import sys
import textwrap

import pytest

# Fixtures fake_upstream, upstream_session, refused_url: tests/fakes/fixtures.py (plugin in tests/conftest.py).
from tests.fakes.fixtures import APIZERO_TEST_KEY, TIANAPI_TEST_KEY
from tests.fakes.upstream import DEFAULT_PLATE, DEFAULT_VEHICLE_LICENSE, Reply
from vehicle_ocr.errors import ConfigurationError, PipelineError
from vehicle_ocr.providers import ApizeroVehicleLicenseRecognizer, TianapiPlateRecognizer, build_recognizers
from vehicle_ocr.providers.http import UpstreamLimits, new_session, post, shared_session
from vehicle_ocr.settings import Settings

ENV = {
    "RESULTS_TABLE": "t",
    "FAILURE_QUEUE_URL": "q",
    "EVENT_BUS_NAME": "b",
    "TIANAPI_KEY": TIANAPI_TEST_KEY,
    "APIZERO_KEY": APIZERO_TEST_KEY,
}


def settings(**env: str | None) -> Settings:
    """Settings as the function reads them: ENV with some variables changed (None: unset)."""
    merged = {name: value for name, value in (ENV | env).items() if value is not None}
    return Settings.from_env(merged)


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


def test_default_providers_are_built_by_kind():
    """Given the default settings (tianapi for plates, apizero for vehicle licences),
    when recognisers are built,
    then each kind's chain is its provider, with the configured URL and timeouts, on the shared session."""
    config = settings(UPSTREAM_CONNECT_TIMEOUT="1.5", UPSTREAM_READ_TIMEOUT="9")

    built = build_recognizers(config)

    assert set(built) == {"plate", "vehicle_license"}
    (plate,), (licence,) = built["plate"], built["vehicle_license"]
    assert isinstance(plate, TianapiPlateRecognizer) and (plate.name, plate.kind) == ("tianapi", "plate")
    assert isinstance(licence, ApizeroVehicleLicenseRecognizer)
    assert (licence.name, licence.kind) == ("apizero", "vehicle_license")
    assert (plate.url, licence.url) == (config.provider("tianapi").url, config.provider("apizero").url)
    assert plate.timeout == licence.timeout == (1.5, 9.0)
    assert plate._session is shared_session() and licence._session is shared_session()


def test_built_recognizers_work_end_to_end(fake_upstream):
    """Given settings pointing at the fake upstream with the right env keys,
    when both built recognisers are used,
    then each gets its provider's default answer."""
    config = settings(TIANAPI_URL=fake_upstream.tianapi_url, APIZERO_URL=fake_upstream.apizero_url)

    built = build_recognizers(config)

    assert built["plate"][0].recognize(b"plate image").payload == [DEFAULT_PLATE]
    assert built["vehicle_license"][0].recognize(b"licence image").payload == DEFAULT_VEHICLE_LICENSE
    assert fake_upstream.billed() == 2


def test_without_a_session_the_process_wide_one_is_shared():
    """Given two cold-start paths in one process,
    when recognisers are built twice,
    then all of them share the one process-wide pooled session."""
    first, second = build_recognizers(settings()), build_recognizers(settings())

    sessions = {id(r._session) for chain in (*first.values(), *second.values()) for r in chain}
    assert sessions == {id(shared_session())}


def test_local_without_the_engine_fails_the_cold_start_clearly(no_local_engine):
    """Given PLATE_PROVIDER=local but no offline engine installed (the zip deployment),
    when recognisers are built at cold start,
    then ConfigurationError says how to install it, instead of a FAILED record for every upload."""
    with pytest.raises(ConfigurationError, match=r"pip install 'vehicle-ocr\[engine\]'") as caught:
        build_recognizers(settings(PLATE_PROVIDER="local"))

    assert isinstance(caught.value.__cause__, ImportError)


def test_local_with_the_engine_uses_its_recognizers(stub_local_engine):
    """Given an installed offline engine,
    when recognisers are built for local,
    then the engine's own classes are used for both kinds."""
    built = build_recognizers(settings(PLATE_PROVIDER="local", LICENSE_PROVIDER="local"))

    assert type(built["plate"][0]).__name__ == "LocalPlateRecognizer"
    assert type(built["vehicle_license"][0]).__name__ == "LocalVehicleLicenseRecognizer"
    assert type(built["plate"][0]).__module__ == "vehicle_ocr_local.engine"


def test_providers_can_be_mixed(stub_local_engine):
    """Given tianapi for plates and local for vehicle licences (no apizero key needed),
    when recognisers are built,
    then each kind gets its own choice."""
    built = build_recognizers(settings(APIZERO_KEY=None, LICENSE_PROVIDER="local"))

    assert isinstance(built["plate"][0], TianapiPlateRecognizer)
    assert type(built["vehicle_license"][0]).__name__ == "LocalVehicleLicenseRecognizer"


def test_a_chain_is_built_in_its_order(stub_local_engine):
    """Given PLATE_PROVIDERS=tianapi,local,
    when recognisers are built,
    then plates are tried by tianapi first, then by the offline engine."""
    built = build_recognizers(settings(PLATE_PROVIDERS="tianapi, local"))

    assert [recognizer.name for recognizer in built["plate"]] == ["tianapi", "local"]
    assert [recognizer.name for recognizer in built["vehicle_license"]] == ["apizero"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TIANAPI_KEY": None}, "TIANAPI_KEY"),
        ({"APIZERO_KEY": None}, "APIZERO_KEY"),
        ({"PLATE_PROVIDER": "baidu"}, "PLATE_PROVIDER: unknown provider 'baidu' for kind 'plate'"),
        ({"LICENSE_PROVIDERS": "apizero,baidu"}, "LICENSE_PROVIDERS: unknown provider 'baidu'"),
        ({"LICENSE_PROVIDERS": "apizero,apizero"}, "LICENSE_PROVIDERS names a provider twice"),
        ({"PLATE_PROVIDERS": "local,tianapi", "TIANAPI_KEY": None}, "TIANAPI_KEY"),
    ],
)
def test_misconfiguration_is_reported_at_cold_start(env, named):
    """Given a provider without a key, an unknown provider or a chain naming one twice,
    when the settings are read,
    then ConfigurationError names the setting to fix."""
    with pytest.raises(ConfigurationError, match=named):
        settings(**env)


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
