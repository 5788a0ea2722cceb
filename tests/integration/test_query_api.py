"""The query API end to end: API Gateway proxy events (events/apigw-*.json) through the real
QueryFunction handler, against a moto table holding records of both kinds written by the
pipeline's own storage code."""

from __future__ import annotations

import base64
import copy
import json
from urllib.parse import quote, unquote

import pytest

from tests.conftest import Stack, fresh_stack, load_event, load_function_module
from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE
from tests.integration.conftest import OTHER_PLATE, OWNER, PLATE, VIN, Seeded, seed_records
from vehicle_ocr import api_schema
from vehicle_ocr.queries import ResultsQueries


# Every test here only reads: one stack, seeded once, and one warm QueryFunction serve the whole module
# (these fixtures stand in for the per-test ones of the conftest files).
@pytest.fixture(scope="module")
def stack(moto_endpoint: str) -> Stack:
    return fresh_stack(moto_endpoint)


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Seeded:
    return seed_records(stack)


@pytest.fixture(scope="module")
def query_app(stack: Stack):
    with pytest.MonkeyPatch.context() as patch:
        for name, value in stack.resources.function_environment("QueryFunction").items():
            patch.setenv(name, value)
        yield load_function_module("query", "query_app")


def api_event(name: str, *, path: str | None = None, query: list[tuple[str, str]] | None = None) -> dict:
    """A sample event from events/, re-aimed the way API Gateway would fill it for another request."""
    event = copy.deepcopy(load_event(name))
    if path is not None:
        resource_segments = event["resource"].split("/")
        raw_segments = path.split("/")
        event["path"] = path
        event["requestContext"]["path"] = f"/{event['requestContext']['stage']}{path}"
        if event["pathParameters"]:
            event["pathParameters"] = {
                segment[1:-1]: unquote(raw)
                for segment, raw in zip(resource_segments, raw_segments, strict=True)
                if segment.startswith("{")
            }
    if query is not None:
        event["queryStringParameters"] = dict(query) or None
        multi: dict[str, list[str]] = {}
        for name_, value in query:
            multi.setdefault(name_, []).append(value)
        event["multiValueQueryStringParameters"] = multi or None
    return event


