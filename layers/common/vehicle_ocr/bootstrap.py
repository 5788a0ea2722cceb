"""Wire the pipeline once per process (cold start): clients and the HTTP session are reused.

Importing this module (through ``vehicle_ocr.aws``) keeps the AWS SDK's loggers at WARNING.
"""

from __future__ import annotations

import boto3

from vehicle_ocr.answers import PaidAnswers
from vehicle_ocr.aws import AWS_CONFIG, quiet_sdk_loggers
from vehicle_ocr.pipeline import Pipeline
from vehicle_ocr.providers import build_recognizers
from vehicle_ocr.publishing import Publisher
from vehicle_ocr.settings import Settings
from vehicle_ocr.storage import ResultsStore
from vehicle_ocr.usage import UsageCounters

__all__ = ["AWS_CONFIG", "build_pipeline", "quiet_sdk_loggers"]


def build_pipeline(settings: Settings, *, session: boto3.Session | None = None) -> Pipeline:
    session = session or boto3.Session()
    dynamodb = session.client("dynamodb", config=AWS_CONFIG)
    answers = None
    if settings.idempotency_table:
        answers = PaidAnswers(
            table_name=settings.idempotency_table,
            client=dynamodb,
            ttl_s=settings.content_dedupe_ttl_s,
            by_content=settings.content_dedupe,
        )
    return Pipeline(
        settings=settings,
        s3_client=session.client("s3", config=AWS_CONFIG),
        store=ResultsStore(settings.results_table, dynamodb, record_retention_days=settings.record_retention_days),
        publisher=Publisher(
            events_client=session.client("events", config=AWS_CONFIG),
            sqs_client=session.client("sqs", config=AWS_CONFIG),
            event_bus_name=settings.event_bus_name,
            failure_queue_url=settings.failure_queue_url,
        ),
        recognizers=build_recognizers(settings),  # one pooled HTTP session per process
        answers=answers,
        usage=UsageCounters(settings.results_table, dynamodb),
        dynamodb_client=dynamodb,
    )
