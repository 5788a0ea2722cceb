"""Pace calls to a provider so that the fleet stays under its rate limit.

Each instance gets an equal share: per-instance rate = fleet rate / instances, where
instances is the function's reserved concurrency (both come from one template parameter
set, see README "Pacing"). Slots are handed out in order, so concurrent callers in one
process (the local stack's threads) queue instead of bursting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Stay a hair under the limit: a server counting requests per wall-clock second must never see one too many.
SAFETY = 0.97


class Pacer:
    def __init__(
        self,
        requests_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        self.interval_s = 1.0 / (requests_per_second * SAFETY)
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until this caller's slot; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval_s
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return delay
