"""Paid calls: what each image costs in upstream calls, and what duplicates cost.

The real handler against moto's server and the local upstream, which counts every request:
1. every sample photo uploaded once (unique images);
2. every S3 event delivered again (S3 delivers at least once), one after another;
3. the same again, three copies of each event at once (concurrent deliveries);
4. every photo uploaded again under another key (identical content);
5. a Lambda retry after a crash between the paid call and the record (the crash is
   simulated by making the record write raise once).
"""

from __future__ import annotations

import threading
from typing import Any

from bench.common import (
    EmulatedAws,
    Figure,
    SampleImage,
    Section,
    distinct_copy,
    quiet_function_output,
    recognize_handler,
    sample_images,
    upload,
)
from tests.fakes.upstream import FakeUpstream
from vehicle_ocr_local.api_gateway import LocalLambdaContext


def _context() -> LocalLambdaContext:
    return LocalLambdaContext("RecognizeFunction", memory_limit_in_mb=512, timeout_seconds=60)


def _deliver(app: Any, event: dict[str, Any]) -> bool:
    """One asynchronous invocation with Lambda's two retries; True when an attempt succeeded."""
    for _attempt in range(3):
        try:
            app.lambda_handler(event, _context())
        except Exception:  # noqa: S112 - what Lambda counts as a failed invocation, then retries
            continue
        return True
    return False


def _requests(upstream: FakeUpstream) -> int:
    return len(upstream.calls)


def run() -> Section:
    section = Section("Paid calls: upstream calls per image and per duplicate")
    images = sample_images()
    with recognize_handler("bench_recognize_paid_calls") as bench:
        aws, upstream, resources, app = bench.aws, bench.upstream, bench.resources, bench.app
        s3 = aws.client("s3")
        counts: dict[str, tuple[int, int]] = {}  # phase → (deliveries, upstream requests)

        with quiet_function_output(app):
            # 1. Unique images.
            events = [upload(s3, image, sequencer=index + 1) for index, image in enumerate(images)]
            before = _requests(upstream)
            delivered = sum(_deliver(app, event) for event in events)
            counts["unique"] = (delivered, _requests(upstream) - before)

            # 2. Every event delivered again.
            before = _requests(upstream)
            delivered = sum(_deliver(app, event) for event in events)
            counts["duplicate delivery"] = (delivered, _requests(upstream) - before)

            # 3. Three copies of each event at once.
            before = _requests(upstream)
            results: list[bool] = []
            for event in events:
                threads = [threading.Thread(target=lambda e=event: results.append(_deliver(app, e))) for _ in range(3)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=120)
            counts["concurrent duplicate delivery"] = (sum(results), _requests(upstream) - before)

            # 4. The same photos under other keys.
            copies = [SampleImage(image.key.replace("/", "/again/", 1), image.body) for image in images]
            before = _requests(upstream)
            delivered = sum(
                _deliver(app, upload(s3, image, sequencer=1000 + index)) for index, image in enumerate(copies)
            )
            counts["identical content, other key"] = (delivered, _requests(upstream) - before)

            # 5. A retry after the paid call: the first attempt crashes before recording (simulated).
            retried = [
                SampleImage(f"plates/retry/{index}.jpg", distinct_copy(image.body, f"retry-{index}"))
                for index, image in enumerate(images[:10])
            ]
            before = _requests(upstream)
            delivered = sum(
                _deliver_after_crash(app, upload(s3, image, sequencer=2000 + index))
                for index, image in enumerate(retried)
            )
            # Each of these is a unique image: its one paid call is expected, a second one is not.
            counts["new image, Lambda retry after paying"] = (delivered, _requests(upstream) - before)

        statuses = _statuses(aws, resources.refs["ResultsTable"])

    unique_phases = ("unique", "new image, Lambda retry after paying")
    unique_deliveries = sum(counts[phase][0] for phase in unique_phases)
    unique_requests = sum(counts[phase][1] for phase in unique_phases)
    per_unique = unique_requests / unique_deliveries
    duplicates = {phase: value for phase, value in counts.items() if phase not in unique_phases}
    duplicate_deliveries = sum(deliveries for deliveries, _ in duplicates.values())
    duplicate_requests = sum(requests for _, requests in duplicates.values())
    per_duplicate = duplicate_requests / duplicate_deliveries
    section.figures = [
        Figure(
            "paid_calls_per_unique_image",
            per_unique,
            "==",
            1.0,
            detail=f"{unique_requests} upstream requests for {unique_deliveries} unique images",
        ),
        Figure(
            "paid_calls_per_duplicate",
            per_duplicate,
            "==",
            0.0,
            detail=f"{duplicate_requests} upstream requests for {duplicate_deliveries} duplicate deliveries/contents",
        ),
    ]
    section.data = {
        "phases": {phase: {"deliveries": d, "upstream_requests": r} for phase, (d, r) in counts.items()},
        "billed": upstream.billed(),
        "records_by_status": statuses,
    }
    section.notes = [
        "| case | deliveries | upstream requests |",
        "|---|---:|---:|",
        *(f"| {phase} | {d} | {r} |" for phase, (d, r) in counts.items()),
        "The retry row: new images whose first invocation crashed after the paid call; each was invoked twice.",
        f"Records at the end: {', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))} "
        f"({len(images) * 2 + len(retried)} uploads).",
    ]
    return section


def _deliver_after_crash(app: Any, event: dict[str, Any]) -> int:
    """First attempt dies after the paid call returned, before the record is written; Lambda retries."""
    store = app.pipeline._store
    real_create = store.create

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated crash between the paid call and the record")

    store.create = crash
    try:
        app.lambda_handler(event, _context())
    except RuntimeError:
        pass  # the failed attempt that Lambda retries
    finally:
        store.create = real_create
    return int(_deliver(app, event))


def _statuses(aws: EmulatedAws, table: str) -> dict[str, int]:
    from vehicle_ocr.storage import RECORD_SK, from_dynamo

    statuses: dict[str, int] = {}
    for page in aws.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            record = from_dynamo(item)
            if record["sk"] == RECORD_SK:
                statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    return statuses
