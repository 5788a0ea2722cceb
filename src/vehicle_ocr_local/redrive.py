"""`vehicle-ocr redrive`: re-run failed uploads from the failure queue once their cause is fixed.

For each failure message (optionally only some codes), an S3-shaped event for the same
object version is sent the way S3 would send it: to the function asynchronously (AWS) or to
the local stack's notification queue. The event carries a redrive marker, which lets the
pipeline replace the upload's FAILED record (never a SUCCEEDED one) with the new outcome.
A message is deleted only once its re-run has reached a terminal outcome: the record was
announced again after the redrive started. Anything else stays in the queue for next time.

Messages someone else has just received (``aws sqs receive-message``, another redrive) are
invisible and cannot be redriven: the report counts them, with the queue's visibility timeout,
so that "redriven 0" does not read as "nothing to do".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from vehicle_ocr.s3_events import REDRIVE_MARKER
from vehicle_ocr.storage import ResultsStore

# How long a message stays invisible to other consumers while its re-run is under way.
VISIBILITY_S = 900


@dataclass
class RedriveReport:
    redriven: list[str] = field(default_factory=list)  # record ids whose re-run reached a terminal outcome
    outcomes: dict[str, str] = field(default_factory=dict)  # record id → SUCCEEDED or the new error code
    kept: list[str] = field(default_factory=list)  # messages left in the queue, with why
    skipped: int = 0  # messages whose code was not selected
    # Before this pass received anything: messages invisible because another reader holds them
    # (SQS ApproximateNumberOfMessagesNotVisible), and the queue's VisibilityTimeout in seconds,
    # within which they come back unless the reader asked for a longer one. None: not readable.
    in_flight: int | None = None
    visibility_timeout_s: int | None = None


def redrive_event(message: dict[str, Any], *, message_id: str) -> dict[str, Any]:
    """The S3 ObjectCreated event S3 sent for this object version, plus the redrive marker."""
    obj: dict[str, Any] = {"key": quote_plus(message["key"], safe="/"), "eTag": message.get("etag") or ""}
    if message.get("version_id"):
        obj["versionId"] = message["version_id"]
    return {
        REDRIVE_MARKER: {"message_id": message_id, "failed_at": message.get("failed_at")},
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                # When the upload was made, at the latest: the erasure markers compare it with when a subject
                # was erased, so a redrive can never write back a subject erased after this upload failed.
                "eventTime": message.get("failed_at") or datetime.now(UTC).isoformat(),
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": message["bucket"]}, "object": obj},
            }
        ],
    }


def in_flight(sqs: Any, queue_url: str) -> tuple[int | None, int | None]:
    """(messages invisible now, the queue's VisibilityTimeout); (None, None) without sqs:GetQueueAttributes."""
    from botocore.exceptions import ClientError

    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible", "VisibilityTimeout"]
        )["Attributes"]
    except ClientError:
        return None, None
    return int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)), int(attributes.get("VisibilityTimeout", 30))


def receive(sqs: Any, queue_url: str, *, limit: int) -> Iterable[dict[str, Any]]:
    received = 0
    while received < limit:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - received),
            VisibilityTimeout=VISIBILITY_S,
            WaitTimeSeconds=1,
        ).get("Messages", [])
        if not batch:
            return
        for message in batch:
            received += 1
            yield message


def redrive(
    *,
    sqs: Any,
    failure_queue_url: str,
    store: ResultsStore,
    send: Callable[[dict[str, Any]], None],
    codes: set[str] | None = None,
    ids: set[str] | None = None,
    limit: int = 1000,
    timeout_s: float = 600,
    poll_s: float = 1.0,
    on_progress: Callable[[str], None] = lambda line: None,
) -> RedriveReport:
    """Re-run the selected failures (by ``codes``, or ``ids``: record ids); delete each message once its re-run ends."""
    report = RedriveReport()
    report.in_flight, report.visibility_timeout_s = in_flight(sqs, failure_queue_url)
    selected: list[tuple[dict[str, Any], dict[str, Any]]] = []
    not_selected: list[str] = []
    # First take every message (they stay invisible meanwhile), so that neither the unselected
    # ones nor the new failure messages of the re-runs are received twice in this pass.
    for message in receive(sqs, failure_queue_url, limit=limit):
        body = json.loads(message["Body"])
        code = body.get("error", {}).get("code")
        if (codes and code not in codes) or (ids and body.get("id") not in ids):
            not_selected.append(message["ReceiptHandle"])
        elif code == "MALFORMED_EVENT" or not body.get("key") or not body.get("bucket"):
            report.kept.append(f"{body.get('id')}: {code} names no object that can be re-run")
        else:
            selected.append((message, body))
    for receipt in not_selected:
        sqs.change_message_visibility(QueueUrl=failure_queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
    report.skipped = len(not_selected)

    pending: dict[str, tuple[str, str]] = {}  # record id → (receipt handle, started_at)
    for message, body in selected:
        started_at = datetime.now(UTC).isoformat()
        send(redrive_event(body, message_id=message["MessageId"]))
        pending[body["id"]] = (message["ReceiptHandle"], started_at)
        on_progress(f"re-running {body['key']} ({body['error']['code']})")

    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for record_id, (receipt, started_at) in list(pending.items()):
            stored = store.load(record_id)
            if stored is None or not stored.notified_at or stored.notified_at < started_at:
                continue
            sqs.delete_message(QueueUrl=failure_queue_url, ReceiptHandle=receipt)
            outcome = stored.record["status"]
            if outcome == "FAILED":
                outcome = stored.record["error"]["code"]
            report.redriven.append(record_id)
            report.outcomes[record_id] = outcome
            on_progress(f"{stored.record['source']['key']}: {outcome}")
            del pending[record_id]
        if pending:
            time.sleep(poll_s)
    report.kept.extend(f"{record_id}: no terminal outcome within {timeout_s:.0f} s" for record_id in pending)
    return report
