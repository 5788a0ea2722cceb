"""RecognizeFunction: S3 ObjectCreated events → one record and one announcement per object.

Thin on purpose: parse the event, hand it to the shared ``vehicle_ocr`` package.
"""

from __future__ import annotations

import gc

gc.disable()  # for the cold start only, up to the end of it below (why: there)

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from vehicle_ocr.bootstrap import build_pipeline
from vehicle_ocr.s3_events import parse_s3_event
from vehicle_ocr.settings import Settings
from vehicle_ocr.usage import UsageTally

logger = Logger()
# Only what the function uses: patching every library X-Ray knows costs cold-start time for nothing.
tracer = Tracer(patch_modules=("botocore", "requests"))
metrics = Metrics()

settings = Settings.from_env()  # fails the cold start loudly, naming what is missing
pipeline = build_pipeline(settings)
# All the cold start made (modules, clients, parsed API models) lives as long as the process: the
# cyclic collector walked that growing heap again and again for nothing (~45 ms of the recognize
# function's cold start, bench: cold start). Frozen, it also stays out of every later collection.
# The garbage it leaves (~500 objects on the built layer) is frozen with the rest: collecting it first
# would cost a full pass over everything, 35-60 ms. A cold start that raises leaves the collector off,
# in a process Lambda then discards.
gc.freeze()
gc.enable()


@logger.inject_lambda_context(log_event=False)  # the event is safe, but keys and sizes are logged per object
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = parse_s3_event(event)
    metrics.add_metric(name="ObjectsReceived", unit=MetricUnit.Count, value=len(parsed.objects))
    pipeline.register_lambda_context(context)  # in-progress answers expire with this invocation
    usage = UsageTally()  # also added to the day's counters in the results table (GET /usage)
    outcomes = pipeline.process_event(
        parsed,
        remaining_s=lambda: context.get_remaining_time_in_millis() / 1000,
        usage=usage,
        # Lambda's retries keep the request id: the retry of an invocation that wrote a record announces it.
        request_id=context.aws_request_id,
    )
    for outcome in outcomes:
        if outcome.status:
            metrics.add_metric(name=f"Recognition{outcome.status.title()}", unit=MetricUnit.Count, value=1)
    # What the paid APIs cost: every call, and the calls that got no answer but may have been billed.
    metrics.add_metric(name="UpstreamCalls", unit=MetricUnit.Count, value=sum(o.upstream_calls for o in outcomes))
    if possibly_billed := sum(o.possibly_billed for o in outcomes):
        metrics.add_metric(name="UpstreamPossiblyBilledCalls", unit=MetricUnit.Count, value=possibly_billed)
    for provider, code in (step for o in outcomes for step in o.fallbacks):
        # One metric per provider and code: which provider could not answer, and why.
        with single_metric(name="ProviderFallbacks", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="provider", value=provider)
            metric.add_dimension(name="code", value=code)
    for provider, counts in usage.counts.items():
        # Per provider: answers billed and answers reused from the paid-answer store instead of paying.
        for name, counter in (("UpstreamBilledAnswers", "billed"), ("UpstreamReusedAnswers", "reused")):
            if counts[counter]:
                with single_metric(name=name, unit=MetricUnit.Count, value=counts[counter]) as metric:
                    metric.add_dimension(name="provider", value=provider)
    if parsed.malformed:
        metrics.add_metric(name="MalformedEventRecords", unit=MetricUnit.Count, value=len(parsed.malformed))
    return {
        "processed": [
            {"id": o.record_id, "status": o.status, "outcome": o.detail, "error_code": o.error_code} for o in outcomes
        ],
        "malformed": len(parsed.malformed),
    }
