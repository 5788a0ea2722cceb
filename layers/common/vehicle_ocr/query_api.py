"""The query API's routes (Powertools REST event handler), validation and error shape.

Routes and parameters are declared once, here; Powertools validates requests against them
and generates the OpenAPI document from them. Errors are docs/contract.md's
``{"error": {"code", "message"}}``: 400 for bad input, 404 for none, 500 without internals.
"""

# No `from __future__ import annotations`: Powertools reads the route annotations at runtime.
import json
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote, unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from vehicle_ocr import api_schema
from vehicle_ocr.normalize.plates import canonical_plate_number
from vehicle_ocr.normalize.vin import normalize_vin
from vehicle_ocr.queries import InvalidCursor, ResultsQueries
from vehicle_ocr.shapes import utc_now
from vehicle_ocr.usage import InvalidRange, UsageReport, day_range

logger = Logger(child=True)
router = APIGatewayRouter()

API_TITLE = "vehicle-ocr query API"
API_VERSION = "1.0.0"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Characters Powertools' route patterns accept besides word characters; everything else in a
# path is percent-encoded first, so "沪a·0762学" and "%E6%B2%AA..." reach the same route.
_PATH_SAFE = "/-._~()'!*:@,;=+&$"

_RESPONSES_RECORD: dict[int, OpenAPIResponse] = {
    200: {"description": "The record", "content": {"application/json": {"model": api_schema.Record}}},
    400: {"description": "Bad input", "content": {"application/json": {"model": api_schema.ApiError}}},
    404: {"description": "No such record", "content": {"application/json": {"model": api_schema.ApiError}}},
}
_RESPONSES_PAGE: dict[int, OpenAPIResponse] = {
    200: {"description": "A page, newest first", "content": {"application/json": {"model": api_schema.RecordPage}}},
    400: {"description": "Bad input", "content": {"application/json": {"model": api_schema.ApiError}}},
}

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}")]
Cursor = Annotated[
    str | None, Query(min_length=1, max_length=4096, description="The `cursor` of the previous page, unchanged")
]


class BadRequest(Exception):
    """The request's parameters are wrong in a way the route annotations cannot express."""


class NotFound(Exception):
    """No record answers the request."""


def _queries() -> ResultsQueries:
    return router.context["queries"]


def _usage() -> UsageReport:
    return router.context["usage"]


def _page(page: Any) -> dict[str, Any]:
    return {"items": page.items, "cursor": page.cursor}


@router.get(
    "/results/<id>",
    summary="One record by id",
    responses=_RESPONSES_RECORD,
    tags=["results"],
)
def get_result(
    id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Record id (32 hexadecimal characters)")],
) -> dict:
    record = _queries().get(id)
    if record is None:
        raise NotFound(f"no record with id {id}")
    return record


