"""The emulator writes DynamoDB's item answers itself (moto's generic serializer is most of a Scan's
time): what boto3 reads from them must be what moto's own serializer would have given."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from moto.dynamodb.responses import DynamoHandler

ITEM = {
    "pk": {"S": "record#1"},
    "sk": {"S": "RECORD"},
    "text": {"S": "沪A0762学 with spaces + plus"},
    "number": {"N": "12.50"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "list": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"inner": {"S": "x"}}}]},
    "map": {"M": {"plates": {"L": [{"M": {"number": {"S": "京B12345"}, "box": {"L": [{"N": "1"}, {"N": "2"}]}}}]}}},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "empty_map": {"M": {}},
}


def answers(client: Any, table: str) -> dict[str, Any]:
    """Every item-carrying operation the pipeline, the API and the tests use, on the same item."""
    key = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
    client.put_item(TableName=table, Item=ITEM)
    client.put_item(TableName=table, Item={"pk": ITEM["pk"], "sk": {"S": "SIGHTING#1"}})  # a second page
    responses = {
        "PutItem": client.put_item(TableName=table, Item=ITEM, ReturnValues="ALL_OLD"),
        "GetItem": client.get_item(TableName=table, Key=key),
        "GetItem missing": client.get_item(TableName=table, Key={"pk": {"S": "none"}, "sk": {"S": "RECORD"}}),
        "Query": client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": ITEM["pk"]},
        ),
        "Query page": client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": ITEM["pk"]},
            Limit=1,
        ),
        "Scan": client.scan(TableName=table),
        "Scan count": client.scan(TableName=table, Select="COUNT"),
        "UpdateItem": client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="ADD calls :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
        "UpdateItem none": client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET flag = :f",
            ExpressionAttributeValues={":f": {"BOOL": False}},
        ),
        "BatchGetItem": client.batch_get_item(RequestItems={table: {"Keys": [key]}}),
        "TransactGetItems": client.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key}}]),
        "DeleteItem": client.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD"),
    }
    for response in responses.values():
        response.pop("ResponseMetadata", None)
    return responses


@pytest.fixture
def dynamodb(moto_endpoint: str) -> tuple[Any, str]:
    client = boto3.client("dynamodb")
    table = f"answers-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return client, table


def test_item_answers_read_the_same_as_with_motos_own_serializer(dynamodb, monkeypatch):
    client, table = dynamodb
    # Given the emulator's item answers (the session's server is the local stack's)
    assert getattr(DynamoHandler.serialized, "items_as_json", False)

    # When every item operation is answered by it, then by moto's generic serializer
    fast = answers(client, table)
    monkeypatch.setattr(DynamoHandler, "serialized", DynamoHandler.serialized.generic)
    generic = answers(client, table)

    # Then boto3 reads the same from both, every attribute type included
    assert fast == generic
    assert fast["GetItem"]["Item"] == ITEM
    assert "Item" not in fast["GetItem missing"]
    assert "LastEvaluatedKey" in fast["Query page"] and "Items" not in fast["Scan count"]


def test_a_binary_attribute_is_still_answered(dynamodb):
    client, table = dynamodb
    # Given an item with a binary attribute (which only moto's serializer knows how to write)
    item = {"pk": {"S": "b"}, "sk": {"S": "RECORD"}, "blob": {"B": b"\x00\xff bytes"}}
    client.put_item(TableName=table, Item=item)
    # When it is read, Then it comes back as written
    assert client.get_item(TableName=table, Key={"pk": {"S": "b"}, "sk": {"S": "RECORD"}})["Item"] == item
    assert client.scan(TableName=table)["Items"] == [item]
