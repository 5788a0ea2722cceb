"""Routing by prefix, and the docs/contract.md shapes built from a record."""

from datetime import UTC, datetime

import pytest

from vehicle_ocr import shapes
from vehicle_ocr.errors import PipelineError, UpstreamError
from vehicle_ocr.routing import route
from vehicle_ocr.settings import Settings

SETTINGS = Settings(results_table="t", failure_queue_url="q", event_bus_name="b")
NOW = datetime(2026, 11, 21, 8, 0, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("key", "kind"),
    [("plates/cam1/a.jpg", "plate"), ("vehicle-licenses/x.png", "vehicle_license"), ("plates/沪A 1.jpg", "plate")],
)
def test_known_prefixes_route(key, kind):
    assert route(key, SETTINGS) == kind


@pytest.mark.parametrize("key", ["receipts/a.jpg", "Plates/a.jpg", "a.jpg", "platesx/a.jpg", ""])
def test_unknown_prefix_is_unroutable(key):
    with pytest.raises(PipelineError) as caught:
        route(key, SETTINGS)
    assert caught.value.code == "UNROUTABLE"
    assert caught.value.retryable is False


def test_longest_prefix_wins():
    nested = Settings(
        results_table="t",
        failure_queue_url="q",
        event_bus_name="b",
        prefixes={"plate": "in/", "vehicle_license": "in/licences/"},
    )
    assert route("in/licences/a.jpg", nested) == "vehicle_license"
    assert route("in/a.jpg", nested) == "plate"


def obj(**overrides):
    values = {"bucket": "b", "key": "plates/a.jpg", "size": 10, "etag": '"abc"', "version_id": None}
    return shapes.UploadedObject(**{**values, **overrides})


def test_failure_message_has_design_shape():
    error = UpstreamError("tianapi", 130)
    record = shapes.failed_record(
        obj(), kind="plate", provider="tianapi", created_at=NOW, source=shapes.source_of(obj()), error=error
    )
    message = shapes.failure_message(record, attempts=3, failed_at=NOW)
    assert message == {
        "schema_version": 1,
        "id": record["id"],
        "kind": "plate",
        "bucket": "b",
        "key": "plates/a.jpg",
        "version_id": None,
        "etag": "abc",
        "error": {
            "code": "130",
            "source": "upstream",
            "provider": "tianapi",
            "message": "API调用频率超限",
            "retryable": True,
        },
        "attempts": 3,
        "failed_at": "2026-11-21T08:00:03Z",
    }
    assert shapes.failure_message_attributes(message) == {
        "error_code": {"DataType": "String", "StringValue": "130"},
        "kind": {"DataType": "String", "StringValue": "plate"},
        "retryable": {"DataType": "String", "StringValue": "true"},
    }


def test_unroutable_failure_has_kind_attribute_unknown():
    record = shapes.failed_record(
        obj(key="x/a.jpg"),
        kind=None,
        provider=None,
        created_at=NOW,
        source=shapes.source_of(obj()),
        error=PipelineError("pipeline", "UNROUTABLE"),
    )
    attributes = shapes.failure_message_attributes(shapes.failure_message(record, attempts=1, failed_at=NOW))
    assert attributes["kind"]["StringValue"] == "unknown"
    assert record["error"]["source"] == "pipeline"


def test_record_id_depends_on_version_or_etag_only():
    assert obj().record_id == obj(etag="abc").record_id  # quotes do not matter
    assert obj(version_id="v1").record_id != obj(version_id="v2").record_id
    assert obj(key="plates/b.jpg").record_id != obj().record_id
