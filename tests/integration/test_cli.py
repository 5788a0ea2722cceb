"""`vehicle-ocr` as a newcomer meets it: the console script in a subprocess, real ports, real HTTP.

An ordinary mistake ends with one line on stderr that names the problem and what to do, and a
non-zero status (2: bad usage, 1: the operation failed), never a traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

VEHICLE_OCR = str(Path(sys.executable).parent / "vehicle-ocr")
SAMPLE_PLATE = ROOT / "samples" / "plates" / "001-blue-regular.jpg"


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION="us-east-1")
    return subprocess.run(  # noqa: S603 - our own console script
        [VEHICLE_OCR, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int, *names: str) -> str:
    """The exit status, a single stderr line (no traceback) that contains every one of ``names``."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An http URL on 127.0.0.1 where nothing answers: the port is held (bound) but not listening."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{holder.getsockname()[1]}"
    finally:
        holder.close()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else is listening on."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


# ------------------------------------------------------------------------------------------------ no stack running
def test_upload_without_a_running_stack_says_to_start_it(silent_endpoint):
    # Given no stack listening on the endpoint
    # When an existing image is uploaded to it
    result = run_cli("upload", str(SAMPLE_PLATE), "--kind", "plate", "--endpoint", silent_endpoint)
    # Then one line says nothing answers there and how to start the stack, and the status is 1
    assert_one_line_error(result, 1, f"nothing answers at {silent_endpoint}", "vehicle-ocr up")
    assert result.stdout == ""


def test_results_without_a_running_stack_says_to_start_it(silent_endpoint):
    # Given no query API listening
    # When the results are asked for
    result = run_cli("results", "--api", silent_endpoint)
    # Then one line names the API's address and says how to start the stack, status 1
    assert_one_line_error(result, 1, f"nothing answers at {silent_endpoint}", "vehicle-ocr up", "--api")


def test_redrive_without_a_running_stack_says_to_start_it(silent_endpoint):
    # Given no local stack listening on the endpoint
    # When failures are redriven
    result = run_cli("redrive", "--endpoint", silent_endpoint, "--timeout", "5")
    # Then one line names the endpoint and says how to start the stack, status 1
    assert_one_line_error(result, 1, f"nothing answers at {silent_endpoint}", "vehicle-ocr up", "--endpoint")


# ------------------------------------------------------------------------------------------------ bad usage
def test_upload_of_a_pattern_that_matched_nothing_is_a_usage_error(tmp_path, silent_endpoint):
    # Given a folder without images, where the shell passes `*.jpg` on as it is
    # When the README's `vehicle-ocr upload *.jpg --kind plate` runs there
    result = run_cli("upload", "*.jpg", "--kind", "plate", "--endpoint", silent_endpoint, cwd=tmp_path)
    # Then it is bad usage (status 2) and the line names the pattern, before any connection is tried
    assert_one_line_error(result, 2, "'*.jpg'", "matches nothing")


def test_upload_of_a_missing_file_names_it_and_uploads_nothing(tmp_path, silent_endpoint):
    # Given one existing image and one misspelt name
    # When both are uploaded
    result = run_cli(
        "upload", str(SAMPLE_PLATE), "car.jpg", "--kind", "plate", "--endpoint", silent_endpoint, cwd=tmp_path
    )
    # Then status 2, the missing one is named, and nothing was sent (no connection error reported)
    assert_one_line_error(result, 2, "no such file: car.jpg")
    assert result.stdout == ""


# ------------------------------------------------------------------------------------------------ ports
def test_up_on_a_taken_aws_port_names_the_port_and_the_option(taken_port):
    # Given something already listening on the AWS port
    # When the stack is started on it
    result = run_cli("up", "--aws-port", str(taken_port), "--api-port", str(free_port()), timeout=60)
    # Then it stops at once with one line naming the port and the option that picks another, status 1
    assert_one_line_error(result, 1, str(taken_port), "in use", "--aws-port")


def test_up_on_a_taken_api_port_names_the_port_and_the_option(taken_port):
    # Given something already listening on the query API's port
    # When the stack is started on it
    result = run_cli("up", "--aws-port", str(free_port()), "--api-port", str(taken_port), timeout=90)
    # Then one line names the port and --api-port, status 1 (and the stack it began is stopped: the process ended)
    assert_one_line_error(result, 1, str(taken_port), "in use", "--api-port")
