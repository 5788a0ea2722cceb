"""Record retention: with RECORD_RETENTION_DAYS a record and its plate sightings carry the same
``expires_at`` (the results table's TTL attribute), so DynamoDB deletes them together; without it,
none of them carries one and they are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vehicle_ocr import shapes
from vehicle_ocr.errors import ConfigurationError
from vehicle_ocr.settings import Settings
from vehicle_ocr.storage import PLATE_SK_PREFIX, RECORD_SK, ResultsStore, from_dynamo, from_item

WRITTEN_AT = datetime(2025, 3, 1, 8, 30, 15, 250_000, tzinfo=UTC)
BASE_ENV = {
    "RESULTS_TABLE": "results",
    "FAILURE_QUEUE_URL": "http://queue",
    "EVENT_BUS_NAME": "bus",
    "TIANAPI_KEY_PARAMETER": "/vehicle-ocr/tianapi-key",
    "APIZERO_KEY_PARAMETER": "/vehicle-ocr/apizero-key",
}


class TableClient:
    """The DynamoDB calls ResultsStore makes for create / load_with_history / put_sightings, on a dict."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:
        for operation in TransactItems:
            if "Put" not in operation:  # the erasure markers' ConditionChecks: there are none here
                continue
            item = operation["Put"]["Item"]
            self.items[(item["pk"]["S"], item["sk"]["S"])] = item

    def query(self, **request: Any) -> dict[str, Any]:
        record_id = request["ExpressionAttributeValues"][":id"]["S"]
        return {"Items": [item for (pk, _), item in sorted(self.items.items()) if pk == record_id]}

    def written(self, record_id: str) -> dict[str, dict[str, Any]]:
        """Every item of one record, deserialised, by sort key."""
        return {sk: from_dynamo(item) for (pk, sk), item in self.items.items() if pk == record_id}


def plate_record(*numbers: str) -> dict[str, Any]:
    obj = shapes.UploadedObject("images", "plates/gate 1/car.jpg", version_id="v1", etag="e")
    return shapes.succeeded_record(
        obj,
        kind="plate",
        provider="tianapi",
        created_at=WRITTEN_AT,
        source=shapes.source_of(obj),
        result=[{"number": number} for number in numbers],
    )


def test_a_record_and_its_sightings_expire_together_when_a_retention_is_set():
    # Given a store whose records are kept 30 days, and a record naming two plates
    client = TableClient()
    store = ResultsStore("results", client, record_retention_days=30)
    record = plate_record("沪A12345", "京B67890")

    # When the record is written
    assert store.create(record, attempts=1, created_sort_at=WRITTEN_AT) is True

    # Then the record and each sighting carry the same expires_at: the write time plus 30 days
    items = client.written(record["id"])
    assert sorted(items) == [PLATE_SK_PREFIX + "京B67890", PLATE_SK_PREFIX + "沪A12345", RECORD_SK]
    expected = int((WRITTEN_AT + timedelta(days=30)).timestamp())
    assert {sk: item.get("expires_at") for sk, item in items.items()} == dict.fromkeys(items, expected)
    # And the attribute is bookkeeping: the record a user sees does not show it
    assert "expires_at" not in from_item(items[RECORD_SK])


def test_sightings_written_again_keep_the_records_expiry():
    # Given a record written with a retention, its sightings since lost (a crash before they were all written)
    client = TableClient()
    store = ResultsStore("results", client, record_retention_days=7)
    record = plate_record("沪A12345")
    store.create(record, attempts=1, created_sort_at=WRITTEN_AT)
    expires_at = client.written(record["id"])[RECORD_SK]["expires_at"]
    del client.items[(record["id"], PLATE_SK_PREFIX + "沪A12345")]

    # When a retry, later and in a process with another retention, finds the stored record and rewrites them
    stored, _ = ResultsStore("results", client, record_retention_days=90).load_with_history(record["id"])
    assert stored is not None and stored.expires_at == expires_at
    ResultsStore("results", client, record_retention_days=90).put_sightings(stored)

    # Then the sighting expires with its record, not with the new retention
    assert client.written(record["id"])[PLATE_SK_PREFIX + "沪A12345"]["expires_at"] == expires_at


def test_without_a_retention_neither_record_nor_sightings_expire():
    # Given a store without a retention (the default)
    client = TableClient()
    store = ResultsStore("results", client)
    record = plate_record("沪A12345", "京B67890")

    # When the record is written, and its sightings written again
    store.create(record, attempts=1, created_sort_at=WRITTEN_AT)
    stored, _ = store.load_with_history(record["id"])
    assert stored is not None and stored.expires_at is None
    store.put_sightings(stored)

    # Then no item of the record carries the TTL attribute: DynamoDB keeps them
    items = client.written(record["id"])
    assert len(items) == 3
    assert [sk for sk, item in items.items() if "expires_at" in item] == []


@pytest.mark.parametrize(("value", "days"), [(None, None), ("", None), ("  ", None), ("30", 30), (" 365 ", 365)])
def test_record_retention_is_read_from_the_environment(value, days):
    # Given RECORD_RETENTION_DAYS unset, empty (the template's default) or a number of days
    env = BASE_ENV if value is None else {**BASE_ENV, "RECORD_RETENTION_DAYS": value}
    # When the settings are read / Then empty means "kept forever"
    assert Settings.from_env(env).record_retention_days == days


@pytest.mark.parametrize("value", ["0", "-3", "1.5", "thirty"])
def test_an_invalid_record_retention_fails_the_start_naming_it(value):
    with pytest.raises(ConfigurationError, match="RECORD_RETENTION_DAYS"):
        Settings.from_env({**BASE_ENV, "RECORD_RETENTION_DAYS": value})