def call(app, context, event) -> tuple[int, dict]:
    response = app.lambda_handler(event, context)
    headers = {
        **(response.get("headers") or {}),
        **{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()},
    }
    assert headers["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def all_pages(app, context, name, *, path=None, query=()) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        params = list(query) + ([("cursor", cursor)] if cursor else [])
        status, body = call(app, context, api_event(name, path=path, query=params))
        assert status == 200, body
        pages.append([item["id"] for item in body["items"]])
        cursor = body["cursor"]
        if cursor is None:
            return pages


# --- GET /results/{id} ------------------------------------------------------------------------


def test_get_result_by_id_returns_the_record(query_app, lambda_context, seeded):
    # Given a stored licence record
    record = seeded.all[10]
    # When it is fetched by id
    status, body = call(query_app, lambda_context, api_event("apigw-get-result.json", path=f"/results/{record['id']}"))
    # Then the API returns exactly the record, owner included (the API is the one place for it)
    assert status == 200
    assert body == record
    assert body["vehicle_license"]["owner"] == OWNER


def test_unknown_id_is_404_and_malformed_id_is_400(query_app, lambda_context, seeded):
    status, body = call(query_app, lambda_context, load_event("apigw-get-result.json"))
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    status, body = call(query_app, lambda_context, api_event("apigw-get-result.json", path="/results/not-an-id"))
    assert (status, body["error"]["code"]) == (400, "INVALID_PARAMETER")
    assert body["error"]["message"].startswith("id:")


# --- GET /results?bucket=&key= ------------------------------------------------------------------


def test_result_by_object_is_the_latest_version(query_app, lambda_context, seeded):
    # Given two versions of plates/cam1/沪A 1.jpg were recognised
    newest = seeded.all[-1]
    # When asked for that object
    status, body = call(
        query_app,
        lambda_context,
        api_event("apigw-result-by-object.json", query=[("bucket", seeded.bucket), ("key", "plates/cam1/沪A 1.jpg")]),
    )
    # Then the newest record is returned
    assert status == 200
    assert body["id"] == newest["id"]
    assert [p["number"] for p in body["plates"]] == [OTHER_PLATE]


def test_object_history_pages_by_the_index_own_order(stack, seeded):
    # Given two versions of plates/cam1/沪A 1.jpg were recognised
    queries = ResultsQueries(stack.table, stack.client("dynamodb"))
    # When its history is read one record per page
    first = queries.object_history(seeded.bucket, "plates/cam1/沪A 1.jpg", limit=1, cursor=None)
    second = queries.object_history(seeded.bucket, "plates/cam1/沪A 1.jpg", limit=1, cursor=first.cursor)
    # Then the newest write comes first, its cursor (on the by-object index's own sort key) leads
    # to the older one, and there the history ends
    assert [record["id"] for record in first.items + second.items] == [seeded.all[-1]["id"], seeded.all[-2]["id"]]
    assert second.cursor is None


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ([("bucket", "vehicle-ocr-images"), ("key", "plates/none.jpg")], 404, "NOT_FOUND"),
        ([("bucket", "vehicle-ocr-images")], 400, "INVALID_PARAMETER"),
        ([("key", "plates/a.jpg")], 400, "INVALID_PARAMETER"),
        ([("bucket", "vehicle-ocr-images"), ("key", "plates/a.jpg"), ("kind", "plate")], 400, "INVALID_PARAMETER"),
    ],
)
def test_object_lookup_errors(query, status, code, query_app, lambda_context, seeded):
    got_status, body = call(query_app, lambda_context, api_event("apigw-result-by-object.json", query=query))
    assert (got_status, body["error"]["code"]) == (status, code)
    assert body["error"]["message"]


# --- GET /results?kind=&status=&limit=&cursor= ------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ([], lambda r: True),
        ([("kind", "plate")], lambda r: r["kind"] == "plate"),
        ([("kind", "vehicle_license")], lambda r: r["kind"] == "vehicle_license"),
        ([("status", "FAILED")], lambda r: r["status"] == "FAILED"),
        ([("kind", "plate"), ("status", "SUCCEEDED")], lambda r: r["kind"] == "plate" and r["status"] == "SUCCEEDED"),
        ([("kind", "plate"), ("status", "FAILED")], lambda r: r["kind"] == "plate" and r["status"] == "FAILED"),
    ],
)
@pytest.mark.parametrize("limit", [1, 3, 100])
def test_listing_pages_through_everything_newest_first(query, keep, limit, query_app, lambda_context, seeded):
    # When every page is fetched with the cursor of the previous one
    pages = all_pages(query_app, lambda_context, "apigw-list-results.json", query=[*query, ("limit", str(limit))])
    # Then the pages hold every matching record once, newest first, full pages but the last, none empty
    assert [record_id for page in pages for record_id in page] == seeded.newest_first(keep)
    assert all(len(page) == limit for page in pages[:-1])
    assert all(pages)


def test_sample_listing_event(query_app, lambda_context, seeded):
    status, body = call(query_app, lambda_context, load_event("apigw-list-results.json"))
    assert status == 200
    assert [item["id"] for item in body["items"]] == seeded.newest_first(
        lambda r: r["kind"] == "plate" and r["status"] == "SUCCEEDED"
    )[:2]
    assert body["cursor"]


