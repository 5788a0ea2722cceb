"""Overhead: the real handler against the AWS calls it cannot avoid.

Every sample photo goes through RecognizeFunction's handler (moto's server over HTTP, the
local upstream answering at once). The floor is the very same AWS requests - captured from
the handler in a calibration pass, byte for byte - issued directly with boto3 on fresh
state: S3 GetObject (body read), the DynamoDB reads and writes, EventBridge PutEvents.
What is left is what the pipeline adds: event parsing, the image guard, the upstream call
over HTTP, normalisation, Powertools (logs, metrics, idempotency). X-Ray tracing is off on
both sides (its patching is process-wide, so it would trace the floor's calls too); the
cold-start benchmark's first-result run has it on.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from typing import Any
from unittest import mock

import botocore.client
from botocore import xform_name

from bench.common import (
    EmulatedAws,
    Figure,
    SampleImage,
    Section,
    median,
    quiet_function_output,
    recognize_handler,
    sample_images,
    upload,
)
from vehicle_ocr.aws import AWS_CONFIG
from vehicle_ocr_local.api_gateway import LocalLambdaContext

TARGET = 1.25
ROUNDS = 7

Call = tuple[str, str, dict[str, Any]]  # service, operation, parameters


def _stage(aws: EmulatedAws, images: list[SampleImage]) -> list[dict[str, Any]]:
    """Fresh resources, every image uploaded; the S3 events to deliver."""
    aws.reset()
    s3 = aws.client("s3")
    return [upload(s3, image, sequencer=index + 1) for index, image in enumerate(images)]


def _invoke(app: Any, events: list[dict[str, Any]]) -> tuple[float, list[str]]:
    statuses = []
    with quiet_function_output(app):
        start = time.perf_counter()
        for event in events:
            context = LocalLambdaContext("RecognizeFunction", memory_limit_in_mb=512, timeout_seconds=60)
            result = app.lambda_handler(event, context)
            statuses.extend(entry["status"] for entry in result["processed"])
        elapsed = time.perf_counter() - start
    return elapsed, statuses


def _capture(app: Any, events: list[dict[str, Any]]) -> list[list[Call]]:
    """Run the handler once per event, recording every AWS request it makes (parameters included)."""
    per_event: list[list[Call]] = []
    real = botocore.client.BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        per_event[-1].append((client.meta.service_model.service_name, operation, copy.deepcopy(params)))
        return real(client, operation, params)

    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", recording), quiet_function_output(app):
        for event in events:
            per_event.append([])
            app.lambda_handler(
                event, LocalLambdaContext("RecognizeFunction", memory_limit_in_mb=512, timeout_seconds=60)
            )
    return per_event


def _replay(clients: dict[str, Any], calls: list[list[Call]]) -> float:
    """The floor: the captured requests, issued directly with boto3, in the same order."""
    start = time.perf_counter()
    for event_calls in calls:
        for service, operation, params in event_calls:
            response = getattr(clients[service], xform_name(operation))(**params)
            if operation == "GetObject":
                response["Body"].read()
    return time.perf_counter() - start


def run() -> Section:
    section = Section("Overhead: the handler against the AWS calls it makes")
    images = sample_images()
    with recognize_handler("bench_recognize_overhead") as bench:
        aws, upstream, app = bench.aws, bench.upstream, bench.app
        clients = {
            service: aws.session().client(service, config=AWS_CONFIG) for service in ("s3", "dynamodb", "events")
        }

        # Warm both paths (connections, models), and capture the handler's AWS requests.
        _invoke(app, _stage(aws, images))
        captured = _capture(app, _stage(aws, images))
        _stage(aws, images)
        _replay(clients, captured)

        handler_s, floor_s = [], []
        for _ in range(ROUNDS):  # interleaved: both see the same machine state
            events = _stage(aws, images)
            upstream.reset()
            elapsed, statuses = _invoke(app, events)
            if set(statuses) != {"SUCCEEDED"} or len(statuses) != len(images):
                raise RuntimeError(f"the handler did not succeed on every image: {Counter(statuses)}")
            if len(upstream.calls) != len(images):
                raise RuntimeError(f"expected one upstream call per image, saw {len(upstream.calls)}")
            handler_s.append(elapsed)
            _stage(aws, images)
            floor_s.append(_replay(clients, captured))

    operations = Counter(operation for event_calls in captured for _service, operation, _params in event_calls)
    per_image = {name: round(count / len(images), 2) for name, count in sorted(operations.items())}
    handler_ms = median(handler_s) * 1000 / len(images)
    floor_ms = median(floor_s) * 1000 / len(images)
    # Paired per round, then the median: the machine's speed drifts between rounds, not within one.
    ratio = median([handler / floor for handler, floor in zip(handler_s, floor_s, strict=True)])
    section.figures.append(
        Figure(
            "overhead_ratio",
            ratio,
            "<=",
            TARGET,
            detail=f"{handler_ms:.1f} ms/image through the handler vs {floor_ms:.1f} ms/image for its AWS calls alone",
        )
    )
    section.data = {
        "images": len(images),
        "rounds": ROUNDS,
        "handler_ms_per_image": round(handler_ms, 2),
        "floor_ms_per_image": round(floor_ms, 2),
        "handler_pass_s": [round(s, 3) for s in handler_s],
        "floor_pass_s": [round(s, 3) for s in floor_s],
        "aws_requests_per_image": per_image,
    }
    section.notes = [
        f"{len(images)} sample photos ({sum(i.kind == 'plate' for i in images)} plates, "
        f"{sum(i.kind != 'plate' for i in images)} licences), {ROUNDS} interleaved passes each on fresh resources; "
        "the ratio is the median of the rounds' handler/floor ratios.",
        f"Handler: {handler_ms:.1f} ms/image; floor (the same AWS requests, captured from the handler and "
        f"replayed with boto3): {floor_ms:.1f} ms/image; the pipeline adds {handler_ms - floor_ms:.1f} ms/image "
        "(event parsing, image guard, one upstream call over HTTP, normalisation, Powertools).",
        "AWS requests per image: " + ", ".join(f"{name} {count:g}" for name, count in per_image.items()) + ".",
    ]
    return section
