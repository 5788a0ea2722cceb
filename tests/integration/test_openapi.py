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
    assert sorted(document["paths"]) == ["/plates/{number}", "/results", "/results/{id}", "/usage", "/vehicles/{vin}"]
    assert document["security"] == [{"sigv4": []}]
    limit = next(p for p in document["paths"]["/results"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)


def test_the_document_describes_the_record_the_writer_builds():
    # Given the record's one typed model (vehicle_ocr.shapes), which the normalisers and the writer return
    from typing import NotRequired, get_origin

    from typing_extensions import get_type_hints

    from vehicle_ocr import shapes

    document = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    # When the document's schemas are read
    for name in ("Record", "Source", "Plate", "VehicleLicense", "RecordError", "FallbackStep"):
        model = getattr(shapes, name)
        schema = schemas[name]
        # Then each has exactly the model's fields, the same required ones, and nothing more
        hints = get_type_hints(model, include_extras=True)
        assert set(schema["properties"]) == set(hints), name
        required = {field for field, hint in hints.items() if get_origin(hint) is not NotRequired}
        assert set(schema.get("required", [])) == required, name
        assert schema["additionalProperties"] is False, name