def test_cursor_cannot_be_used_for_another_query(query_app, lambda_context, seeded):
    # Given a cursor from the plate listing
    _, body = call(
        query_app, lambda_context, api_event("apigw-list-results.json", query=[("kind", "plate"), ("limit", "2")])
    )
    cursor = body["cursor"]
    # When it is replayed against another listing, or tampered with
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload["q"][1] = "vehicle_license"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    payload["q"][1] = "plate"
    payload["p"]["pk"] = "f" * 32  # a position at an item that does not exist
    invented = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    attempts = [
        [("kind", "vehicle_license"), ("cursor", cursor)],
        [("status", "FAILED"), ("cursor", cursor)],
        [("kind", "vehicle_license"), ("cursor", forged)],
        [("kind", "plate"), ("cursor", invented)],
        [("cursor", "not-a-cursor")],
        [("cursor", base64.urlsafe_b64encode(b'{"v":1}').decode())],
    ]
    # Then each is refused with 400 INVALID_CURSOR
    for query in attempts:
        status, body = call(query_app, lambda_context, api_event("apigw-list-results.json", query=query))
        assert (status, body["error"]["code"]) == (400, "INVALID_CURSOR"), query


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _cursor(payload) -> str:
    return _b64(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


_POSITION = {"pk": "f" * 32, "sk": "RECORD", "c": "2026-11-01T08:00:01.000Z#" + "f" * 32}
_QUERY = ["by-kind", "plate", None, None]

# Cursors that decode to something, but to nothing this API issued: each must be a 400, never a 500.
FORGED_CURSORS = {
    "not base64": "!!!!",
    "base64 of a truncated payload": "eyJ2Ijox",
    "non-ASCII characters": "沪A0762学",
    "not UTF-8": _b64(b"\xff\xfe\xfd"),
    "not JSON": _b64(b"cursor"),
    "JSON list": _cursor([1, _QUERY, _POSITION]),
    "JSON string": _cursor("cursor"),
    "JSON number": _cursor(1),
    "JSON null": _cursor(None),
    "no q": _cursor({"v": 1, "p": _POSITION}),
    "no p": _cursor({"v": 1, "q": _QUERY}),
    "no v": _cursor({"q": _QUERY, "p": _POSITION}),
    "v a string": _cursor({"v": "1", "q": _QUERY, "p": _POSITION}),
    "v true": _cursor({"v": True, "q": _QUERY, "p": _POSITION}),
    "v a float": _cursor({"v": 1.0, "q": _QUERY, "p": _POSITION}),
    "v of another version": _cursor({"v": 2, "q": _QUERY, "p": _POSITION}),
    "q a string": _cursor({"v": 1, "q": "by-kind", "p": _POSITION}),
    "q a dict": _cursor({"v": 1, "q": {"index": "by-kind"}, "p": _POSITION}),
    "q unhashable parts": _cursor({"v": 1, "q": [["by-kind"], {"plate": 1}, None, None], "p": _POSITION}),
    "p a list": _cursor({"v": 1, "q": _QUERY, "p": ["f" * 32, "RECORD", "c"]}),
    "p a string": _cursor({"v": 1, "q": _QUERY, "p": "f" * 32}),
    "p without pk": _cursor({"v": 1, "q": _QUERY, "p": {"sk": "RECORD", "c": "x"}}),
    "pk a number": _cursor({"v": 1, "q": _QUERY, "p": {**_POSITION, "pk": 7}}),
    "pk a dict (an attribute value)": _cursor({"v": 1, "q": _QUERY, "p": {**_POSITION, "pk": {"S": "x"}}}),
    "sk empty": _cursor({"v": 1, "q": _QUERY, "p": {**_POSITION, "sk": ""}}),
    "c null": _cursor({"v": 1, "q": _QUERY, "p": {**_POSITION, "c": None}}),
    "pk beyond DynamoDB's key size": _cursor({"v": 1, "q": _QUERY, "p": {**_POSITION, "pk": "x" * 2100}}),
    "sk beyond DynamoDB's key size": _cursor({"v": 1, "q": _QUERY, "p": {**_POSITION, "sk": "x" * 1100}}),
    "pk a lone surrogate": _b64(
        b'{"v":1,"q":["by-kind","plate",null,null],"p":{"pk":"\\ud800","sk":"RECORD","c":"x"}}'
    ),
    "cursor of another query": _cursor({"v": 1, "q": ["by-vin", VIN, None, None], "p": _POSITION}),
}


@pytest.mark.parametrize("forged", list(FORGED_CURSORS.values()), ids=list(FORGED_CURSORS))
def test_forged_cursor_is_400_never_500(forged, query_app, lambda_context, seeded):
    # Given a cursor this API never issued: not base64, not JSON, JSON of the wrong shape or
    # types, a field missing, or a well-formed cursor of another query
    requests = [
        api_event("apigw-list-results.json", query=[("kind", "plate"), ("cursor", forged)]),
        api_event("apigw-list-results.json", query=[("cursor", forged)]),
        api_event("apigw-plate-encoded.json", path="/plates/" + quote(PLATE), query=[("cursor", forged)]),
        api_event("apigw-vehicle.json", path="/vehicles/" + VIN, query=[("cursor", forged)]),
    ]
    for event in requests:
        # When any listing is requested with it
        status, body = call(query_app, lambda_context, event)
        # Then the API refuses it with 400 INVALID_CURSOR and a message, never a 500
        assert (status, body["error"]["code"]) == (400, "INVALID_CURSOR"), (event["path"], body)
        assert set(body["error"]) == {"code", "message"}
        assert body["error"]["message"].startswith("cursor")


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ([("limit", "0")], "limit"),
        ([("limit", "101")], "limit"),
        ([("limit", "ten")], "limit"),
        ([("kind", "car")], "kind"),
        ([("status", "DONE")], "status"),
        ([("cursor", "x" * 5000)], "cursor"),
    ],
)
def test_bad_parameter_is_400_naming_it(query, named, query_app, lambda_context, seeded):
    status, body = call(query_app, lambda_context, api_event("apigw-list-results.json", query=query))
    assert status == 400
    assert body["error"]["code"] == "INVALID_PARAMETER"
    assert body["error"]["message"].startswith(f"{named}:")


