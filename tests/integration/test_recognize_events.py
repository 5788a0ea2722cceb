"""RecognizeFunction end to end, for every sample event in events/.

Given the objects an event names are really in the (moto) bucket, when the real handler runs on
the event, then each object ends as exactly one record and one announcement: an EventBridge event
on success, one SQS failure message on failure.
"""

from __future__ import annotations

import copy
import time
from typing import Any
from urllib.parse import unquote_plus

import pytest

from tests.conftest import EVENTS, load_event, load_function_module, make_jpeg
from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE

# What each sample event must end as, per decoded key: (status, error code or None). None = skipped.
EXPECTED: dict[str, dict[str, tuple[str, str | None] | None]] = {
    "s3-put-plate.json": {"plates/cam1/car.jpg": ("SUCCEEDED", None)},
    "s3-put-vehicle-license.json": {"vehicle-licenses/front.jpg": ("SUCCEEDED", None)},
    "s3-put-chinese-key.json": {"plates/cam1/沪A 1.jpg": ("SUCCEEDED", None)},
    "s3-put-key-with-space.json": {"plates/gate 2/front car.jpg": ("SUCCEEDED", None)},
    "s3-put-key-with-plus.json": {"vehicle-licenses/a+b.jpg": ("SUCCEEDED", None)},
    "s3-put-unknown-prefix.json": {"receipts/scan.jpg": ("FAILED", "UNROUTABLE")},
    "s3-put-folder-marker.json": {"plates/cam3/": None},
    "s3-put-multiple-records.json": {
        "plates/lane1/a.jpg": ("SUCCEEDED", None),
        "vehicle-licenses/b.png": ("SUCCEEDED", None),
        "plates/lane2/c.jpg": ("SUCCEEDED", None),
    },
    "s3-put-malformed.json": {"plates/cam1/missing.jpg": ("SUCCEEDED", None)},
}


