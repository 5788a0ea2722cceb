"""`vehicle-ocr erase` by object, and the ordinary mistakes: one line on stderr, exit 2 for bad usage."""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

from tests.conftest import free_port, make_jpeg
from tests.integration.running_up import start_up
from tests.integration.test_cli import run_cli
from tests.integration.test_erase import BUCKET, VEHICLE_OCR, api, erase
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


def test_erase_against_vehicle_ocr_up_as_a_user_types_it(upstream_env, fake_upstream, tmp_path):
    # Given `vehicle-ocr up` running, and a plate photo put in with `vehicle-ocr upload` and recognised (paid once)
    photo = tmp_path / "car.jpg"
    photo.write_bytes(make_jpeg(seed=700))
    fake_upstream.set_answer(photo.read_bytes(), {"color": "blue", "number": "沪F66666"})
    with start_up(upstream_env) as running:
        uploaded = run_cli("upload", str(photo), "--kind", "plate", "--endpoint", running.aws_endpoint)
        assert uploaded.returncode == 0, uploaded.stderr
        running.record_of("plates/car.jpg")

        # When the plate is erased, in another spelling, and the question answered "y"
        result = subprocess.run(  # noqa: S603 - our own console script
            [VEHICLE_OCR, "erase", "--plate", "沪f 66666", "--endpoint", running.aws_endpoint],
            input="y\n",
            capture_output=True,
            text=True,
            env={**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"},
            timeout=120,
        )

        # Then it listed what it found, removed it, and the stack's API and bucket hold nothing of it
        assert result.returncode == 0, result.stdout + result.stderr
        assert "held about plate 沪F66666:" in result.stdout and "remove all of this? [y/N]" in result.stdout
        assert "removed 1 records, 1 plate sightings, 1 image versions, 1 paid answers" in result.stdout
        assert requests.get(f"{running.api_url}/plates/沪F66666", timeout=10).json()["items"] == []
        versions = running.s3().list_object_versions(Bucket=BUCKET)
        assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []

        # And the same file uploaded again is recognised again, and paid for again
        assert run_cli("upload", str(photo), "--kind", "plate", "--endpoint", running.aws_endpoint).returncode == 0
        assert running.record_of("plates/car.jpg")["reused"] is False
        assert fake_upstream.billed("tianapi") == 2