@router.get(
    "/results",
    summary="The latest record of an object (bucket and key), or records newest first",
    description=(
        "With `bucket` and `key`: the latest record for that object (404 if none). "
        "Otherwise a page of records, newest first, optionally of one `kind` and `status`."
    ),
    responses={**_RESPONSES_PAGE, 404: _RESPONSES_RECORD[404]},
    tags=["results"],
)
def list_results(
    bucket: Annotated[str | None, Query(min_length=3, max_length=63, description="Bucket of the object")] = None,
    key: Annotated[str | None, Query(min_length=1, max_length=1024, description="Decoded object key")] = None,
    kind: Annotated[api_schema.Kind | None, Query(description="Only records of this kind")] = None,
    status: Annotated[api_schema.Status | None, Query(description="Only records with this status")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> dict:
    if bucket is not None or key is not None:
        if bucket is None or key is None:
            raise BadRequest("bucket and key must be given together")
        if kind or status or cursor or limit != DEFAULT_LIMIT:
            raise BadRequest(
                "bucket and key select one object; they cannot be combined with kind, status, limit or cursor"
            )
        record = _queries().latest_for_object(bucket, key)
        if record is None:
            raise NotFound(f"no record for s3://{bucket}/{key}")
        return record
    return _page(_queries().list(kind=kind, status=status, limit=limit, cursor=cursor))


@router.get(
    "/plates/<number>",
    summary="Every record naming a plate: plate sightings and vehicle licences, newest first",
    description="The number is normalised first: `沪a·0762学`, `沪A 0762学` and `沪A0762学` are the same plate.",
    responses=_RESPONSES_PAGE,
    tags=["plates"],
)
def list_plate_records(
    number: Annotated[str, Path(min_length=1, max_length=200, description="Plate number, any common spelling")],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> dict:
    canonical = canonical_plate_number(unquote(number))
    if not 2 <= len(canonical) <= 12:
        raise BadRequest("number: not a plate number after normalisation")
    return _page(_queries().by_plate(canonical, limit=limit, cursor=cursor))


@router.get(
    "/vehicles/<vin>",
    summary="Vehicle-licence records for a VIN, newest first",
    responses=_RESPONSES_PAGE,
    tags=["vehicles"],
)
def list_vehicle_records(
    vin: Annotated[str, Path(min_length=1, max_length=64, description="Vehicle identification number")],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> dict:
    canonical = normalize_vin(unquote(vin))
    if not canonical or not canonical.isascii() or not canonical.isalnum() or len(canonical) > 17:
        raise BadRequest("vin: must be at most 17 letters and digits")
    return _page(_queries().by_vin(canonical, limit=limit, cursor=cursor))


_DAY = r"^\d{4}-\d{2}-\d{2}$"


@router.get(
    "/usage",
    summary="Paid upstream calls per day and provider, with reuse, fallbacks and money",
    description=(
        "Per UTC day from `from` to `to` (inclusive, at most 366 days; default the 30 days ending today) and per "
        "provider: `calls` sent, `billed` (answers received: each one is billed), `possibly_billed` (no answer "
        "after the request went out), `reused` (answers served from the paid-answer store instead of paying), "
        "`fallbacks` (the provider could not answer and the next of the chain was asked), and `cost`: billed x "
        "the price per call (template parameters TianapiPricePerCall, ApizeroPricePerCall) in `currency`."
    ),
    responses={
        200: {"description": "Usage per day", "content": {"application/json": {"model": api_schema.UsageReport}}},
        400: _RESPONSES_PAGE[400],
    },
    tags=["usage"],
)
def get_usage(
    from_: Annotated[str | None, Query(alias="from", pattern=_DAY, description="First day, YYYY-MM-DD (UTC)")] = None,
    to: Annotated[str | None, Query(pattern=_DAY, description="Last day, YYYY-MM-DD (UTC), default today")] = None,
) -> dict:
    try:
        start, end = day_range(from_, to, today=utc_now().date())
    except InvalidRange as error:
        raise BadRequest(str(error)) from None
    return _usage().report(start, end)


def _error(status: int, code: str, message: str) -> Response:
    body = {"error": {"code": code, "message": message}}
    return Response(status_code=status, content_type="application/json", body=json.dumps(body, ensure_ascii=False))


def _describe(errors: Any) -> str:
    """'limit: Input should be less than or equal to 100; kind: ...' (names and rules, never the input)."""
    parts = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body")]
        parts.append(f"{'.'.join(location) or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def create_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(
        enable_validation=True, serializer=partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
    )
    app.include_router(router)

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response:
        return _error(400, "INVALID_PARAMETER", _describe(error.errors()))

    @app.exception_handler(BadRequest)
    def bad_request(error: BadRequest) -> Response:
        return _error(400, "INVALID_PARAMETER", str(error))

    @app.exception_handler(InvalidCursor)
    def invalid_cursor(error: InvalidCursor) -> Response:
        return _error(400, "INVALID_CURSOR", str(error))

    @app.exception_handler(NotFound)
    def not_found(error: NotFound) -> Response:
        return _error(404, "NOT_FOUND", str(error))

    @app.not_found
    def no_route(_: Exception) -> Response:
        return _error(404, "ROUTE_NOT_FOUND", "no such route; see /openapi.json")

    @app.exception_handler(Exception)
    def internal(error: Exception) -> Response:
        logger.exception("query failed")
        return _error(500, "INTERNAL_ERROR", "internal error; the request id identifies it in the logs")

    document: dict[str, str] = {}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi():
        if "json" not in document:
            document["json"] = openapi_document(app)
        return Response(status_code=200, content_type="application/json", body=document["json"])

    return app


def openapi_document(app: APIGatewayRestResolver) -> str:
    """The OpenAPI document, generated from the routes above."""
    return app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description=(
            "Results of vehicle-ocr: licence plates and vehicle licences recognised from images uploaded to S3. "
            "Every route requires AWS IAM authentication (SigV4)."
        ),
        servers=[
            Server(url="/v1", description="API Gateway stage v1 (see the stack output QueryApiUrl)"),
            Server(url="/", description="the local stack (vehicle-ocr up)"),
        ],
        security_schemes={
            "sigv4": APIKey(
                name="Authorization",
                in_=APIKeyIn.header,  # type: ignore[call-arg]  # pydantic's alias for the keyword "in"
                description="AWS Signature Version 4 (API Gateway AWS_IAM authorisation)",
            )
        },
        security=[{"sigv4": []}],
    )


class QueryApi:
    """One resolver per process; the queries object is handed to the routes per invocation."""

    def __init__(self, queries: ResultsQueries, usage: UsageReport | None = None):
        self.queries = queries
        self.usage = usage
        self.app = create_app()

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        path = event.get("path")
        if isinstance(path, str):
            event = {**event, "path": quote(unquote(path), safe=_PATH_SAFE)}
        # The routes read their context through the module's one router, which follows the resolver that
        # included it last: with more than one QueryApi in a process (tests, local tools), point it at ours.
        router.api_resolver = self.app
        self.app.append_context(queries=self.queries, usage=self.usage)
        return self.app.resolve(event, context)
