"""Announce outcomes: successes on EventBridge, failures on the SQS failure queue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vehicle_ocr.shapes import EVENT_SOURCE, detail_type, failure_message_attributes, success_event_detail


class PublishError(RuntimeError):
    """The outcome could not be announced; the invocation must fail so Lambda retries it."""


class Publisher:
    def __init__(self, *, events_client: Any, sqs_client: Any, event_bus_name: str, failure_queue_url: str):
        self._events = events_client
        self._sqs = sqs_client
        self._bus = event_bus_name
        self._queue_url = failure_queue_url

    def announce_success(self, record: Mapping[str, Any]) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type(record),
                    "Detail": json.dumps(success_event_detail(record), ensure_ascii=False),
                    "EventBusName": self._bus,
                    "Resources": [],
                }
            ]
        )
        # PutEvents reports per-entry failures in a 200 response rather than raising.
        if response.get("FailedEntryCount"):
            entry = (response.get("Entries") or [{}])[0]
            raise PublishError(f"EventBridge refused the event: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}")

    def report_failure(self, message: dict[str, Any]) -> None:
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(message, ensure_ascii=False),
            MessageAttributes=failure_message_attributes(message),
        )
