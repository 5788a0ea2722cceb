"""S3 notifications → the objects they announce, keys decoded."""

import pytest

from tests.conftest import load_event
from vehicle_ocr.s3_events import parse_s3_event


@pytest.mark.parametrize(
    ("event_name", "keys"),
    [
        ("s3-put-plate.json", ["plates/cam1/car.jpg"]),
        ("s3-put-chinese-key.json", ["plates/cam1/沪A 1.jpg"]),
        ("s3-put-key-with-space.json", ["plates/gate 2/front car.jpg"]),
        ("s3-put-key-with-plus.json", ["vehicle-licenses/a+b.jpg"]),
        ("s3-put-multiple-records.json", ["plates/lane1/a.jpg", "vehicle-licenses/b.png", "plates/lane2/c.jpg"]),
    ],
)
def test_keys_are_url_decoded(event_name, keys):
    parsed = parse_s3_event(load_event(event_name))
    assert [obj.key for obj in parsed.objects] == keys
    assert parsed.malformed == []


def test_moto_style_encoded_slash_is_decoded():
    # moto encodes even "/" in notification keys
    event = load_event("s3-put-plate.json")
    event["Records"][0]["s3"]["object"]["key"] = "plates%2Fcam1%2F%E6%B2%AAA%2B1.jpg"
    (obj,) = parse_s3_event(event).objects
    assert obj.key == "plates/cam1/沪A+1.jpg"


def test_folder_marker_is_recognised():
    (obj,) = parse_s3_event(load_event("s3-put-folder-marker.json")).objects
    assert obj.is_folder_marker


def test_record_without_key_is_malformed_and_others_survive():
    parsed = parse_s3_event(load_event("s3-put-malformed.json"))
    assert [obj.key for obj in parsed.objects] == ["plates/cam1/missing.jpg"]
    (malformed,) = parsed.malformed
    assert "key" in malformed.reason
    # The reason describes structure, not values
    assert "vehicle-ocr-images" not in malformed.reason


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": "x"}, [], "text", None])
def test_event_without_records_is_malformed(event):
    parsed = parse_s3_event(event)
    assert parsed.objects == []
    assert len(parsed.malformed) == 1


def test_deletes_and_test_events_are_ignored():
    event = load_event("s3-put-plate.json")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert parse_s3_event(event).objects == []
    assert parse_s3_event({"Service": "Amazon S3", "Event": "s3:TestEvent"}).ignored == ["s3:TestEvent"]


def test_same_object_version_gives_same_id_and_a_new_version_a_new_one():
    (a,) = parse_s3_event(load_event("s3-put-plate.json")).objects
    (b,) = parse_s3_event(load_event("s3-put-plate.json")).objects
    assert a.record_id == b.record_id
    event = load_event("s3-put-plate.json")
    event["Records"][0]["s3"]["object"]["eTag"] = "ffff"
    (c,) = parse_s3_event(event).objects
    assert c.record_id != a.record_id
