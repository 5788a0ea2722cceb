"""`vehicle-ocr redrive`: after a top-up, the failures re-run and the queue empties; nothing else is touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import make_jpeg
from tests.fakes.upstream import Reply
from vehicle_ocr.storage import ResultsStore
from vehicle_ocr_local.redrive import redrive

VENV_BIN = Path(sys.executable).parent


def failures(stack) -> list[dict]:
    url = stack.resources.refs["FailureQueue"]
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_redrive_after_top_up_reruns_only_the_chosen_code(running_stack, fake_upstream):
    stack = running_stack
    # Given tianapi's quota is spent for two plates (150) and one image is corrupt
    quota_spent = [make_jpeg(seed=50), make_jpeg(seed=51)]
    for image in quota_spent:
        fake_upstream.set_answer(image, Reply(code=150))
    stack.upload("plates/a.jpg", quota_spent[0])
    stack.upload("plates/b.jpg", quota_spent[1])
    stack.upload("plates/corrupt.jpg", make_jpeg(seed=52)[:-300])
    assert stack.wait_for(3, timeout_s=60) == 3
    assert failures(stack) == 3

    # When the quota is topped up and only the 150s are redriven
    for image in quota_spent:
        fake_upstream.set_answer(image, {"color": "blue", "number": "沪B00001"})
    table = stack.resources.refs["ResultsTable"]
    store = ResultsStore(table, stack.client("dynamodb"))

    def send(event):
        stack.client("sqs").send_message(QueueUrl=stack.notification_queue_url, MessageBody=json.dumps(event))

    report = redrive(
        sqs=stack.client("sqs"),
        failure_queue_url=stack.resources.refs["FailureQueue"],
        store=store,
        send=send,
        codes={"150"},
        timeout_s=60,
        poll_s=0.2,
    )

    # Then both re-ran to SUCCEEDED, their messages are gone, and the corrupt image's message stays
    assert sorted(report.outcomes.values()) == ["SUCCEEDED", "SUCCEEDED"]
    assert report.skipped == 1 and report.kept == []
    assert report.in_flight == 0  # nobody else held a message
    time.sleep(0.5)
    assert failures(stack) == 1
    records = requests.get(f"{stack.api_url}/results", params={"limit": 10}, timeout=10).json()["items"]
    assert sorted((r["source"]["key"], r["status"]) for r in records) == [
        ("plates/a.jpg", "SUCCEEDED"),
        ("plates/b.jpg", "SUCCEEDED"),
        ("plates/corrupt.jpg", "FAILED"),
    ]
    # And each upload still has exactly one record, one success event per re-run
    events = stack.client("sqs").receive_message(QueueUrl=stack.events_queue_url, MaxNumberOfMessages=10)
    assert len(events.get("Messages", [])) == 2


def test_redrive_command_against_the_local_stack(running_stack, fake_upstream):
    stack = running_stack
    # Given a failure that is still failing when redriven (quota still spent)
    image = make_jpeg(seed=53)
    fake_upstream.set_answer(image, Reply(code=150))
    stack.upload("plates/still.jpg", image)
    assert stack.wait_for(1, timeout_s=60) == 1

    # When `vehicle-ocr redrive --code 150` runs against the local stack
    result = subprocess.run(  # noqa: S603 - our own console script
        [
            str(VENV_BIN / "vehicle-ocr"),
            "redrive",
            "--code",
            "150",
            "--endpoint",
            stack.aws_endpoint,
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"},
        timeout=120,
    )

    # Then the re-run reached a terminal outcome (FAILED again with 150): the old message is
    # deleted, the new one is in the queue, and the upload still has one record
    assert result.returncode == 0, result.stdout + result.stderr
    assert "redriven 1: 0 SUCCEEDED, 1 FAILED again" in result.stdout
    assert "in flight" not in result.stdout  # nobody else held a message
    assert failures(stack) == 1
    records = requests.get(f"{stack.api_url}/results", timeout=10).json()["items"]
    assert [(r["source"]["key"], r["error"]["code"]) for r in records] == [("plates/still.jpg", "150")]


def test_redrive_right_after_someone_read_the_queue_says_what_is_in_flight(running_stack, fake_upstream):
    stack = running_stack
    sqs, queue_url = stack.client("sqs"), stack.resources.refs["FailureQueue"]
    # Given a failure whose message someone has just received (it is invisible for the queue's VisibilityTimeout)
    image = make_jpeg(seed=54)
    fake_upstream.set_answer(image, Reply(code=150))
    stack.upload("plates/held.jpg", image)
    assert stack.wait_for(1, timeout_s=60) == 1
    visibility_timeout = int(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"][
            "VisibilityTimeout"
        ]
    )
    assert len(sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]) == 1

    # When `vehicle-ocr redrive` runs right after
    result = subprocess.run(  # noqa: S603 - our own console script
        [str(VENV_BIN / "vehicle-ocr"), "redrive", "--endpoint", stack.aws_endpoint, "--timeout", "5"],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"},
        timeout=60,
    )

    # Then it redrove nothing, and says one message is in flight and when it comes back
    assert result.returncode == 0, result.stdout + result.stderr
    assert "redriven 0:" in result.stdout
    assert "1 message is in flight" in result.stdout
    assert f"VisibilityTimeout of {visibility_timeout} s" in result.stdout
    # And the message was left alone: still in the queue, the upload still FAILED with its code
    assert failures(stack) == 1
    records = requests.get(f"{stack.api_url}/results", timeout=10).json()["items"]
    assert [(r["source"]["key"], r["error"]["code"]) for r in records] == [("plates/held.jpg", "150")]
