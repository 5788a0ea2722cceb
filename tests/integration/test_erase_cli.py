"""`vehicle-ocr erase` by object, and the ordinary mistakes: one line on stderr, exit 2 for bad usage."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import free_port, make_jpeg
from tests.integration.test_erase import BUCKET, VEHICLE_OCR, api, erase
from tests.integration.test_erase import running_stack as running_stack  # the fixture
from tests.integration.test_erase_races import versions_of


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [VEHICLE_OCR, "erase", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"},
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (("--plate", "沪A12345", "--vin", "LSVAU218XN2183294"), "name one subject"),
        ((), "name one subject: --plate NUMBER, --vin VIN, or --bucket B --key K"),
        (("--key", "plates/a.jpg"), "--bucket and --key name one object: give both"),
        (("--bucket", BUCKET), "name one subject"),
        (("--plate", "·"), "is not a plate number after normalisation"),
        (("--vin", "LSV-АБВ"), "--vin must be at most 17 letters and digits"),
        (("--plate", "沪A12345", "--stack", "prod", "--endpoint", "http://127.0.0.1:4566"), "give one"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(arguments, says):
    # When erase is run with a subject named wrongly
    result = run(*arguments)

    # Then it says what is wrong in one line, exits 2, and touches nothing
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("vehicle-ocr erase: ")
    assert says in result.stderr
    assert result.stdout == ""


def test_nothing_listening_on_the_endpoint_is_one_line_and_exit_1():
    # Given nothing listens on a port
    endpoint = f"http://127.0.0.1:{free_port()}"

    # When erase is pointed at it
    result = run("--plate", "沪A12345", "--endpoint", endpoint, "--yes")

    # Then it says so in one line, naming the endpoint and how to start the stack
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1
    assert f"nothing answers at {endpoint}" in result.stderr and "vehicle-ocr up" in result.stderr


def test_erasing_one_object_removes_every_version_and_record_of_it_and_nothing_else(running_stack, fake_upstream):
    stack = running_stack
    # Given two versions of one plate photo, and a photo of the same plate under another key
    photos = [make_jpeg(seed=600), make_jpeg(seed=601), make_jpeg(seed=602)]
    for photo in photos:
        fake_upstream.set_answer(photo, {"color": "blue", "number": "沪E55555"})
    stack.upload("plates/door.jpg", photos[0])
    stack.upload("plates/door.jpg", photos[1])
    stack.upload("plates/yard.jpg", photos[2])
    assert stack.wait_for(3, timeout_s=60) == 3

    # When the object is erased, answering the question with "y"
    result = erase(stack, "--bucket", BUCKET, "--key", "plates/door.jpg", answer="y\n")

    # Then both versions and both records are gone; the other key's photo and record are not
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"held about s3://{BUCKET}/plates/door.jpg" in result.stdout
    assert "removed 2 records, 2 plate sightings, 2 image versions, 2 paid answers" in result.stdout
    assert versions_of(stack, "plates/door.jpg") == []
    assert api(stack, "/results", bucket=BUCKET, key="plates/door.jpg").status_code == 404
    assert len(versions_of(stack, "plates/yard.jpg")) == 1
    assert [r["source"]["key"] for r in api(stack, "/plates/沪E55555").json()["items"]] == ["plates/yard.jpg"]
