"""`vehicle-ocr erase` as a user runs it, against the local stack (moto server, the real RecognizeFunction
handler, the fake upstream over sockets counting billed calls).

Two vehicles are erased, one by plate and one by VIN; a third is left alone. Afterwards nothing of the
first two is found through the query API, in S3 (any version), among the paid answers or in the failure
queue; the third is untouched; erasing again removes nothing; the same bytes uploaded again are paid again.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from tests.conftest import make_jpeg
from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE, Reply
from vehicle_ocr.answers import stored_answer_id
from vehicle_ocr_local.stack import LocalStack

VEHICLE_OCR = str(Path(sys.executable).parent / "vehicle-ocr")
BUCKET = "vehicle-ocr-images"

PLATE_A, PLATE_B, PLATE_C = "沪A11111", "沪B22222", "沪C33333"
VIN_A, VIN_B, VIN_C = "LSVAU218XN2183294", "LFV2A21K0J4000001", "LGBH52E05KY000002"
OWNERS = ("张三", "李四", "王五")


def erase(stack: LocalStack, *arguments: str, answer: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [
            VEHICLE_OCR,
            "erase",
            *arguments,
            "--endpoint",
            stack.aws_endpoint,
            *([] if answer is not None else ["--yes"]),
        ],
        input=answer,
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"},
        timeout=120,
    )


class Vehicle:
    """One vehicle's uploads: plate photos, a licence, a failed upload under one of its keys."""

    def __init__(self, stack: LocalStack, upstream: Any, name: str, plate: str, vin: str, owner: str, seed: int):
        self.stack, self.plate, self.vin = stack, plate, vin
        self.photo, self.second_photo = make_jpeg(seed=seed), make_jpeg(seed=seed + 1)
        self.licence, self.quota_spent = make_jpeg(seed=seed + 2), make_jpeg(seed=seed + 3)
        upstream.set_answer(self.photo, {"color": "blue", "number": plate})
        upstream.set_answer(self.second_photo, {"color": "blue", "number": plate})
        upstream.set_answer(
            self.licence, {**DEFAULT_VEHICLE_LICENSE, "plate_number": plate, "vin": vin, "owner": owner}
        )
        upstream.set_answer(self.quota_spent, Reply(code=150), provider="tianapi")
        self.keys = [f"plates/{name}/gate.jpg", f"plates/{name}/street.jpg", f"vehicle-licenses/{name}.jpg"]

    def upload(self) -> int:
        """Uploads: the street key first fails (quota spent: FAILED, a failure message), then a new version reads."""
        gate, street, licence = self.keys
        self.stack.upload(gate, self.photo)
        self.stack.upload(street, self.quota_spent)
        self.stack.upload(licence, self.licence)
        return 3

    def upload_second_version(self) -> int:
        self.stack.upload(self.keys[1], self.second_photo)
        return 1

    def images(self) -> list[bytes]:
        return [self.photo, self.second_photo, self.licence, self.quota_spent]


def api(stack: LocalStack, path: str, **params: str) -> requests.Response:
    return requests.get(f"{stack.api_url}{path}", params=params, timeout=10)


def held(stack: LocalStack, vehicle: Vehicle) -> dict[str, Any]:
    """What the outside world can find of a vehicle: through the API, in S3, in the failure queue."""
    versions = stack.client("s3").list_object_versions(Bucket=BUCKET)
    in_s3 = [
        entry["Key"]
        for entry in versions.get("Versions", []) + versions.get("DeleteMarkers", [])
        if entry["Key"] in vehicle.keys
    ]
    return {
        "by_plate": api(stack, f"/plates/{quote(vehicle.plate)}").json()["items"],
        "by_vin": api(stack, f"/vehicles/{vehicle.vin}").json()["items"],
        "by_object": [key for key in vehicle.keys if api(stack, "/results", bucket=BUCKET, key=key).status_code != 404],
        "s3": in_s3,
    }


