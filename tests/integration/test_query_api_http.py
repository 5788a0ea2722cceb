"""The real query handler served over HTTP by the local API Gateway adapter, routes read from template.yaml."""

from __future__ import annotations

from urllib.parse import quote

import requests

from tests.integration.conftest import PLATE
from vehicle_ocr_local.api_gateway import LocalApiServer, routes_from_template
from vehicle_ocr_local.template import load_template


def test_curl_style_requests_reach_the_real_handler(query_app, seeded):
    # Given the query function served locally with the routes template.yaml gives it
    routes = routes_from_template(load_template(), "QueryFunction")
    assert {route.resource for route in routes} == {
        "/results/{id}",
        "/results",
        "/plates/{number}",
        "/vehicles/{vin}",
        "/usage",
        "/openapi.json",
    }
    with LocalApiServer(query_app.lambda_handler, routes) as server:
        # When a client asks for a plate in a loose spelling, percent-encoded by the client
        plate = requests.get(f"{server.url}/plates/{quote('沪a·0762学')}", params={"limit": 3}, timeout=10)
        # And for a record by id, and with a bad parameter
        record_id = plate.json()["items"][0]["id"]
        record = requests.get(f"{server.url}/results/{record_id}", timeout=10)
        bad = requests.get(f"{server.url}/results", params={"limit": "0"}, timeout=10)
        openapi = requests.get(f"{server.url}/openapi.json", timeout=10)

    # Then the answers are the handler's, with docs/contract.md's shapes and status codes
    assert plate.status_code == 200
    assert len(plate.json()["items"]) == 3 and plate.json()["cursor"]
    assert record.status_code == 200 and record.json()["id"] == record_id
    assert PLATE in str(record.json()) or record.json()["kind"] == "vehicle_license"
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_PARAMETER"
    assert openapi.status_code == 200 and "/plates/{number}" in openapi.json()["paths"]
