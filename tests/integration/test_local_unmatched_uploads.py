"""An upload outside the notification prefixes is logged by the local stack, not lost without a trace.

In AWS the bucket's notification filters mean RecognizeFunction never sees such an object; locally it
is not recognised either, and the stack says so in one INFO line through its logger.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import requests

from tests.conftest import make_jpeg
from tests.integration.running_up import start_up
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
    with start_up(upstream_env) as running:
        # When an image is copied outside both prefixes
        running.s3().put_object(Bucket="vehicle-ocr-images", Key="scans/car.jpg", Body=make_jpeg(seed=95))
        # Then the terminal shows the one line that says why nothing will be recognised
        assert running.wait_for_line(line_for("vehicle-ocr-images", "scans/car.jpg"), 20), "".join(running.output)
