"""The console as a user starts it: `vehicle-ocr console --endpoint` against `vehicle-ocr up`, both
subprocesses on real ports, spoken to over HTTP; and the same console under `up`'s /console/.

What it must never do: answer beyond localhost (another interface, a foreign Host header, a
cross-site POST), or show a licence's owner and address anywhere but the record's own page.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
import requests

from tests.conftest import ROOT, free_port, make_jpeg
from tests.fakes.fixtures import APIZERO_TEST_KEY, TIANAPI_TEST_KEY
from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE, FakeUpstream
from tests.integration.running_up import RunningUp, paid_providers_at, start_up
from tests.integration.test_cli import VEHICLE_OCR, assert_one_line_error, run_cli

PHOTO = ROOT / "samples" / "plates" / "001-blue-regular.jpg"
CONSOLE_HEADERS = {"X-Console": "1"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(tianapi_key=TIANAPI_TEST_KEY, apizero_key=APIZERO_TEST_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def running(upstream: FakeUpstream) -> Iterator[RunningUp]:
    """`vehicle-ocr up` with the paid providers pointed at the fake upstream."""
    with start_up(paid_providers_at(upstream)) as stack:
        yield stack


@contextmanager
def console(*args: str, environment: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """`vehicle-ocr console ARGS --port P` in a subprocess; yields its URL and port once it says it serves."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "PYTHONUNBUFFERED": "1"}
    env.update(environment or {})
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [VEHICLE_OCR, "console", *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert f"http://127.0.0.1:{port}/console/" in line, line + (process.stdout.read() if process.stdout else "")
        yield f"http://127.0.0.1:{port}/console", port
    finally:
        process.terminate()
        process.wait(timeout=20)


def wait_for_record(base: str, key: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = requests.get(f"{base}/api/object", params={"key": key}, timeout=10).json()["record"]
        if record:
            return record
        time.sleep(0.3)
    pytest.fail(f"no record for {key} within {timeout_s} s")


def other_interface_address() -> str | None:
    """An address of this machine that is not loopback (the one it would route outwards from), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, only a route is chosen
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address  # noqa: S104


def test_console_shows_uploads_photos_and_licences_but_owner_only_on_the_record_page(running, upstream):
    # Given `vehicle-ocr up` and `vehicle-ocr console --endpoint` on its AWS endpoint
    with console("--endpoint", running.aws_endpoint) as (base, _):
        page = requests.get(f"{base}/", timeout=10)
        assert page.status_code == 200 and "static/console.js" in page.text
        assert "https://" not in page.text  # nothing fetched from elsewhere: it works offline

        # When a plate photo and a licence page are uploaded through it
        with PHOTO.open("rb") as photo:
            placed = requests.post(
                f"{base}/api/upload", files={"file": ("car 1.jpg", photo)}, data={"kind": "plate"},
                headers=CONSOLE_HEADERS, timeout=30,
            )  # fmt: skip
        licence_key = requests.post(
            f"{base}/api/upload", files={"file": ("licence.jpg", make_jpeg(5))}, data={"kind": "vehicle_license"},
            headers=CONSOLE_HEADERS, timeout=30,
        ).json()["key"]  # fmt: skip

        # Then each is recognised, and its photo comes back through the console as the bytes uploaded
        assert placed.status_code == 201
        plate_record = wait_for_record(base, placed.json()["key"])
        assert plate_record["status"] == "SUCCEEDED" and plate_record["plates"][0]["number"] == "沪A12345"
        photo = requests.get(f"{base}/api/results/{plate_record['id']}/photo", timeout=10)
        assert (photo.status_code, photo.headers["Content-Type"]) == (200, "image/jpeg")
        assert photo.headers["Cross-Origin-Resource-Policy"] == "same-origin"  # no other site may embed it
        assert photo.content == PHOTO.read_bytes()
        # and the licence's owner and address are on its own page only, never in the listing
        licence = wait_for_record(base, licence_key)
        listing = requests.get(f"{base}/api/results", params={"kind": "vehicle_license"}, timeout=10)
        assert DEFAULT_VEHICLE_LICENSE["owner"] not in listing.text
        assert DEFAULT_VEHICLE_LICENSE["address"] not in listing.text
        assert licence["vehicle_license"]["vin"]  # the rest of the licence is there
        own_page = requests.get(f"{base}/api/results/{licence['id']}", timeout=10).json()
        assert own_page["vehicle_license"]["owner"] == DEFAULT_VEHICLE_LICENSE["owner"]
        # and `up` serves the same console at /console/
        served = requests.get(f"{running.api_url}/console/api/results", params={"kind": "plate"}, timeout=10)
        assert plate_record["id"] in [item["id"] for item in served.json()["items"]]


def test_console_refuses_foreign_hosts_and_cross_site_writes(running):
    with console("--endpoint", running.aws_endpoint) as (base, port):
        for root in (base, f"{running.api_url}/console"):
            # Given a console, when a page elsewhere reaches it by a rebound DNS name
            rebound = requests.get(f"{root}/api/results", headers={"Host": f"evil.example:{port}"}, timeout=10)
            # or posts to it from another site (a form, or a script without the console's header)
            form = requests.post(
                f"{root}/api/upload", files={"file": ("x.jpg", b"x")}, data={"kind": "plate"}, timeout=10
            )
            script = requests.post(
                f"{root}/api/redrive", json={"code": "150"}, timeout=10,
                headers={**CONSOLE_HEADERS, "Origin": "http://evil.example"},
            )  # fmt: skip

            # Then every one is refused, and nothing was uploaded
            assert (rebound.status_code, form.status_code, script.status_code) == (403, 403, 403)
        assert running.s3().list_objects_v2(Bucket="vehicle-ocr-images", Prefix="plates/console/x").get("KeyCount") == 0


def test_console_is_not_reachable_on_another_interface(running):
    # Given this machine's outward address (not loopback)
    address = other_interface_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 interface to try the console on")
    with console("--endpoint", running.aws_endpoint) as (base, port):
        assert requests.get(f"{base}/", timeout=10).status_code == 200
        # When something connects to the console's port on that address
        with socket.socket() as client:
            client.settimeout(5)
            outcome = client.connect_ex((address, port))
        # Then nothing listens there: the console is bound to 127.0.0.1 only
        assert outcome != 0


def test_console_mistakes_are_one_line(running):
    # Given nothing listening on an endpoint, both --stack and --endpoint, and a port already taken
    nothing = run_cli("console", "--endpoint", f"http://127.0.0.1:{free_port()}", timeout=60)
    both = run_cli("console", "--stack", "prod", "--endpoint", running.aws_endpoint)
    local_too = run_cli("console", "--stack", "prod", "--local")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = run_cli("console", "--endpoint", running.aws_endpoint, "--port", str(taken.getsockname()[1]))

    # Then each ends with one line saying what to do, and a non-zero status
    assert_one_line_error(nothing, 1, "nothing answers", "vehicle-ocr up")
    assert_one_line_error(both, 2, "--stack", "--endpoint")
    assert_one_line_error(local_too, 2, "--stack", "--local")
    assert_one_line_error(busy, 1, "already in use", "--port")


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1:3000", True),
        ("localhost", True),
        ("LOCALHOST:8030", True),
        ("[::1]:8030", True),
        ("127.1.2.3", True),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io:3000", False),
        ("evil.example:3000", False),
        ("192.168.1.5:3000", False),
        ("", False),
    ],
)
def test_only_loopback_names_count_as_this_machine(host, local):
    # Given a Host header, when the console asks whether it names this machine's loopback, then only loopback does
    from vehicle_ocr_local.console.app import is_local_host

    assert is_local_host(host) is local


def test_console_of_a_deployed_stack_finds_it_by_its_outputs_and_prices(running):
    # Given a CloudFormation stack whose outputs name the resources (here the emulator's, deployed as "prod"
    # with tianapi at 0.04 CNY a call) and a photo recognised in it
    from vehicle_ocr_local.template import local_name

    aws = {"endpoint_url": running.aws_endpoint, "region_name": "us-east-1"}
    credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    queue_url = boto3.client("sqs", **aws, **credentials).get_queue_url(QueueName=local_name("FailureQueue"))
    # and its function, deployed with a licence prefix other than this checkout's template.yaml default
    role = boto3.client("iam", **aws, **credentials).create_role(
        RoleName="prod-recognize", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )
    function = boto3.client("lambda", **aws, **credentials).create_function(
        FunctionName="prod-recognize",
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.lambda_handler",
        Code={"ZipFile": _zipped_handler()},
        Environment={"Variables": {"PLATE_PREFIX": "plates/", "LICENSE_PREFIX": "licences/"}},
    )
    outputs = {
        "ImagesBucketName": "vehicle-ocr-images",
        "ResultsTableName": local_name("ResultsTable"),
        "FailureQueueUrl": queue_url["QueueUrl"],
        "RecognizeFunctionArn": function["FunctionArn"],
    }
    template = {
        "Parameters": {"TianapiPricePerCall": {"Type": "String", "Default": "0.05"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation", **aws, **credentials).create_stack(
        StackName="prod",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "TianapiPricePerCall", "ParameterValue": "0.04"}],
    )
    running.s3().put_object(Bucket="vehicle-ocr-images", Key="plates/prod/car.jpg", Body=PHOTO.read_bytes())
    record = running.record_of("plates/prod/car.jpg")

    # When `vehicle-ocr console --stack prod` runs with the caller's credentials (and endpoint)
    environment = {"AWS_ENDPOINT_URL": running.aws_endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    with console("--stack", "prod", environment=environment) as (base, _):
        status = requests.get(f"{base}/api/status", timeout=10).json()
        listing = requests.get(f"{base}/api/results", params={"plate": "沪A12345"}, timeout=10).json()
        photo = requests.get(f"{base}/api/results/{record['id']}/photo", timeout=10)
        usage = requests.get(f"{base}/api/usage", timeout=10).json()

    # Then it reads that stack: its records, their photos, its own price per call, and the prefixes its
    # function routes by (an upload from the console goes where that function looks)
    assert status["where"] == "the stack prod"
    assert status["prefixes"] == {"plate": "plates/", "vehicle_license": "licences/"}
    assert record["id"] in [item["id"] for item in listing["items"]]
    assert photo.status_code == 200 and photo.content == PHOTO.read_bytes()
    assert usage["price_per_call"]["tianapi"] == 0.04


def _zipped_handler() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()
