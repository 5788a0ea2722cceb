"""The OpenAPI document is generated from the code, served by the API, and committed as a file."""

from __future__ import annotations

import json

from scripts.generate_openapi import OPENAPI_FILE, render
from tests.conftest import load_event


def test_committed_document_equals_the_generated_one():
    # Given the routes in vehicle_ocr.query_api / When the document is generated
    # Then it is exactly docs/openapi.json (run `make openapi` after changing a route)
    assert OPENAPI_FILE.read_text(encoding="utf-8") == render()


def test_api_serves_the_same_document(query_app, lambda_context):
    response = query_app.lambda_handler(load_event("apigw-openapi.json"), lambda_context)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))


def test_document_covers_every_route_with_iam_security():
    document = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    assert sorted(document["paths"]) == ["/plates/{number}", "/results", "/results/{id}", "/vehicles/{vin}"]
    assert document["security"] == [{"sigv4": []}]
    limit = next(p for p in document["paths"]["/results"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)
