"""The read side of the results table: every lookup docs/contract.md's query API offers.

Listings are newest first by ``created_sort`` (millisecond time, then id: a total order,
so pages never repeat or skip an item). Cursors are opaque and bound to the query they
came from: a cursor names the query it was minted for and the last item returned; it is
accepted only if that item exists and belongs to the current query (one consistent read),
and the start key is rebuilt from the current query's partition, never taken from the cursor.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from dataclasses import dataclass
from typing import Any

from vehicle_ocr.storage import RECORD_SK, from_dynamo, from_item

CURSOR_VERSION = 1


class InvalidCursor(ValueError):
    """The cursor is not one this API issued for this query."""


@dataclass(frozen=True)
class Page:
    """One page of records, and the cursor for the next (None: the last page)."""

    items: list[dict[str, Any]]
    cursor: str | None


@dataclass(frozen=True)
class _Listing:
    """One query shape: which index, its partition, and an optional filter on the records."""

    index: str
    hash_attribute: str
    hash_value: str
    filter_attribute: str | None = None
    filter_value: str | None = None
    # The index's sort key: a cursor's position must name it (by-object sorts by S3's sequencer).
    range_attribute: str = "created_sort"

    @property
    def fingerprint(self) -> list[Any]:
        return [self.index, self.hash_value, self.filter_attribute, self.filter_value]


class ResultsQueries:
    def __init__(self, table_name: str, client: Any):
        self.table_name = table_name
        self._client = client

    def get(self, record_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self.table_name, Key={"pk": {"S": record_id}, "sk": {"S": RECORD_SK}}
        ).get("Item")
        return from_item(from_dynamo(item)) if item else None

    def latest_for_object(self, bucket: str, key: str) -> dict[str, Any] | None:
        page = self.object_history(bucket, key, limit=1, cursor=None)
        return page.items[0] if page.items else None

    def object_history(self, bucket: str, key: str, *, limit: int, cursor: str | None) -> Page:
        """The records of one object key, newest write first (by S3's sequencer, then time)."""
        listing = _Listing("by-object", "object_ref", f"{bucket}/{key}", range_attribute="object_sequence")
        return self._records(listing, limit=limit, cursor=cursor)

    def list(self, *, kind: str | None, status: str | None, limit: int, cursor: str | None) -> Page:
        if kind and status:
            listing = _Listing("by-kind", "kind", kind, "status", status)
        elif kind:
            listing = _Listing("by-kind", "kind", kind)
        elif status:
            listing = _Listing("by-status", "status", status)
        else:
            listing = _Listing("by-time", "sk", RECORD_SK)
        return self._records(listing, limit=limit, cursor=cursor)

    def by_plate(self, number: str, *, limit: int, cursor: str | None) -> Page:
        """Records naming this plate: found through their sighting items, then fetched whole."""
        page = self._page(_Listing("by-plate", "plate_number", number), limit=limit, cursor=cursor)
        return Page(self._records_for(page.items), page.cursor)

    def by_vin(self, vin: str, *, limit: int, cursor: str | None) -> Page:
        return self._records(_Listing("by-vin", "vin", vin), limit=limit, cursor=cursor)

    def _records(self, listing: _Listing, *, limit: int, cursor: str | None) -> Page:
        """A page of an index that holds the record items themselves."""
        page = self._page(listing, limit=limit, cursor=cursor)
        return Page([from_item(item) for item in page.items], page.cursor)

    def _page(self, listing: _Listing, *, limit: int, cursor: str | None) -> Page:
        start_key = self._start_key(cursor, listing) if cursor else None
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": listing.index,
            "KeyConditionExpression": "#h = :h",
            "ExpressionAttributeNames": {"#h": listing.hash_attribute},
            "ExpressionAttributeValues": {":h": {"S": listing.hash_value}},
            "ScanIndexForward": False,
        }
        if listing.filter_attribute:
            request["FilterExpression"] = "#f = :f"
            request["ExpressionAttributeNames"]["#f"] = listing.filter_attribute
            request["ExpressionAttributeValues"][":f"] = {"S": listing.filter_value}
        items: list[dict[str, Any]] = []
        # Read one item past the page: a cursor is only issued when another page really exists.
        while len(items) <= limit:
            if start_key:
                request["ExclusiveStartKey"] = start_key
            response = self._client.query(**request, Limit=limit + 1 - len(items))
            items.extend(from_dynamo(item) for item in response.get("Items", []))
            start_key = response.get("LastEvaluatedKey")
            if not start_key:
                break
        more = len(items) > limit
        items = items[:limit]
        next_cursor = _encode_cursor(items[-1], listing) if more else None
        return Page(items, next_cursor)

    def _start_key(self, cursor: str, listing: _Listing) -> dict[str, Any]:
        start_key = _decode_cursor(cursor, listing)
        item = self._client.get_item(
            TableName=self.table_name,
            Key={"pk": start_key["pk"], "sk": start_key["sk"]},
            ConsistentRead=True,
        ).get("Item")
        belongs = (
            item is not None
            and item.get(listing.range_attribute) == start_key[listing.range_attribute]
            and item.get(listing.hash_attribute) == {"S": listing.hash_value}
            and (listing.filter_attribute is None or item.get(listing.filter_attribute) == {"S": listing.filter_value})
        )
        if not belongs:
            raise InvalidCursor("cursor does not belong to this query")
        return start_key

    def _records_for(self, sightings: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
        ids = list(dict.fromkeys(sighting["pk"] for sighting in sightings))
        found: dict[str, dict[str, Any]] = {}
        keys = [{"pk": {"S": record_id}, "sk": {"S": RECORD_SK}} for record_id in ids]
        while keys:
            response = self._client.batch_get_item(RequestItems={self.table_name: {"Keys": keys[:100]}})
            for item in response.get("Responses", {}).get(self.table_name, []):
                record = from_item(from_dynamo(item))
                found[record["id"]] = record
            keys = keys[100:] + response.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
        return [found[record_id] for record_id in ids if record_id in found]


def _encode_cursor(item: dict[str, Any], listing: _Listing) -> str:
    position = {"pk": item["pk"], "sk": item["sk"], "c": item[listing.range_attribute]}
    payload = {"v": CURSOR_VERSION, "q": listing.fingerprint, "p": position}
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


# DynamoDB's key size limits (partition key 2048 bytes, sort key 1024 bytes): a position
# beyond them is no item of the table, and DynamoDB would refuse the lookup (a 500).
_POSITION_MAX_BYTES = {"pk": 2048, "sk": 1024, "c": 1024}


def _decode_cursor(cursor: str, listing: _Listing) -> dict[str, Any]:
    """The start key a cursor names, or InvalidCursor for anything this API did not issue.

    A cursor comes from the caller, so every shape is checked before use: base64, UTF-8, a
    JSON object with exactly the version, the query and a position of non-empty strings.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeError, ValueError, TypeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if not isinstance(payload, dict) or set(payload) != {"v", "q", "p"}:
        raise InvalidCursor("cursor is not valid")
    version, query, position = payload["v"], payload["q"], payload["p"]
    # type(...) is int: JSON's true and 1.0 compare equal to 1 but are not a version this API wrote.
    if type(version) is not int or version != CURSOR_VERSION:
        raise InvalidCursor("cursor is not valid")
    if not isinstance(position, dict) or not all(
        _is_key_part(position.get(name), name) for name in _POSITION_MAX_BYTES
    ):
        raise InvalidCursor("cursor is not valid")
    if not isinstance(query, list) or query != listing.fingerprint:
        raise InvalidCursor("cursor belongs to a different query")
    # The partition comes from the current query, never from the cursor.
    start_key = {
        "pk": {"S": position["pk"]},
        "sk": {"S": position["sk"]},
        listing.range_attribute: {"S": position["c"]},
        listing.hash_attribute: {"S": listing.hash_value},
    }
    return start_key


def _is_key_part(value: Any, name: str) -> bool:
    """A non-empty string DynamoDB accepts as this key attribute (UTF-8, within its size limit)."""
    if not isinstance(value, str) or not value:
        return False
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800") is no DynamoDB string
        return False
    return size <= _POSITION_MAX_BYTES[name]