def test_sample_bad_limit_event_is_400(query_app, lambda_context, seeded):
    status, body = call(query_app, lambda_context, load_event("apigw-bad-limit.json"))
    assert status == 400
    assert "less than or equal to 100" in body["error"]["message"]


def test_repeated_parameter_is_refused_rather_than_guessed(query_app, lambda_context, seeded):
    # Given ?kind=plate&kind=vehicle_license (API Gateway passes both values on)
    status, body = call(query_app, lambda_context, load_event("apigw-repeated-query.json"))
    # Then the API does not pick one silently: 400 naming the parameter
    assert (status, body["error"]["code"]) == (400, "INVALID_PARAMETER")
    assert body["error"]["message"].startswith("kind:")


# --- GET /plates/{number} ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/plates/" + quote(PLATE),  # percent-encoded, as REST APIs deliver it
        "/plates/" + PLATE,  # raw UTF-8
        "/plates/" + quote("沪a·0762学"),
        "/plates/" + quote("沪A 0762学"),
        "/plates/" + quote("沪Ａ０７６２学"),  # full-width
        "/plates/" + quote("沪A.O762学"),  # dot and a letter O for zero
    ],
)
def test_every_spelling_of_a_plate_finds_sightings_and_licences(path, query_app, lambda_context, seeded):
    names_plate = lambda r: (  # noqa: E731
        r["status"] == "SUCCEEDED"
        and (
            (r["kind"] == "plate" and PLATE in [p["number"] for p in r["plates"]])
            or (r["kind"] == "vehicle_license" and r["vehicle_license"]["plate_number"] == PLATE)
        )
    )
    pages = all_pages(query_app, lambda_context, "apigw-plate-encoded.json", path=path, query=[("limit", "4")])
    ids = [record_id for page in pages for record_id in page]
    assert ids == seeded.newest_first(names_plate)
    kinds = {record["kind"] for record in seeded.all if record["id"] in ids}
    assert kinds == {"plate", "vehicle_license"}


