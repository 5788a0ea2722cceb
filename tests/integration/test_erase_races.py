"""`vehicle-ocr erase` while uploads are still being recognised, and after an interrupted run.

The local stack runs the real RecognizeFunction handler; the fake upstream stalls its answers so that
the erasure happens while the function waits for them, and counts what was billed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import make_jpeg
from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE, Reply
from tests.integration.test_erase import BUCKET, api, erase, paid_answer_ids
from vehicle_ocr.answers import stored_answer_id
from vehicle_ocr_local.erase import Eraser, Resources, Subject

PLATE = "沪D44444"


def versions_of(stack: Any, key: str) -> list[str]:
    listed = stack.client("s3").list_object_versions(Bucket=BUCKET, Prefix=key)
    return [entry["VersionId"] for entry in listed.get("Versions", []) + listed.get("DeleteMarkers", [])]


def answer_of(image: bytes) -> str:
    return stored_answer_id(f"plate#tianapi#sha256:{hashlib.sha256(image).hexdigest()}")


def wait_until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {timeout_s} s")
        time.sleep(0.1)


def test_uploads_recognised_while_the_plate_is_erased_never_reappear(running_stack, fake_upstream):
    stack = running_stack
    # Given a plate photo recognised at the gate (paid once)
    first, second, elsewhere = make_jpeg(seed=500), make_jpeg(seed=501), make_jpeg(seed=502)
    for image in (first, second, elsewhere):
        fake_upstream.set_answer(image, {"color": "blue", "number": PLATE})
    stack.upload("plates/gate.jpg", first)
    assert stack.wait_for(1, timeout_s=60) == 1
    # And two more photos of it whose answers are slow: a new version of the gate key, and a new key
    answers_held = threading.Event()  # until the erasure has run (15 s at most: within the read timeout)
    fake_upstream.script("tianapi", [Reply(stall_s=15, release=answers_held)] * 2)
    stack.upload("plates/gate.jpg", second)
    stack.upload("plates/elsewhere.jpg", elsewhere)
    wait_until(lambda: len(fake_upstream.calls) == 3, 30, "both slow calls under way")

    # When the plate is erased while the function waits for those answers, and they then arrive
    during = erase(stack, "--plate", PLATE)
    answers_held.set()
    assert during.returncode == 0, during.stdout + during.stderr
    assert stack.wait_for(3, timeout_s=60) == 3

    # Then neither upload was recorded: the query API finds nothing of the plate
    assert api(stack, f"/plates/{quote(PLATE)}").json()["items"] == []
    assert api(stack, "/results").json()["items"] == []
    # And every answer paid for it is gone (all three were billed)
    assert fake_upstream.billed("tianapi") == 3
    assert {answer_of(image) for image in (first, second, elsewhere)}.isdisjoint(paid_answer_ids(stack))
    # And the two photos still being recognised are left for the next run: under a key others may share (the
    # gate's) an unrecorded version may be another car's; the plate's marker stopped both and noted them
    assert len(versions_of(stack, "plates/gate.jpg")) == 1
    assert len(versions_of(stack, "plates/elsewhere.jpg")) == 1
    after = erase(stack, "--plate", PLATE)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "removed 0 records, 0 plate sightings, 2 image versions" in after.stdout
    assert "(2 uploads stopped while being recognised)" in after.stdout
    assert versions_of(stack, "plates/gate.jpg") == []
    assert versions_of(stack, "plates/elsewhere.jpg") == []
    # And a third run finds nothing
    assert "nothing held about plate" in erase(stack, "--plate", PLATE).stdout


class CrashingDynamoDB:
    """The results table's client, dying at the first transaction: the erasure stops before the records go."""

    def __init__(self, client: Any):
        self._client = client

    def transact_write_items(self, **request: Any) -> Any:
        raise KeyboardInterrupt("interrupted")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_an_interrupted_erasure_is_completed_by_the_next_run(running_stack, fake_upstream):
    stack = running_stack
    # Given a plate photo and a failed upload of the same key (its message queued)
    photo, quota_spent = make_jpeg(seed=510), make_jpeg(seed=511)
    fake_upstream.set_answer(quota_spent, Reply(code=150), provider="tianapi")
    fake_upstream.set_answer(photo, {"color": "blue", "number": PLATE})
    stack.upload("plates/lane.jpg", quota_spent)
    stack.upload("plates/lane.jpg", photo)
    assert stack.wait_for(2, timeout_s=60) == 2

    # When an erasure of the plate is interrupted after the images, answers and messages, before the records
    refs = stack.resources.refs
    resources = Resources(
        results_table=refs["ResultsTable"],
        answers_table=refs["IdempotencyTable"],
        queue_urls=(refs["FailureQueue"],),
    )
    eraser = Eraser(
        s3=stack.client("s3"),
        dynamodb=CrashingDynamoDB(stack.client("dynamodb")),
        sqs=stack.client("sqs"),
        resources=resources,
    )
    with pytest.raises(KeyboardInterrupt):
        eraser.erase(eraser.find(Subject.of(plate=PLATE, vin=None, bucket=None, key=None)))
    assert versions_of(stack, "plates/lane.jpg") == []
    assert len(api(stack, f"/plates/{quote(PLATE)}").json()["items"]) == 1  # the records are still there

    # And it is run again
    rerun = erase(stack, "--plate", PLATE)

    # Then the rerun finds the rest through the records, and removes them
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "removed 2 records, 1 plate sightings, 0 image versions, 0 paid answers, 0 failure messages" in rerun.stdout
    assert api(stack, f"/plates/{quote(PLATE)}").json()["items"] == []
    assert api(stack, "/results").json()["items"] == []
    assert fake_upstream.billed("tianapi") == 1


