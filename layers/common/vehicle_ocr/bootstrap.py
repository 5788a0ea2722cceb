"""Wire the pipeline once per process (cold start): clients and the HTTP session are reused.

Importing this module also keeps the AWS SDK's loggers at WARNING (``quiet_sdk_loggers``):
both functions import it before they create a client.
"""

from __future__ import annotations

import logging

import boto3
from botocore.config import Config

from vehicle_ocr.answers import PaidAnswers
from vehicle_ocr.pipeline import Pipeline
from vehicle_ocr.providers import build_recognizers
from vehicle_ocr.publishing import Publisher
from vehicle_ocr.settings import Settings
from vehicle_ocr.storage import ResultsStore

# The AWS SDK and its HTTP stack. At DEBUG they log every request's parameters and body, and
# the results table's PutItem carries a licence's owner and address: personal data that must
# never reach a log (DESIGN.md), whatever level the root logger or LOG_LEVEL asks for.
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


def quiet_sdk_loggers() -> None:
    """Raise the AWS SDK's loggers, and any of their children given a lower level, to WARNING.

    Children left at NOTSET inherit WARNING from their parent; a level above WARNING is kept.
    Idempotent: the local stack calls it again for every function it loads.
    """
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (
            isinstance(logger, logging.Logger)
            and name.startswith(tuple(f"{parent}." for parent in SDK_LOGGERS))
            and logging.NOTSET < logger.level < logging.WARNING
        ):
            logger.setLevel(logging.WARNING)


quiet_sdk_loggers()

# Throttling and transient AWS errors are retried by botocore (standard mode: backoff with jitter).
AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


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
        store=ResultsStore(settings.results_table, dynamodb),
        publisher=Publisher(
            events_client=session.client("events", config=AWS_CONFIG),
            sqs_client=session.client("sqs", config=AWS_CONFIG),
            event_bus_name=settings.event_bus_name,
            failure_queue_url=settings.failure_queue_url,
        ),
        recognizers=build_recognizers(settings),  # one pooled HTTP session per process
        answers=answers,
    )
