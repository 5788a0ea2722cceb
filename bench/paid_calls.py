"""Paid calls: what each image costs in upstream calls, and what duplicates cost.

The real handler against moto's server and the local upstream, which counts every request:
1. every sample photo uploaded once (new images);
2. every S3 event delivered again (S3 delivers at least once), one after another;
3. new images (other bytes) whose events arrive three times at once (concurrent deliveries);
4. every photo uploaded again under another key (identical content);
5. new images whose first invocation crashes between the paid call and the record (the
   crash is simulated by making the record write raise once), retried as Lambda would.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
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


NEW = "new images"
CRASHED = "new images, first invocation crashes after paying"


@dataclass
class Phase:
    name: str
    new_images: int  # images never seen before: each should cost one call
    repeats: int  # duplicate deliveries, identical contents or Lambda retries: each should cost nothing
    requests: int  # upstream requests the phase made


def _concurrently(app: Any, event: dict[str, Any], copies: int) -> None:
    threads = [threading.Thread(target=_deliver, args=(app, event)) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        if thread.is_alive():
            raise RuntimeError("a concurrent delivery did not finish within 120 s")


def run() -> Section:
    section = Section("Paid calls: upstream calls per image and per duplicate")
    images = sample_images()
    phases: list[Phase] = []
    with recognize_handler("bench_recognize_paid_calls") as bench:
        aws, upstream, app = bench.aws, bench.upstream, bench.app
        s3 = aws.client("s3")

        def phase(name: str, new_images: int, repeats: int, deliver: Any) -> None:
            before = _requests(upstream)
            deliver()
            phases.append(Phase(name, new_images, repeats, _requests(upstream) - before))

        def variants(folder: str) -> list[SampleImage]:
            """The photos as new images: other bytes (so another SHA-256), under their own prefix."""
            return [
                SampleImage(image.key.replace("/", f"/{folder}/", 1), distinct_copy(image.body, f"{folder}-{index}"))
                for index, image in enumerate(images)
            ]

        with quiet_function_output(app):
            events = [upload(s3, image, sequencer=index + 1) for index, image in enumerate(images)]
            phase(NEW, len(events), 0, lambda: [_deliver(app, event) for event in events])
            phase("every event delivered again", 0, len(events), lambda: [_deliver(app, event) for event in events])
            concurrent = [upload(s3, image, sequencer=1000 + i) for i, image in enumerate(variants("concurrent"))]
            phase(
                "new images, 3 copies of each event at once",
                len(concurrent),
                2 * len(concurrent),
                lambda: [_concurrently(app, event, 3) for event in concurrent],
            )
            again = [
                upload(s3, SampleImage(image.key.replace("/", "/again/", 1), image.body), sequencer=2000 + index)
                for index, image in enumerate(images)
            ]
            phase("identical content under another key", 0, len(again), lambda: [_deliver(app, e) for e in again])
            crashed = [upload(s3, image, sequencer=3000 + i) for i, image in enumerate(variants("retry")[:10])]
            phase(
                CRASHED,
                len(crashed),
                len(crashed),
                lambda: [_deliver_after_crash(app, event) for event in crashed],
            )
        statuses = _statuses(aws, bench.resources.refs["ResultsTable"])

    # A new image alone (no repeat in its phase) shows what one costs; every request beyond one per new
    # image, in any phase, is a repeat that was paid for.
    alone = [p for p in phases if p.name in (NEW, CRASHED)]
    per_unique = sum(p.requests for p in alone) / sum(p.new_images for p in alone)
    extra = sum(p.requests for p in phases) - sum(p.new_images for p in phases)
    repeats = sum(p.repeats for p in phases)
    section.figures = [
        Figure(
            "paid_calls_per_unique_image",
            per_unique,
            "==",
            1.0,
            digits=3,
            detail=f"{sum(p.requests for p in alone)} upstream requests for {sum(p.new_images for p in alone)} new "
            "images (some of them invoked twice after a crash)",
        ),
        Figure(
            "paid_calls_per_duplicate",
            extra / repeats,
            "==",
            0.0,
            digits=3,
            detail=f"{extra} requests beyond one per new image, over {repeats} duplicate deliveries, "
            "identical contents and retries",
        ),
    ]
    section.data = {
        "phases": [vars(p) for p in phases],
        "billed": upstream.billed(),
        "records_by_status": statuses,
    }
    section.notes = [
        "| case | new images | repeats | upstream requests |",
        "|---|---:|---:|---:|",
        *(f"| {p.name} | {p.new_images} | {p.repeats} | {p.requests} |" for p in phases),
        "Repeats: deliveries of an event already delivered (one after another, or all three copies at once "
        "while the first is still calling the upstream), the same bytes under another key, and Lambda's retry "
        "of an invocation that died after the paid call (simulated by making the record write raise once).",
        f"Records at the end: {', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}.",
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
