"""`vehicle-ocr` as a newcomer meets it: the console script in a subprocess, real ports, real HTTP.

An ordinary mistake ends with one line on stderr that names the problem and what to do, and a
non-zero status (2: bad usage, 1: the operation failed), never a traceback.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, make_jpeg
from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE
from vehicle_ocr_local.stack import LocalStack, StackConfig

VEHICLE_OCR = str(Path(sys.executable).parent / "vehicle-ocr")
SAMPLE_PLATE = ROOT / "samples" / "plates" / "001-blue-regular.jpg"


# A command with nothing to talk to says so at once, not after botocore's retries (half a minute before).
PROMPTLY_S = 15


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
    result = run_cli("upload", str(SAMPLE_PLATE), "--kind", "plate", "--endpoint", silent_endpoint, timeout=PROMPTLY_S)
    # Then one line says nothing answers there and how to start the stack, and the status is 1
    assert_one_line_error(result, 1, f"nothing answers at {silent_endpoint}", "vehicle-ocr up")
    assert result.stdout == ""


def test_results_without_a_running_stack_says_to_start_it(silent_endpoint):
    # Given no query API listening
    # When the results are asked for
    result = run_cli("results", "--api", silent_endpoint, timeout=PROMPTLY_S)
    # Then one line names the API's address and says how to start the stack, status 1
    assert_one_line_error(result, 1, f"nothing answers at {silent_endpoint}", "vehicle-ocr up", "--api")


def test_redrive_without_a_running_stack_says_to_start_it(silent_endpoint):
    # Given no local stack listening on the endpoint
    # When failures are redriven
    result = run_cli("redrive", "--endpoint", silent_endpoint, "--timeout", "5", timeout=PROMPTLY_S)
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


# ------------------------------------------------------------------------------------------------ results
OWNER, ADDRESS = DEFAULT_VEHICLE_LICENSE["owner"], DEFAULT_VEHICLE_LICENSE["address"]


@pytest.fixture
def recognised(upstream_env, monkeypatch) -> Iterator[LocalStack]:
    """A running local stack (providers: the local upstream) that has recognised a plate and a
    vehicle licence, and failed a corrupt image."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    config = StackConfig(aws_port=0, api_port=0, environment=upstream_env, concurrency=2, quiet=True)
    with LocalStack(config) as stack:
        stack.upload("plates/gate 1/car.jpg", make_jpeg(seed=61))
        stack.upload("vehicle-licenses/front.jpg", make_jpeg(seed=62))
        stack.upload("plates/broken.jpg", make_jpeg(seed=63)[:-300])
        assert stack.wait_for(3, timeout_s=60) == 3
        yield stack


def test_results_piped_is_a_plain_table_without_personal_data(recognised):
    # Given a stack that recognised a plate and a licence and failed one image
    # When `vehicle-ocr results` writes into a pipe (not a terminal)
    result = run_cli("results", "--api", recognised.api_url)

    # Then it is a plain-text table: a header, then one line per record
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["object", "kind", "status", "result"]
    assert len(lines) == 4, result.stdout
    by_object = {line.split("  ")[0].strip(): line for line in lines[1:]}
    assert sorted(by_object) == ["plates/broken.jpg", "plates/gate 1/car.jpg", "vehicle-licenses/front.jpg"]
    assert "IMAGE_CORRUPT" in by_object["plates/broken.jpg"] and "FAILED" in by_object["plates/broken.jpg"]
    assert "沪A12345" in by_object["plates/gate 1/car.jpg"] and "SUCCEEDED" in by_object["plates/gate 1/car.jpg"]
    assert "LSVAU218XN2183294" in by_object["vehicle-licenses/front.jpg"]
    # And it is neither JSON nor coloured, and names no owner or address
    assert not result.stdout.lstrip().startswith(("[", "{")) and "\x1b[" not in result.stdout
    assert OWNER not in result.stdout and ADDRESS not in result.stdout


def test_results_filters_and_limits_the_table(recognised):
    # Given the same stack
    # When only failures are asked for, and then only the newest record
    failed = run_cli("results", "--api", recognised.api_url, "--status", "FAILED")
    newest = run_cli("results", "--api", recognised.api_url, "--limit", "1")
    # Then each table holds just those rows
    assert failed.returncode == 0 and newest.returncode == 0, failed.stderr + newest.stderr
    assert [line.split()[:3] for line in failed.stdout.splitlines()[1:]] == [["plates/broken.jpg", "plate", "FAILED"]]
    assert len(newest.stdout.splitlines()) == 2


def test_results_json_has_every_field_only_when_asked(recognised):
    # Given the same stack
    # When `vehicle-ocr results --json` runs
    result = run_cli("results", "--api", recognised.api_url, "--json")
    # Then stdout is the records as JSON, every field, the licence's owner and address included
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert sorted(record["source"]["key"] for record in records) == [
        "plates/broken.jpg",
        "plates/gate 1/car.jpg",
        "vehicle-licenses/front.jpg",
    ]
    (licence,) = [record for record in records if record["kind"] == "vehicle_license"]
    assert licence["vehicle_license"]["owner"] == OWNER
    assert licence["vehicle_license"]["address"] == ADDRESS


# ------------------------------------------------------------------------------------------------ version, README
def test_version_is_the_installed_package_version():
    # Given the installed package
    # When `vehicle-ocr --version` runs
    result = run_cli("--version")
    # Then it prints the package's version and exits 0
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"vehicle-ocr {importlib.metadata.version('vehicle-ocr')}"
    assert "unknown" not in result.stdout


def test_version_without_package_metadata_is_unknown():
    # Given a run where the package's metadata cannot be found (a tree that was never installed)
    program = (
        "import importlib.metadata as m, sys\n"
        "found = m.version\n"
        "def version(name):\n"
        "    if name == 'vehicle-ocr': raise m.PackageNotFoundError(name)\n"
        "    return found(name)\n"
        "m.version = version\n"
        "from vehicle_ocr_local.cli import main\n"
        "sys.exit(main(['--version']))\n"
    )
    # When --version is asked for
    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    # Then it says "unknown" rather than failing
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "vehicle-ocr unknown"


def quick_start() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]


def test_quick_start_names_only_files_that_exist():
    # Given the README's Quick start, run from the repository's root of a fresh clone
    section = quick_start()
    # When every file it copies or uploads is looked up
    paths = re.findall(r"\bsamples/[^\s\"'`]+", section)
    # Then there are some, each exists (a pattern matches at least one image), and no upload names a bare pattern
    assert paths
    for path in paths:
        assert sorted(ROOT.glob(path)), f"the Quick start names {path}, which is not in the repository"
    assert not re.search(r"vehicle-ocr upload \*", section)
    assert not re.search(r"\bcp (car|licence)\.jpg", section)
