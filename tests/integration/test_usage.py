"""Usage counting: every paid call per provider and UTC day, with reuses and fallbacks, read back by GET /usage.

The recognition function runs against the fake upstream (which counts the calls it bills) and the emulated
table; GET /usage goes through the real QueryFunction handler.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import apply_environment, load_event, load_function_module, make_jpeg
from tests.fakes.upstream import Reply
from tests.integration.test_query_api import api_event, call
from tests.integration.test_recognize_events import stage_event
from vehicle_ocr.errors import ConfigurationError
from vehicle_ocr.shapes import utc_now
from vehicle_ocr.usage import InvalidRange, Prices, UsageTally, day_range

ROOT = Path(__file__).resolve().parents[2]


def usage_event(**query: str) -> dict:
    event = api_event("apigw-list-results.json", query=list(query.items()))
    event["resource"] = event["path"] = "/usage"
    event["requestContext"]["resourcePath"] = "/usage"
    event["requestContext"]["path"] = f"/{event['requestContext']['stage']}/usage"
    return event


def process(stack, app, context, event_name: str, key: str, body: bytes) -> None:
    event = load_event(event_name)
    event["Records"][0]["s3"]["object"]["key"] = key
    app.lambda_handler(stage_event(stack, event, {key: body}), context)


def test_usage_equals_what_the_upstream_billed_with_reuses_and_a_fallback(
    stack, recognize_env, lambda_context, fake_upstream, query_app, monkeypatch
):
    # Given the plate chain tianapi,local and the template's prices (tianapi 0.05 CNY a call); the recognise
    # function loaded with its own environment (query_app's, its service name included, was applied last)
    apply_environment(monkeypatch, {**recognize_env, "PLATE_PROVIDERS": "tianapi,local"})
    app = load_function_module("recognize", "recognize_app_usage")
    photos = [make_jpeg(seed) for seed in range(3)]

    # When three plate photos are paid for, one of them is uploaded again under another key (reused),
    for index, photo in enumerate(photos):
        process(stack, app, lambda_context, "s3-put-plate.json", f"plates/usage/{index}.jpg", photo)
    process(stack, app, lambda_context, "s3-put-plate.json", "plates/usage/again.jpg", photos[0])
    # one finds tianapi out of quota (150) and falls back to the offline engine,
    fake_upstream.script("tianapi", [Reply(code=150)])
    sample = (ROOT / "samples" / "plates" / "001-blue-regular.jpg").read_bytes()
    process(stack, app, lambda_context, "s3-put-plate.json", "plates/usage/fallback.jpg", sample)
    # and one vehicle licence is paid for
    process(stack, app, lambda_context, "s3-put-vehicle-license.json", "vehicle-licenses/usage.jpg", make_jpeg(9))
    today = utc_now().date().isoformat()
    status, body = call(query_app, lambda_context, usage_event(**{"from": today, "to": today}))

    # Then GET /usage counts what the upstream itself billed, per provider, with the reuse and the fallback
    assert status == 200, body
    (day,) = body["days"]
    providers = {entry["provider"]: entry for entry in day["providers"]}
    sent = {name: sum(call_.provider == name for call_ in fake_upstream.calls) for name in ("tianapi", "apizero")}
    assert providers["tianapi"]["billed"] == fake_upstream.billed("tianapi") == 3
    assert providers["tianapi"]["calls"] == sent["tianapi"] == 4
    assert (providers["tianapi"]["reused"], providers["tianapi"]["fallbacks"]) == (1, 1)
    assert providers["apizero"]["billed"] == fake_upstream.billed("apizero") == 1
    assert providers["apizero"]["calls"] == sent["apizero"]
    assert providers["local"]["calls"] == 1 and providers["local"]["cost"] == 0
    # and money is billed calls x price per call
    assert providers["tianapi"]["cost"] == pytest.approx(3 * 0.05)
    assert body["totals"]["billed"] == fake_upstream.billed() and body["currency"] == "CNY"
    assert body["totals"]["cost"] == pytest.approx(float(3 * Decimal("0.05")))
    # and the counters stay out of every listing
    status, listing = call(query_app, lambda_context, api_event("apigw-list-results.json", query=[("limit", "100")]))
    assert status == 200 and len(listing["items"]) == len(stack.records()) == 6


def test_usage_is_one_update_per_provider_per_invocation(stack, recognize_app, lambda_context, fake_upstream):
    # Given one S3 event naming two plate photos
    event = load_event("s3-put-multiple-records.json")
    requests: list[dict] = []
    client = recognize_app.pipeline._usage._client
    real_update = client.update_item

    def counted(**request):
        requests.append(request)
        return real_update(**request)

    recognize_app.pipeline._usage._client = type("Counting", (), {"update_item": staticmethod(counted)})()
    try:
        # When the invocation pays for every object it names
        recognize_app.lambda_handler(stage_event(stack, event), lambda_context)
    finally:
        recognize_app.pipeline._usage._client = client

    # Then the counters were written once per provider asked, not once per call
    providers = {request["Key"]["sk"]["S"].rsplit("#", 1)[1] for request in requests}
    assert len(requests) == len(providers)
    assert sum(int(r["ExpressionAttributeValues"][":billed"]["N"]) for r in requests) == fake_upstream.billed()


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"from": "2026-13-01"}, "YYYY-MM-DD"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "after"),
        ({"to": "x"}, "to"),
    ],
)
def test_a_bad_range_is_400_naming_the_mistake(query, named, stack, query_app, lambda_context):
    # Given a stack, when GET /usage is asked for a range that is not one
    status, body = call(query_app, lambda_context, usage_event(**query))

    # Then 400 INVALID_PARAMETER says what is wrong
    assert status == 400
    assert body["error"]["code"] == "INVALID_PARAMETER" and named in body["error"]["message"]


def test_empty_days_are_reported_as_zeros_so_a_chart_has_every_day(stack, query_app, lambda_context):
    # Given nothing was ever asked, when a week is read
    status, body = call(query_app, lambda_context, usage_event(**{"from": "2026-01-01", "to": "2026-01-07"}))

    # Then every day is there, with zero calls and zero cost
    assert status == 200
    assert [day["day"] for day in body["days"]] == [f"2026-01-0{n}" for n in range(1, 8)]
    assert all(day["billed"] == 0 and day["cost"] == 0 for day in body["days"])
    assert json.dumps(body["price_per_call"]) == json.dumps({"apizero": 0.0, "tianapi": 0.05})


def test_ranges_and_prices_refuse_what_they_cannot_mean():
    # Given a default range, and ranges and prices that make no sense, then the defaults hold and the rest is refused
    assert day_range(None, None, today=date(2026, 3, 31)) == (date(2026, 3, 2), date(2026, 3, 31))
    with pytest.raises(InvalidRange):
        day_range("2025-01-01", "2026-12-31", today=date(2026, 3, 31))
    with pytest.raises(ConfigurationError, match="TIANAPI_PRICE_PER_CALL"):
        Prices.from_env({"TIANAPI_PRICE_PER_CALL": "-1"})
    tally = UsageTally()
    with pytest.raises(ValueError, match="unknown usage counter"):
        tally.add("tianapi", "refunds")