def test_sample_plate_events(query_app, lambda_context, seeded):
    _, encoded = call(query_app, lambda_context, load_event("apigw-plate-encoded.json"))
    status, dotted = call(query_app, lambda_context, load_event("apigw-plate-dotted.json"))
    assert status == 200
    assert [item["id"] for item in dotted["items"]] == [item["id"] for item in encoded["items"]][:5]


def test_plate_that_normalises_to_nothing_is_400(query_app, lambda_context, seeded):
    status, body = call(query_app, lambda_context, api_event("apigw-plate-encoded.json", path="/plates/%C2%B7%20"))
    assert (status, body["error"]["code"]) == (400, "INVALID_PARAMETER")


# --- GET /vehicles/{vin} --------------------------------------------------------------------------------


def test_vehicle_records_by_vin_in_any_case(query_app, lambda_context, seeded):
    expected = seeded.newest_first(lambda r: r["kind"] == "vehicle_license" and r["vehicle_license"]["vin"] == VIN)
    pages = all_pages(
        query_app, lambda_context, "apigw-vehicle.json", path="/vehicles/" + VIN.lower(), query=[("limit", "2")]
    )
    assert [record_id for page in pages for record_id in page] == expected
    status, body = call(query_app, lambda_context, load_event("apigw-vehicle.json"))
    assert status == 200
    assert [item["id"] for item in body["items"]] == expected


def test_bad_vin_is_400(query_app, lambda_context, seeded):
    status, body = call(query_app, lambda_context, api_event("apigw-vehicle.json", path="/vehicles/" + quote("车架号")))
    assert (status, body["error"]["code"]) == (400, "INVALID_PARAMETER")


# --- OpenAPI, unknown routes, internal errors, schema, logs ----------------------------------------------


def test_unknown_route_is_404(query_app, lambda_context, seeded):
    event = api_event("apigw-openapi.json", path="/nothing/here")
    status, body = call(query_app, lambda_context, event)
    assert (status, body["error"]["code"]) == (404, "ROUTE_NOT_FOUND")


def test_internal_error_is_500_without_internals(lambda_context, stack, monkeypatch):
    # Given a QueryFunction whose table is gone (DynamoDB answers ResourceNotFoundException)
    for name, value in stack.resources.function_environment("QueryFunction").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RESULTS_TABLE", "vehicle-ocr-results-deleted")
    query_app = load_function_module("query", "query_app_without_table")
    # When a listing is requested
    status, body = call(query_app, lambda_context, load_event("apigw-list-results.json"))
    # Then a 500 that names no table, exception or stack frame
    assert status == 500
    assert body["error"]["code"] == "INTERNAL_ERROR"
    text = json.dumps(body)
    assert "vehicle-ocr-results-deleted" not in text and "ResourceNotFound" not in text and "Traceback" not in text


def test_every_returned_record_matches_the_documented_schema(query_app, lambda_context, seeded):
    pages = all_pages(query_app, lambda_context, "apigw-list-results.json", query=[("limit", "100")])
    assert sum(len(page) for page in pages) == len(seeded.all)
    _, body = call(query_app, lambda_context, api_event("apigw-list-results.json", query=[("limit", "100")]))
    api_schema.RecordPage.model_validate(body)


def test_query_logs_never_carry_owner_or_address(query_app, lambda_context, seeded, capture_logs):
    logs = capture_logs(query_app)
    record = seeded.all[10]
    status, body = call(query_app, lambda_context, api_event("apigw-get-result.json", path=f"/results/{record['id']}"))
    assert status == 200 and body["vehicle_license"]["owner"] == OWNER
    text = logs.getvalue()
    assert OWNER not in text
    assert DEFAULT_VEHICLE_LICENSE["address"] not in text