def test_a_run_interrupted_after_removing_the_linking_licence_still_reaches_the_vins_other_records(
    running_stack, fake_upstream
):
    stack = running_stack
    # Given a licence linking plate 沪D44444 to a VIN, and an older licence of that VIN under another plate
    vin, old_plate = "LSVAU218XN2183294", "沪E55555"
    linking, older = make_jpeg(seed=520), make_jpeg(seed=521)
    fake_upstream.set_answer(linking, {**DEFAULT_VEHICLE_LICENSE, "plate_number": PLATE, "vin": vin})
    fake_upstream.set_answer(older, {**DEFAULT_VEHICLE_LICENSE, "plate_number": old_plate, "vin": vin})
    stack.upload("vehicle-licenses/now.jpg", linking)
    stack.upload("vehicle-licenses/before.jpg", older)
    assert stack.wait_for(2, timeout_s=60) == 2

    # When an erasure of the plate marks everything, removes the linking licence's record, and is interrupted
    refs = stack.resources.refs
    resources = Resources(refs["ResultsTable"], refs["IdempotencyTable"], (refs["FailureQueue"],))
    eraser = Eraser(
        s3=stack.client("s3"), dynamodb=stack.client("dynamodb"), sqs=stack.client("sqs"), resources=resources
    )
    plan = eraser.find(Subject.of(plate=PLATE, vin=None, bucket=None, key=None))
    eraser.mark(plan)
    (linking_id,) = [rid for rid, record in plan.records.items() if record["vehicle_license"]["plate_number"] == PLATE]
    eraser._delete_partition(linking_id)
    assert api(stack, f"/vehicles/{vin}").json()["items"]  # the older licence, found only through the VIN

    # And the erasure is run again
    rerun = erase(stack, "--plate", PLATE)

    # Then the rerun still reaches the VIN's older licence (and its plate) and removes it
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert api(stack, f"/vehicles/{vin}").json()["items"] == []
    assert api(stack, f"/plates/{quote(old_plate)}").json()["items"] == []
    assert versions_of(stack, "vehicle-licenses/before.jpg") == []


def test_another_cars_upload_under_the_same_key_being_recognised_during_the_erasure_is_recorded(
    running_stack, fake_upstream
):
    stack = running_stack
    # Given a gate camera writing every car to one key: this plate's photo recognised, then another car's
    # photo whose answer is slow
    ours, theirs = make_jpeg(seed=530), make_jpeg(seed=531)
    fake_upstream.set_answer(ours, {"color": "blue", "number": PLATE})
    fake_upstream.set_answer(theirs, {"color": "blue", "number": "沪F66666"})
    stack.upload("plates/gate.jpg", ours)
    assert stack.wait_for(1, timeout_s=60) == 1
    answer_held = threading.Event()  # until the erasure has run (15 s at most: within the read timeout)
    fake_upstream.script("tianapi", [Reply(stall_s=15, release=answer_held)])
    stack.upload("plates/gate.jpg", theirs)
    wait_until(lambda: len(fake_upstream.calls) == 2, 30, "the other car's call under way")

    # When this plate is erased while the other car's photo is being recognised
    during = erase(stack, "--plate", PLATE)
    answer_held.set()
    assert during.returncode == 0, during.stdout + during.stderr
    assert stack.wait_for(2, timeout_s=60) == 2

    # Then the other car's upload ends as its record, with its image; nothing of this plate is left
    assert [item["plates"][0]["number"] for item in api(stack, "/plates/沪F66666").json()["items"]] == ["沪F66666"]
    assert len(versions_of(stack, "plates/gate.jpg")) == 1
    assert api(stack, f"/plates/{quote(PLATE)}").json()["items"] == []
