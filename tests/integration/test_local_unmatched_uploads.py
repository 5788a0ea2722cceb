"""An upload outside the notification prefixes is logged by the local stack, not lost without a trace.

In AWS the bucket's notification filters mean RecognizeFunction never sees such an object; locally it
is not recognised either, and the stack says so in one INFO line through its logger.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import requests

from tests.conftest import free_port, make_jpeg
from vehicle_ocr_local.stack import LocalStack, StackConfig

VENV_BIN = Path(sys.executable).parent
STACK_LOGGER = "vehicle_ocr_local.stack"


def line_for(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key} matches no notification prefix: not recognised (as in AWS)"


def test_uploads_no_notification_matches_are_logged_once_each(upstream_env, caplog):
    # Given a running stack whose log is captured
    caplog.set_level(logging.INFO, logger=STACK_LOGGER)
    config = StackConfig(aws_port=0, api_port=0, environment=upstream_env, concurrency=2, quiet=True)
    with LocalStack(config) as stack:
        bucket = stack.config.bucket
        # When objects go outside both prefixes (one differs only in case), and one into each prefix
        outside = ["receipts/not-ours.jpg", "Plates/upper case.jpg", "沪A 1.jpg"]
        for seed, key in enumerate(outside):
            stack.upload(key, make_jpeg(seed=80 + seed))
        stack.upload("plates/ours.jpg", make_jpeg(seed=90))
        stack.upload("vehicle-licenses/ours.jpg", make_jpeg(seed=91))
        assert stack.wait_for(2, timeout_s=60) == 2

        # Then each object outside the prefixes gets exactly one INFO line from the stack's logger
        def lines() -> list[str]:
            return [
                record.getMessage()
                for record in caplog.records
                if record.name == STACK_LOGGER and "matches no notification prefix" in record.getMessage()
            ]

        deadline = time.monotonic() + 20
        while len(lines()) < len(outside) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # one more receive cycle: no duplicate lines, none for the delivered objects
        items = requests.get(f"{stack.api_url}/results", timeout=10).json()["items"]
        recognised = [item["source"]["key"] for item in items]
    assert sorted(lines()) == sorted(line_for(bucket, key) for key in outside)
    assert all(
        record.levelno == logging.INFO for record in caplog.records if "matches no notification" in record.message
    )
    # And those objects were not recognised, the others were
    assert sorted(recognised) == ["plates/ours.jpg", "vehicle-licenses/ours.jpg"]


def test_up_command_prints_the_line_for_an_upload_outside_the_prefixes(upstream_env):
    # Given a running `vehicle-ocr up`
    aws_port, api_port = free_port(), free_port()
    env = {**os.environ, **upstream_env, "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(VENV_BIN / "vehicle-ocr"), "up", "--aws-port", str(aws_port), "--api-port", str(api_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen: list[str] = []

    def wait_for_line(text: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and process.poll() is None:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            if text in seen[-1]:
                return True
        return False

    try:
        assert wait_for_line("ready", 60), "".join(seen)
        # When an image is copied outside both prefixes
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{aws_port}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        s3.put_object(Bucket="vehicle-ocr-images", Key="scans/car.jpg", Body=make_jpeg(seed=95))
        # Then the terminal shows the one line that says why nothing will be recognised
        assert wait_for_line(line_for("vehicle-ocr-images", "scans/car.jpg"), 20), "".join(seen)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            pytest.fail("`vehicle-ocr up` did not stop on SIGTERM")
