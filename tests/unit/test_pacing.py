"""Pacing: calls to a provider are spread so the fleet stays under its rate limit."""

from __future__ import annotations

import itertools
import threading

import pytest

from vehicle_ocr.pacing import SAFETY, Pacer
from vehicle_ocr.settings import Settings


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_calls_are_spaced_by_the_rate_with_a_safety_margin():
    # Given a pacer for 2 requests per second
    clock = FakeClock()
    pacer = Pacer(2, clock=clock, sleep=clock.sleep)
    # When five calls are made back to back
    starts = []
    for _ in range(5):
        pacer.wait()
        starts.append(clock.now)
    # Then they start 1 / (2 × 0.97) s apart: never more than 2 in any second
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([1 / (2 * SAFETY)] * 4)
    assert starts[0] == 100.0  # the first call does not wait


def test_idle_time_is_not_saved_up_into_a_burst():
    clock = FakeClock()
    pacer = Pacer(1, clock=clock, sleep=clock.sleep)
    pacer.wait()
    clock.now += 60  # a quiet minute
    assert pacer.wait() == 0
    assert pacer.wait() == pytest.approx(1 / SAFETY)  # the next one waits again


def test_a_late_wake_up_pushes_the_next_call_back_instead_of_bunching_them():
    # Given a pacer for 2 requests per second whose sleeps overrun (a busy CPU) once by 0.4 s
    clock = FakeClock()
    overruns = iter([0.4])

    def late_sleep(seconds: float) -> None:
        clock.sleep(seconds + next(overruns, 0.0))

    pacer = Pacer(2, clock=clock, sleep=late_sleep)
    # When four calls are made back to back
    starts = []
    for _ in range(4):
        pacer.wait()
        starts.append(clock.now)
    # Then consecutive calls are never closer than one interval, so no 1 s window holds three,
    # nor two plus the late one: the late call shifts those after it
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= pacer.interval_s - 1e-9
    assert all(later - earlier >= 1.0 for earlier, later in zip(starts, starts[2:], strict=False))


def test_concurrent_callers_go_one_interval_apart():
    # Given one pacer shared by threads (a process's concurrent callers), on a clock that moves only by sleeping
    clock = FakeClock()
    pacer = Pacer(50, clock=clock, sleep=clock.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def call():
        waited = pacer.wait()
        with lock:
            waits.append(waited)

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then the ten calls took exactly 9 intervals, one caller at a time: no burst, no time lost
    assert clock.now - 100.0 == pytest.approx(9 * pacer.interval_s)
    assert max(waits) <= 9 * pacer.interval_s + 1e-9


def test_the_limit_is_the_fleets_not_a_share_of_it():
    # Given a limit of 2 requests per second: every instance draws from the one budget, so none gets a share
    settings = Settings.from_env(
        {
            "RESULTS_TABLE": "t",
            "FAILURE_QUEUE_URL": "q",
            "EVENT_BUS_NAME": "b",
            "TIANAPI_KEY": "k",
            "APIZERO_KEY": "k",
            "APIZERO_REQUESTS_PER_SECOND": "2",
        }
    )
    assert settings.requests_per_second("apizero") == 2.0
    assert settings.requests_per_second("local") is None  # the offline engine is not paced


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)
