"""The local stack retries a failed asynchronous invocation as Lambda does: same event, same request id.

The pipeline relies on it: the record an invocation wrote and could not announce is announced by that
invocation's own retry (it names the request id that wrote it), and by no concurrent duplicate delivery.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from vehicle_ocr_local.stack import LocalStack, StackConfig


class FailingTwice:
    """A RecognizeFunction stand-in: fails its first two invocations, remembers every request id."""

    def __init__(self) -> None:
        self.request_ids: list[str] = []
        self.metrics = SimpleNamespace(clear_metrics=lambda: None)

    def lambda_handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.request_ids.append(context.aws_request_id)
        if len(self.request_ids) < 3:
            raise RuntimeError("the invocation died after writing its record")
        return {"processed": []}


def test_retries_of_one_invocation_keep_its_request_id_and_another_invocation_gets_its_own():
    # Given a local stack whose function fails twice, then succeeds
    stack = LocalStack(StackConfig(retry_delays_s=(0.01, 0.01), quiet=True))
    function = FailingTwice()
    stack.recognize = function  # type: ignore[assignment]

    # When one S3 event is invoked asynchronously, and then another
    stack._invoke_async({"Records": []})
    stack._invoke_async({"Records": []})

    # Then the first took three attempts under one request id, and the second ran under a new one
    first, second = function.request_ids[:3], function.request_ids[3]
    assert len(function.request_ids) == 4
    assert len(set(first)) == 1
    assert second not in first
    assert stack.stats.retries == 2
