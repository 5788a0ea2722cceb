"""`vehicle-ocr up` as a user runs it: a subprocess on free ports, ready when it says so, stopped with SIGINT."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
import requests

from tests.conftest import free_port
from tests.fakes.fixtures import environment_for
from tests.integration.test_cli import VEHICLE_OCR


class RunningUp:
    def __init__(self, aws_endpoint: str, api_url: str, output: list[str]):
        self.aws_endpoint = aws_endpoint
        self.api_url = api_url
        self.output = output

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def wait_for_line(self, text: str, timeout_s: float) -> bool:
        """Whether the stack prints a line containing ``text`` within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.output)):
                return True
            time.sleep(0.2)
        return False

    def record_of(self, key: str, timeout_s: float = 60) -> dict[str, Any]:
        """The object's record, once the stack has recognised it (polling the query API)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = requests.get(
                f"{self.api_url}/results", params={"bucket": "vehicle-ocr-images", "key": key}, timeout=10
            )
            if answer.status_code == 200:
                return answer.json()
            time.sleep(0.3)
        pytest.fail(f"no record for {key} within {timeout_s} s:\n" + "".join(self.output))


def paid_providers_at(upstream: Any) -> dict[str, str]:
    """The environment that makes `vehicle-ocr up` recognise with tianapi and apizero, both at ``upstream``."""
    return {**environment_for(upstream), "PLATE_PROVIDERS": "tianapi", "LICENSE_PROVIDERS": "apizero"}


@contextmanager
def start_up(environment: Mapping[str, str]) -> Iterator[RunningUp]:
    """`vehicle-ocr up` in a subprocess on two free ports with ``environment`` added; stopped with SIGINT."""
    aws_port, api_port = free_port(), free_port()
    env = {**os.environ, **environment, "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [VEHICLE_OCR, "up", "--aws-port", str(aws_port), "--api-port", str(api_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("`vehicle-ocr up` not ready within 60 s:\n" + "".join(output))
            if "ready" in line:
                break
        yield RunningUp(f"http://127.0.0.1:{aws_port}", f"http://127.0.0.1:{api_port}", output)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
