"""QueryFunction: the query API behind API Gateway (AWS_IAM on every route).

Thin on purpose: routes, validation and the error shape live in ``vehicle_ocr.query_api``.
"""

from __future__ import annotations

import gc

gc.disable()  # for the cold start only, up to the end of it below (why: there)

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from vehicle_ocr.aws import AWS_CONFIG
from vehicle_ocr.errors import ConfigurationError
from vehicle_ocr.queries import ResultsQueries
from vehicle_ocr.query_api import QueryApi
from vehicle_ocr.usage import Prices, UsageReport

logger = Logger()
# Only what the function uses: patching every library X-Ray knows costs cold-start time for nothing.
tracer = Tracer(patch_modules=("botocore",))

_table = os.environ.get("RESULTS_TABLE", "").strip()
if not _table:
    raise ConfigurationError("environment variable RESULTS_TABLE is required but not set")
_dynamodb = boto3.client("dynamodb", config=AWS_CONFIG)
api = QueryApi(ResultsQueries(_table, _dynamodb), UsageReport(_table, _dynamodb, Prices.from_env()))
# The end of the cold start: what it made lives as long as the process (why: functions/recognize/app.py).
gc.freeze()
gc.enable()


# Responses carry owner and address for licences: neither the event nor the response is logged.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.handle(event, context)
