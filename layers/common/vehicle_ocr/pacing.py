"""Pace one process's calls to a provider so that they stay under its rate limit.

Used where one process is the whole fleet (``vehicle-ocr recognize``, tests that drive the
pipeline directly); a deployed fleet shares the limit through ``vehicle_ocr.rate_budget``, which
spaces calls by the same interval. Concurrent callers in one process share one pacer and go one
at a time.

Calls are spaced from when the previous caller was released, not from when it was
scheduled to be: a caller that wakes late (a busy CPU, a stalled thread) pushes the next
one back instead of letting it catch up, because a late call followed by one on time is
two calls closer together than the limit allows (`make bench` caught 13 refusals in 113
calls with slot-scheduling; none with this). What happens after release (connecting,
sending) is covered only by the 3% margin.
"""

from __future__ import annotations

import math
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
        self._last_call: float | None = None
        self._lock = threading.Lock()  # one caller at a time decides, sleeps and goes

    def wait(self, max_wait_s: float = math.inf) -> float:
        """Block until one interval has passed since the previous caller was released; returns the seconds waited.

        ``max_wait_s`` is accepted like the fleet-wide budget's: in one process the wait is at most the
        interval times the callers ahead, which the caller's time always covers.
        """
        start = self._clock()
        with self._lock:
            while self._last_call is not None:
                remaining = self._last_call + self.interval_s - self._clock()
                if remaining <= 0:
                    break
                self._sleep(remaining)
            self._last_call = self._clock()
            return self._last_call - start
