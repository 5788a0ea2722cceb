"""The fleet-wide rate budget: every instance draws its calls' times from one DynamoDB item.

DynamoDB is moto's in-process emulation (the item's conditional updates are what is tested);
time is a fake clock shared by the instances, so the spacing is exact and the tests instant.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from vehicle_ocr.rate_budget import FIRST_ROUND_TRIP_S, KEY_PREFIX, LATE_S, SAFETY, RateBudget, SlotTooLate
from vehicle_ocr.recognition import Recognition
from vehicle_ocr.settings import Settings

TABLE = "budget"
# A draw asks for a slot this far ahead at most here: the emulated UpdateItem takes no fake time.
FIRST_LEAD_S = 2 * FIRST_ROUND_TRIP_S


class FakeClock:
    """Wall-clock time that moves only when someone sleeps (or a test says so)."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def instance(dynamodb: Any, clock: FakeClock, rate: float = 5, **kwargs: Any) -> RateBudget:
    return RateBudget(TABLE, "tianapi", rate, client=dynamodb, clock=clock, sleep=clock.sleep, **kwargs)


def calls(budget: RateBudget, clock: FakeClock, count: int) -> list[float]:
    """``count`` calls back to back: the time each went."""
    went = []
    for _ in range(count):
        budget.wait()
        went.append(clock.now)
    return went


def test_one_instance_spaces_its_calls_by_the_limit_with_the_margin(dynamodb):
    # Given one instance drawing from the budget for 5 requests per second
    clock = FakeClock()
    budget = instance(dynamodb, clock)
    start = clock.now
    # When it makes five calls back to back
    went = calls(budget, clock, 5)
    # Then the first goes at once (after the draw's round trip) and the others 1 / (5 × SAFETY) s apart
    assert start <= went[0] <= start + FIRST_LEAD_S
    assert [b - a for a, b in itertools.pairwise(went)] == pytest.approx([1 / (5 * SAFETY)] * 4, abs=1e-5)


def test_instances_drawing_by_turns_never_come_closer_than_one_interval(dynamodb):
    # Given three instances sharing the budget (three Lambda instances, each its own client state)
    clock = FakeClock()
    fleet = [instance(dynamodb, clock) for _ in range(3)]
    # When each in turn asks for a call, twelve calls in all, with no pause between them
    went = []
    for budget in itertools.islice(itertools.cycle(fleet), 12):
        budget.wait()
        went.append(clock.now)
    # Then the fleet's calls are one interval apart, as if one instance made them all: the limit
    # holds for the fleet, not for each instance
    gaps = [b - a for a, b in itertools.pairwise(went)]
    assert min(gaps) >= fleet[0].interval_us / 1e6 - 1e-6
    assert all(later - earlier >= 1.0 for earlier, later in zip(went, went[5:], strict=False))


def test_slots_drawn_at_once_are_consecutive_not_shared(dynamodb):
    # Given four instances that all draw at the same instant (a burst of uploads, all instances warm)
    clock = FakeClock()
    fleet = [instance(dynamodb, clock) for _ in range(4)]
    # When each draws a slot before any of them has slept
    slots = sorted(budget._draw() for budget in fleet)
    # Then the four slots are distinct and one interval apart, starting now (after the round trip)
    interval = fleet[0].interval_us
    assert [b - a for a, b in itertools.pairwise(slots)] == [interval] * 3
    assert clock.now <= slots[0] / 1e6 <= clock.now + FIRST_LEAD_S


def test_a_cold_instance_replacing_a_warm_one_knows_the_warm_ones_last_call(dynamodb):
    # Given a warm instance that has just made a call
    clock = FakeClock()
    warm = instance(dynamodb, clock)
    warm.wait()
    last_call = clock.now
    # When a new instance starts (scale-out, or a replacement) and calls at once
    cold = instance(dynamodb, clock)
    cold.wait()
    # Then it waits the interval after the warm instance's call, as the warm one would have
    assert clock.now - last_call == pytest.approx(1 / (5 * SAFETY), abs=1e-5)


def test_idle_time_is_not_saved_up_into_a_burst(dynamodb):
    clock = FakeClock()
    budget = instance(dynamodb, clock)
    budget.wait()
    clock.now += 60  # a quiet minute
    assert budget.wait() <= FIRST_LEAD_S
    assert budget.wait() == pytest.approx(1 / (5 * SAFETY), abs=1e-5)


