"""Nothing paid twice: every paid upstream answer is stored the moment it returns and reused by
duplicate deliveries, concurrent deliveries, retries after a crash and identical re-uploads."""

from __future__ import annotations

import copy
import threading

from tests.conftest import invoke_async, load_event, make_jpeg
from tests.fakes.upstream import Reply
from tests.integration.test_recognize_events import stage_event
from vehicle_ocr.queries import ResultsQueries


def test_identical_image_under_another_key_is_not_paid_again(stack, recognize_app, lambda_context, fake_upstream):
    # Given one photo uploaded under two keys
    photo = make_jpeg(seed=30)
    first = stage_event(stack, load_event("s3-put-plate.json"), {"plates/cam1/car.jpg": photo})
    second = stage_event(stack, load_event("s3-put-chinese-key.json"), {"plates/cam1/沪A 1.jpg": photo})

    # When both are processed
    recognize_app.lambda_handler(first, lambda_context)
    recognize_app.lambda_handler(second, lambda_context)

    # Then one paid call, two records with the same plates, the second marked as reused
    assert fake_upstream.billed() == 1
    records = {record["source"]["key"]: record for record in stack.records()}
    assert records["plates/cam1/car.jpg"]["reused"] is False
    assert records["plates/cam1/沪A 1.jpg"]["reused"] is True
    assert records["plates/cam1/car.jpg"]["plates"] == records["plates/cam1/沪A 1.jpg"]["plates"]
    assert len(stack.success_events()) == 2


def test_crash_after_paying_does_not_pay_again(stack, recognize_app, lambda_context, fake_upstream, monkeypatch):
    # Given the first invocation dies after the paid call returned, before recording anything
    store = recognize_app.pipeline._store
    real_create = store.create
    crashes = iter([True])

    def crash_once(*args, **kwargs):
        if next(crashes, False):
            raise RuntimeError("Lambda ran out of memory")
        return real_create(*args, **kwargs)

    monkeypatch.setattr(store, "create", crash_once)
    event = stage_event(stack, load_event("s3-put-vehicle-license.json"))

    # When Lambda retries the invocation
    invocations = invoke_async(recognize_app, event, lambda_context)

    # Then the retry finds the paid answer: one billed call, one record, one event
    assert invocations == 2
    assert fake_upstream.billed() == 1
    (record,) = stack.records()
    assert record["status"] == "SUCCEEDED"
    assert record["reused"] is True
    assert len(stack.success_events()) == 1


def test_concurrent_duplicate_deliveries_pay_once(stack, recognize_app, lambda_context, fake_upstream):
    # Given a slow upstream (each answer takes 0.8 s) and one event delivered four times at once
    fake_upstream.script("apizero", [Reply(stall_s=0.8)])
    event = stage_event(stack, load_event("s3-put-vehicle-license.json"))
    results: list[int] = []

    def deliver():
        results.append(invoke_async(recognize_app, copy.deepcopy(event), lambda_context))

    # When the four deliveries run concurrently
    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then the upstream was called once, and there is one record and one success event
    assert len(results) == 4
    assert len(fake_upstream.calls) == 1
    assert len(stack.records()) == 1
    assert len(stack.success_events()) == 1


def test_older_version_recognised_late_does_not_become_the_latest(stack, recognize_app, lambda_context, fake_upstream):
    # Given two versions of one object, the second showing another plate
    older, newer = make_jpeg(seed=31), make_jpeg(seed=32)
    fake_upstream.set_answer(older, {"color": "blue", "number": "沪A11111"})
    fake_upstream.set_answer(newer, {"color": "blue", "number": "沪A22222"})
    template = load_event("s3-put-plate.json")
    old_event = stage_event(stack, template, {"plates/cam1/car.jpg": older})
    new_event = stage_event(stack, template, {"plates/cam1/car.jpg": newer})
    old_event["Records"][0]["s3"]["object"]["sequencer"] = "0062E99A88DC407460"
    new_event["Records"][0]["s3"]["object"]["sequencer"] = "0062E99A88DC407461"

    # When the events arrive out of order: the newer first
    recognize_app.lambda_handler(new_event, lambda_context)
    recognize_app.lambda_handler(old_event, lambda_context)

    # Then each version has its record, and the object's latest record is the newer version's
    assert len(stack.records()) == 2
    latest = ResultsQueries(stack.table, stack.client("dynamodb")).latest_for_object(
        stack.bucket, "plates/cam1/car.jpg"
    )
    assert [plate["number"] for plate in latest["plates"]] == ["沪A22222"]