def failure_message_keys(stack: LocalStack) -> list[str]:
    """The keys the failure queue's messages name (received, then made visible again)."""
    sqs, url = stack.client("sqs"), stack.resources.refs["FailureQueue"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    for message in messages:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return sorted(json.loads(message["Body"])["key"] for message in messages)


def paid_answer_ids(stack: LocalStack) -> set[str]:
    table = stack.resources.refs["IdempotencyTable"]
    return {item["id"]["S"] for item in stack.client("dynamodb").scan(TableName=table)["Items"]}


def answer_id(kind: str, provider: str, image: bytes) -> str:
    return stored_answer_id(f"{kind}#{provider}#sha256:{hashlib.sha256(image).hexdigest()}")


def results_items(stack: LocalStack) -> list[dict[str, Any]]:
    return stack.client("dynamodb").scan(TableName=stack.resources.refs["ResultsTable"])["Items"]


def test_erasing_one_vehicle_by_plate_and_another_by_vin_leaves_nothing_of_them_and_the_third_untouched(
    running_stack, fake_upstream
):
    stack = running_stack
    # Given three vehicles, each with two plate photos, a licence naming plate, VIN and owner, and an
    # upload that failed (quota spent) under one of its photo keys, whose message is still queued
    a = Vehicle(stack, fake_upstream, "a", PLATE_A, VIN_A, OWNERS[0], seed=100)
    b = Vehicle(stack, fake_upstream, "b", PLATE_B, VIN_B, OWNERS[1], seed=200)
    c = Vehicle(stack, fake_upstream, "c", PLATE_C, VIN_C, OWNERS[2], seed=300)
    uploads = sum(vehicle.upload() for vehicle in (a, b, c))
    assert stack.wait_for(uploads, timeout_s=90) == uploads
    uploads += sum(vehicle.upload_second_version() for vehicle in (a, b, c))
    assert stack.wait_for(uploads, timeout_s=90) == uploads
    assert failure_message_keys(stack) == sorted(vehicle.keys[1] for vehicle in (a, b, c))
    assert (fake_upstream.billed("tianapi"), fake_upstream.billed("apizero")) == (6, 3)
    answers_before = paid_answer_ids(stack)
    assert {answer_id("plate", "tianapi", a.photo), answer_id("vehicle_license", "apizero", b.licence)} <= (
        answers_before
    )
    c_before = held(stack, c)
    assert len(c_before["by_plate"]) == 3 and len(c_before["s3"]) == 4

    # When A is erased by plate (with --yes) and B by VIN (asked first: "n" removes nothing, "y" removes)
    by_plate = erase(stack, "--plate", "沪a·11111")
    declined = erase(stack, "--vin", VIN_B.lower(), answer="n\n")
    b_after_declining = held(stack, b)
    by_vin = erase(stack, "--vin", VIN_B, answer="y\n")

    # Then each run said what it removed: three records, three sightings, four image versions, three
    # paid answers, one failure message; the declined run removed nothing
    assert by_plate.returncode == 0, by_plate.stdout + by_plate.stderr
    assert "removed 4 records, 3 plate sightings, 4 image versions, 3 paid answers, 1 failure messages" in (
        by_plate.stdout
    )
    assert declined.returncode == 1 and "nothing removed" in declined.stdout
    assert "held about VIN " + VIN_B in declined.stdout and "image versions: 4" in declined.stdout
    assert len(b_after_declining["by_vin"]) == 1 and len(b_after_declining["s3"]) == 4
    assert by_vin.returncode == 0, by_vin.stdout + by_vin.stderr
    assert "removed 4 records, 3 plate sightings, 4 image versions, 3 paid answers, 1 failure messages" in (
        by_vin.stdout
    )
    # And the audit line names counts and ids, never a plate number, VIN or owner
    for run in (by_plate, by_vin):
        (audit,) = [line for line in run.stderr.splitlines() if "erase audit" in line]
        assert '"records": 4' in audit and '"image_versions": 4' in audit
        assert not any(value in audit for value in (PLATE_A, PLATE_B, VIN_A, VIN_B, *OWNERS))

    # And nothing of A or B is found: query API, S3 (every version, no delete marker), paid answers, queue
    for vehicle in (a, b):
        assert held(stack, vehicle) == {"by_plate": [], "by_vin": [], "by_object": [], "s3": []}
    answers_after = paid_answer_ids(stack)
    erased_answers = {
        answer_id(kind, provider, image)
        for vehicle in (a, b)
        for kind, provider, image in (
            ("plate", "tianapi", vehicle.photo),
            ("plate", "tianapi", vehicle.second_photo),
            ("vehicle_license", "apizero", vehicle.licence),
        )
    }
    assert erased_answers <= answers_before and not erased_answers & answers_after
    assert answers_after == answers_before - erased_answers
    assert failure_message_keys(stack) == [c.keys[1]]
    # And the results table holds nothing naming them: only C's items and the erasure markers (digests)
    table_text = json.dumps(results_items(stack), ensure_ascii=False)
    assert not any(value in table_text for value in (PLATE_A, PLATE_B, VIN_A, VIN_B, OWNERS[0], OWNERS[1]))
    # And C is untouched
    assert held(stack, c) == c_before
    listed = api(stack, "/results", limit="50").json()["items"]
    assert sorted(record["source"]["key"] for record in listed) == sorted([*c.keys, c.keys[1]])


def test_erasing_again_removes_nothing_and_the_same_bytes_uploaded_again_are_paid_again(running_stack, fake_upstream):
    stack = running_stack
    # Given a plate photo recognised (paid once), then erased by plate
    photo = make_jpeg(seed=400)
    fake_upstream.set_answer(photo, {"color": "blue", "number": PLATE_A})
    stack.upload("plates/gate/car.jpg", photo)
    assert stack.wait_for(1, timeout_s=60) == 1
    first = erase(stack, "--plate", PLATE_A)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "removed 1 records, 1 plate sightings, 1 image versions, 1 paid answers" in first.stdout

    # When it is erased again
    second = erase(stack, "--plate", PLATE_A)

    # Then nothing is removed, and the command succeeds
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"nothing held about plate {PLATE_A}: nothing removed" in second.stdout

    # When the same bytes are uploaded again, under the same key
    stack.upload("plates/gate/car.jpg", photo)
    assert stack.wait_for(2, timeout_s=60) == 2

    # Then they are recognised again and paid again (the stored answer went with the erasure)
    assert fake_upstream.billed("tianapi") == 2
    (record,) = api(stack, f"/plates/{quote(PLATE_A)}").json()["items"]
    assert (record["status"], record["reused"]) == ("SUCCEEDED", False)