def test_a_call_costs_one_request_when_busy_and_when_idle(dynamodb):
    # Given an instance at the limit (calls back to back) and then one calling now and then
    clock = FakeClock()
    busy = instance(dynamodb, clock)
    calls(busy, clock, 20)
    quiet = instance(dynamodb, clock, rate=2)
    for _ in range(20):
        clock.now += 5
        quiet.wait()
    # Then each draw took one UpdateItem, after the first draw's guess
    assert busy.requests <= 20 + 1
    assert quiet.requests <= 20 + 1


def test_a_wrong_guess_costs_one_more_request_not_a_wrong_slot(dynamodb):
    # Given an instance that last saw the budget idle, while another has since filled it
    clock = FakeClock()
    mine, other = instance(dynamodb, clock), instance(dynamodb, clock)
    mine.wait()
    clock.now += 10
    taken = [other._draw() for _ in range(3)]  # three slots taken ahead, not yet slept on
    # When it draws, guessing "idle"
    before = mine.requests
    slot = mine._draw()
    # Then it is corrected by the failed condition and gets the slot after the other's three
    assert mine.requests - before == 2
    assert slot == taken[-1] + mine.interval_us


def test_a_late_wake_up_gives_its_slot_up_and_draws_another(dynamodb):
    # Given an instance whose first sleep overruns by 50 ms (a busy CPU), more than LATE_S
    clock = FakeClock()
    other = instance(dynamodb, clock)
    overruns = iter([0.05])

    def late_sleep(seconds: float) -> None:
        clock.sleep(seconds + next(overruns, 0.0))

    late = RateBudget(TABLE, "tianapi", 5, client=dynamodb, clock=clock, sleep=late_sleep)
    other._draw()  # the budget is busy: the late instance's slot is in the future
    # When it waits
    late.wait()
    went = clock.now
    # Then it did not go on the overrun slot: it drew again and went on its new slot, on time
    assert late.draws == 2
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": KEY_PREFIX + "tianapi"}})["Item"]
    assert int(item["next_us"]["N"]) / 1e6 - late.interval_us / 1e6 == pytest.approx(went, abs=LATE_S)


def test_the_budget_is_kept_per_provider(dynamodb):
    clock = FakeClock()
    tianapi = RateBudget(TABLE, "tianapi", 5, client=dynamodb, clock=clock, sleep=clock.sleep)
    apizero = RateBudget(TABLE, "apizero", 2, client=dynamodb, clock=clock, sleep=clock.sleep)
    assert tianapi.wait() <= FIRST_LEAD_S
    assert apizero.wait() <= FIRST_LEAD_S  # another provider's call does not wait for tianapi's


def test_recognition_draws_from_the_budget_when_the_settings_name_its_table():
    env = {
        "RESULTS_TABLE": "t",
        "FAILURE_QUEUE_URL": "q",
        "EVENT_BUS_NAME": "b",
        "TIANAPI_KEY": "k",
        "APIZERO_KEY": "k",
    }
    budgeted = Recognition(Settings.from_env({**env, "RATE_BUDGET_TABLE": TABLE}), {"plate": [_Named("tianapi")]})
    alone = Recognition(Settings.from_env(env), {"plate": [_Named("tianapi")]})
    assert isinstance(budgeted.pacers["tianapi"], RateBudget)
    assert budgeted.pacers["tianapi"].interval_us == pytest.approx(1e6 / (5 * SAFETY), abs=1)
    assert not isinstance(alone.pacers["tianapi"], RateBudget)  # one process, paced by itself


class _Named:
    def __init__(self, name: str):
        self.name = name


def test_a_slot_later_than_the_caller_can_wait_is_refused_rather_than_slept_into(dynamodb):
    # Given a slow provider (one call every 5 s) and four slots already taken by the fleet
    clock = FakeClock()
    fleet = instance(dynamodb, clock, rate=0.2)
    for _ in range(4):
        fleet._draw()
    late = instance(dynamodb, clock, rate=0.2)
    # When an instance with 10 s left asks for a slot (the next one is some 20 s away)
    started = clock.now
    with pytest.raises(SlotTooLate):
        late.wait(max_wait_s=10)
    # Then it did not sleep towards it: the invocation can still fail cleanly and be retried later
    assert clock.now == started