def stage_event(stack: Any, event: dict[str, Any], bodies: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Put each object the event names into the bucket and make the event describe it as S3 would."""
    event = copy.deepcopy(event)
    for index, record in enumerate(event["Records"]):
        s3 = record["s3"]
        s3["bucket"]["name"] = stack.bucket
        s3["bucket"]["arn"] = f"arn:aws:s3:::{stack.bucket}"
        if "key" not in s3["object"]:
            continue  # a malformed record stays malformed
        key = unquote_plus(s3["object"]["key"])
        if bodies and key in bodies:
            body = bodies[key]
        else:
            body = b"" if key.endswith("/") else make_jpeg(seed=hash(key) % 1000 + index)
        s3["object"].update(stack.put_image(key, body))
    return event


def test_every_sample_event_has_an_expectation():
    """Given the S3 events in events/, then this suite covers each one (a new sample cannot go untested)."""
    assert sorted(path.name for path in EVENTS.glob("s3-*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("event_name", sorted(EXPECTED))
def test_sample_event_ends_as_one_record_and_one_announcement(
    event_name, stack, recognize_app, lambda_context, fake_upstream
):
    # Given the objects of the sample event in the bucket
    expected = EXPECTED[event_name]
    event = stage_event(stack, load_event(event_name))

    # When the handler runs on the event
    recognize_app.lambda_handler(event, lambda_context)

    # Then each routable object has exactly one record with the expected status and code
    records = {record["source"]["key"]: record for record in stack.records()}
    wanted = {key: outcome for key, outcome in expected.items() if outcome is not None}
    assert sorted(records) == sorted(wanted)
    for key, (status, code) in wanted.items():
        assert records[key]["status"] == status
        assert (records[key].get("error") or {}).get("code") == code
        assert records[key]["source"]["bucket"] == stack.bucket

    # And successes are announced on the bus, failures in the failure queue, once each
    events = stack.success_events()
    failures = stack.failure_messages()
    succeeded = {key for key, (status, _) in wanted.items() if status == "SUCCEEDED"}
    failed = {key: code for key, (status, code) in wanted.items() if status == "FAILED"}
    assert sorted(event["detail"]["source"]["key"] for event in events) == sorted(succeeded)
    object_failures = [m for m in failures if m["body"]["error"]["code"] != "MALFORMED_EVENT"]
    assert {m["body"]["key"]: m["body"]["error"]["code"] for m in object_failures} == failed
    assert len(object_failures) == len(failed)

    # And a malformed record is reported, not lost
    malformed = [m for m in failures if m["body"]["error"]["code"] == "MALFORMED_EVENT"]
    assert len(malformed) == (1 if event_name == "s3-put-malformed.json" else 0)

    # And only routable, non-empty objects were paid for
    assert fake_upstream.billed() == len(succeeded)


def test_plate_record_has_design_shape(stack, recognize_app, lambda_context, fake_upstream):
    # Given a plate image the upstream reads as a yellow coach plate
    image = make_jpeg(seed=7)
    fake_upstream.set_answer(image, {"color": "yellow", "number": "沪A·0762学"})
    event = stage_event(stack, load_event("s3-put-chinese-key.json"), {"plates/cam1/沪A 1.jpg": image})

    # When the handler runs
    recognize_app.lambda_handler(event, lambda_context)

    # Then the record is docs/contract.md's: decoded key, content hash, normalised plate
    (record,) = stack.records()
    assert record["kind"] == "plate"
    assert record["status"] == "SUCCEEDED"
    assert record["provider"] == "tianapi"
    assert record["source"]["key"] == "plates/cam1/沪A 1.jpg"
    assert record["source"]["size"] == len(image)
    assert len(record["source"]["sha256"]) == 64
    assert record["created_at"].endswith("Z")
    (plate,) = record["plates"]
    assert plate["number"] == "沪A0762学"
    assert plate["color"] == "yellow"
    assert plate["kind"] == "coach"
    assert plate["province"] == "沪"
    assert plate["valid"] is True
    assert "vehicle_license" not in record and "error" not in record

    # And the event names the plate and the object, nothing else
    (event_out,) = stack.success_events()
    assert event_out["source"] == "vehicle-ocr"
    assert event_out["detail-type"] == "Plate Recognized"
    assert event_out["detail"] == {
        "id": record["id"],
        "kind": "plate",
        "source": record["source"],
        "plates": ["沪A0762学"],
    }
    # And the plate is findable through its sighting item
    assert [s["plate_number"] for s in stack.sightings()] == ["沪A0762学"]


def test_vehicle_license_event_carries_no_personal_data(stack, recognize_app, lambda_context, fake_upstream):
    # Given a vehicle licence the upstream reads with an owner and address
    image = make_jpeg(seed=11)
    answer = dict(
        DEFAULT_VEHICLE_LICENSE,
        owner="张三丰",
        address="上海市浦东新区世纪大道1号",
        vin="LSVAU2180N2183294",
        plate_number="沪A12345",
        gabarite="4885×1840×1455mm",
    )
    fake_upstream.set_answer(image, answer)
    event = stage_event(stack, load_event("s3-put-vehicle-license.json"), {"vehicle-licenses/front.jpg": image})

    # When the handler runs
    recognize_app.lambda_handler(event, lambda_context)

    # Then the record holds the normalised licence and the raw answer beside it
    (record,) = stack.records()
    licence = record["vehicle_license"]
    assert licence["owner"] == "张三丰"
    assert licence["dimensions_mm"] == {"length": 4885, "width": 1840, "height": 1455}
    assert licence["raw"]["gabarite"] == "4885×1840×1455mm"
    assert licence["vin"] == "LSVAU2180N2183294"

    # And the event carries plate number and VIN, never owner or address
    (event_out,) = stack.success_events()
    assert event_out["detail-type"] == "Vehicle License Recognized"
    assert event_out["detail"]["plate_number"] == "沪A12345"
    assert event_out["detail"]["vin"] == "LSVAU2180N2183294"
    text = str(event_out)
    assert "张三丰" not in text and "世纪大道" not in text


def test_record_retention_reaches_the_records_the_function_writes(
    stack, recognize_env, lambda_context, fake_upstream, monkeypatch
):
    # Given RecordRetentionDays=30 (RECORD_RETENTION_DAYS) on the function
    monkeypatch.setenv("RECORD_RETENTION_DAYS", "30")
    app = load_function_module("recognize", "recognize_app_retention")

    # When a plate photo is recognised
    before = time.time()
    app.lambda_handler(stage_event(stack, load_event("s3-put-plate.json")), lambda_context)

    # Then the record and its sighting expire together, 30 days after they were written
    (record_item,) = [item for item in stack.items() if item["sk"] == "RECORD"]
    (sighting,) = stack.sightings()
    assert record_item["expires_at"] == sighting["expires_at"]
    assert before + 30 * 86400 - 5 <= record_item["expires_at"] <= time.time() + 30 * 86400 + 5
