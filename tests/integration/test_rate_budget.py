"""The fleet-wide rate budget over the emulated DynamoDB: instances drawing at once never over-issue.

Each thread stands for one Lambda instance: its own boto3 client and its own budget object, so the
only thing they share is the item in the stack's IdempotencyTable (as template.yaml wires it).
"""

from __future__ import annotations

import itertools
import threading
import time

import boto3
import pytest

from tests.conftest import invoke_async, load_event, load_function_module
from tests.integration.test_recognize_events import stage_event
from vehicle_ocr.rate_budget import LEAD_BOUNDS_S, RateBudget

pytestmark = pytest.mark.slow

INSTANCES = 8
DRAWS_EACH = 12


def run_fleet(work, instances: int = INSTANCES) -> None:
    start = threading.Barrier(instances)
    errors: list[BaseException] = []

    def instance(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as error:  # surfaced in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=instance, args=(index,)) for index in range(instances)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_instances_drawing_at_once_get_distinct_slots_one_interval_apart(stack):
    # Given eight instances of the function, each with its own client, sharing tianapi's budget
    table = stack.resources.refs["IdempotencyTable"]
    budgets = [RateBudget(table, "tianapi", 5, client=stack.client("dynamodb")) for _ in range(INSTANCES)]
    slots: list[int] = []
    lock = threading.Lock()

    # When all of them draw twelve slots as fast as they can, at the same moment
    def draw(index: int) -> None:
        for _ in range(DRAWS_EACH):
            slot = budgets[index]._draw()
            with lock:
                slots.append(slot)

    run_fleet(draw)

    # Then every draw got its own slot, one interval after the one before: 96 calls take 96 intervals,
    # never two in one, whatever the interleaving of the conditional updates
    interval = budgets[0].interval_us
    ordered = sorted(slots)
    assert len(set(slots)) == INSTANCES * DRAWS_EACH
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= interval
    # and none wasted, but for the first draws' lead (a slot is asked for a round trip ahead of now)
    assert ordered[-1] - ordered[0] <= (INSTANCES * DRAWS_EACH - 1) * interval + LEAD_BOUNDS_S[1] * 1e6
    # And each draw cost one or two requests (a wrong guess about the item is corrected once)
    assert sum(budget.requests for budget in budgets) <= 2 * INSTANCES * DRAWS_EACH


def test_the_fleet_calls_at_the_limit_not_at_a_share_of_it(stack):
    # Given four instances sharing a budget of 20 calls per second
    table = stack.resources.refs["IdempotencyTable"]
    rate = 20.0
    budgets = [RateBudget(table, "apizero", rate, client=stack.client("dynamodb")) for _ in range(4)]
    went: list[float] = []
    lock = threading.Lock()

    # When each makes calls back to back for a while (each waits for its slot, then "calls")
    def call(index: int) -> None:
        for _ in range(15):
            budgets[index].wait()
            with lock:
                went.append(time.time())

    run_fleet(call, instances=4)

    # Then the fleet ran near the whole limit, not at a quarter of it per instance (this process's
    # threads and the emulator share one interpreter: a thread woken late gives its slot up) ...
    ordered = sorted(went)
    achieved = (len(ordered) - 1) / (ordered[-1] - ordered[0])
    assert 0.6 * rate <= achieved <= rate
    # ... and no second held more calls than the limit
    assert max(sum(1 for t in ordered if start <= t < start + 1.0) for start in ordered) <= rate


def test_the_function_draws_its_slots_through_its_own_aws_session(
    stack, recognize_env, fake_upstream, lambda_context, monkeypatch
):
    # Given the function started in a process with no default AWS session, tianapi paced by the rate budget
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    app = load_function_module("recognize", "recognize_app_budget_session")

    # When a plate upload is recognised (its paid call waits for a slot of the fleet's budget)
    event = stage_event(stack, load_event("s3-put-plate.json"))
    invoke_async(app, event, lambda_context)

    # Then it was recognised after a slot was drawn from the budget table
    (record,) = stack.records()
    assert record["status"] == "SUCCEEDED"
    assert fake_upstream.billed("tianapi") == 1
    budget = stack.client("dynamodb").get_item(
        TableName=stack.resources.refs["IdempotencyTable"], Key={"id": {"S": "vehicle-ocr#rate#tianapi"}}
    )
    assert "Item" in budget
    # And no second AWS session was started for it: the draw went through the function's own client
    assert boto3.DEFAULT_SESSION is None
