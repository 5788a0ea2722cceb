"""A new document kind is a declaration: registered here, inside the test suite, it flows through
the whole pipeline (routing, recognition, record, index, success event) without a change to
``layers/``."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote_plus

import pytest

from tests.conftest import load_event, load_function_module, make_jpeg
from vehicle_ocr.kinds import KindSpec, register_kind, unregister_kind
from vehicle_ocr.providers.base import ProviderAnswer
from vehicle_ocr.providers.registry import ProviderSpec, register_provider, unregister_provider
from vehicle_ocr_local.cli import summary as cli_summary
from vehicle_ocr_local.console.backend import summary as console_summary

KEY = "driver-licenses/front 驾驶证.jpg"


class StubDriverLicenseReader:
    """A provider for the new kind: answers every image with one driver's licence."""

    name, kind = "dlreader", "driver_license"

    def __init__(self) -> None:
        self.calls = 0

    def recognize(self, image: bytes) -> ProviderAnswer:
        self.calls += 1
        return ProviderAnswer(self.name, {"number": "310101199001011234", "class": "C1", "plate": "沪A0762学"})


def _normalize(answer: ProviderAnswer) -> tuple[dict[str, Any], None]:
    return {"number": answer.payload["number"], "class": answer.payload["class"]}, None


@pytest.fixture
def driver_licence_kind():
    reader = StubDriverLicenseReader()
    register_kind(
        KindSpec(
            name="driver_license",
            settings_name="DRIVER_LICENSE",
            default_prefix="driver-licenses/",
            default_providers=("dlreader",),
            record_field="driver_license",
            detail_type="Driver License Recognized",
            normalize=_normalize,
            event_detail=lambda licence: {"licence_class": licence["class"]},
            summary=lambda licence: f"class {licence['class']}",
            personal_fields=("number",),  # the holder's ID number
        )
    )
    register_provider(ProviderSpec(name="dlreader", kind="driver_license", factory=lambda settings: reader))
    yield reader
    unregister_provider("driver_license", "dlreader")
    unregister_kind("driver_license")


def test_a_third_kind_registered_in_the_tests_is_recognised_end_to_end(
    stack, recognize_env, driver_licence_kind, lambda_context
):
    # Given a driver's-licence kind and its provider, registered by this test alone, and the function started
    app = load_function_module("recognize", "recognize_app_third_kind")
    assert app.settings.chains["driver_license"] == ("dlreader",)
    event = copy.deepcopy(load_event("s3-put-plate.json"))
    s3 = event["Records"][0]["s3"]
    s3["bucket"].update(name=stack.bucket, arn=f"arn:aws:s3:::{stack.bucket}")
    s3["object"].update(key=quote_plus(KEY), **stack.put_image(KEY, make_jpeg(seed=3)))

    # When S3 announces an upload under its prefix
    response = app.lambda_handler(event, lambda_context)

    # Then one SUCCEEDED record of that kind, with the kind's own field, announced with its detail-type
    (processed,) = response["processed"]
    assert (processed["status"], processed["outcome"]) == ("SUCCEEDED", "recognised")
    (record,) = stack.records()
    assert record["provider"] == "dlreader"
    assert record["kind"] == "driver_license"
    assert record["driver_license"] == {"number": "310101199001011234", "class": "C1"}
    assert "plates" not in record and "vehicle_license" not in record
    assert stack.sightings() == []  # it names no plate
    (announced,) = stack.success_events()
    assert announced["detail-type"] == "Driver License Recognized"
    assert announced["detail"]["licence_class"] == "C1"
    assert "number" not in announced["detail"]  # only what the kind chose to announce
    assert driver_licence_kind.calls == 1

    # And the local tools show it as the kind declares: the CLI's line, a listing without the holder's number
    assert cli_summary(record) == "class C1"
    assert console_summary(record)["driver_license"] == {"class": "C1"}

    # And the built-in kinds still route as before
    assert app.settings.prefixes["plate"] == "plates/" and app.settings.chains["plate"] == ("tianapi",)
