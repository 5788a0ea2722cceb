"""One provider's rate limit, shared by every instance of the fleet through one DynamoDB item.

The item (``id = vehicle-ocr#rate#<provider>``) holds ``next_us``: the earliest wall-clock time,
in microseconds, at which the fleet's next call to the provider may go. A draw takes the slot
``max(next_us, now)`` and moves ``next_us`` one interval past it, in one conditional UpdateItem:

* busy (``next_us`` ahead of now): ``ADD next_us :interval`` if ``next_us >= :now``. ADD is
  atomic, so instances drawing at once get consecutive slots and never conflict;
* idle (``next_us`` behind now, or no item yet): ``SET next_us = :now + :interval`` if
  ``next_us <= :now``. Idle time is not saved up into a burst.

"Now" is the instance's clock plus a lead of twice the UpdateItem's recent round trip, so that
the slot has not already passed when the answer arrives.

The instance guesses which form to send from what it last saw of the item; a wrong guess fails
its condition, the failure carries the item (ReturnValuesOnConditionCheckFailure), and the other
form follows: one request per call, two after a wrong guess. More instances, a scale-out, or a
cold instance replacing a warm one change nothing: they all draw from the same item.

Slots are wall-clock times compared across machines, so a clock running ahead of another's
shortens the gap between their calls by the difference. The 5% margin (``SAFETY``: the calls of
any one-second window span 1.053 s) absorbs that, network jitter and late wake-ups; Lambda's
clocks are synchronised far closer than that. A caller that wakes more than ``LATE_S`` after its slot draws
again instead of going: late, its call would come closer than the limit allows to the calls
after it, which other instances send on time. DynamoDB errors left after botocore's retries
propagate: the call is not made, and the invocation fails and is retried like any other.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from vehicle_ocr.aws import AWS_CONFIG

KEY_PREFIX = "vehicle-ocr#rate#"
# Calls are 1 / (SAFETY x limit) apart: the `limit` calls of any window span 1.053 s, not 1 s. Wider
# than one process's pacer (vehicle_ocr.pacing): the margin also covers clocks and late wake-ups.
SAFETY = 0.95
# A slot woken this late is given up (see above): half of the 53 ms margin, the rest for jitter.
LATE_S = 0.025
# After this many late wake-ups in a row the call goes anyway (a refusal is then retried with backoff).
MAX_REDRAWS = 5
# A draw asks for one earliest slot, and next_us only grows: a wrong guess (ADD refused, next_us behind
# it) and a lost race (SET refused, someone moved next_us past it) leave an ADD that cannot be refused.
MAX_REQUESTS_PER_DRAW = 3
# A slot is drawn this far ahead of now: twice the draw's round trip as lately seen (a slot that came
# while its answer was on the way would be late), within these bounds; first guess: a new connection's.
LEAD_BOUNDS_S = (0.002, 0.25)
FIRST_ROUND_TRIP_S = 0.02


class SlotTooLate(RuntimeError):
    """The fleet's next slot for the provider comes later than the caller can wait."""


class RateBudget:
    """Fleet-wide spacing of one provider's calls: ``wait()`` returns when this caller's slot has come."""

    def __init__(
        self,
        table: str,
        provider: str,
        requests_per_second: float,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        self.table = table
        self.provider = provider
        self.interval_us = math.ceil(1_000_000 / (requests_per_second * SAFETY))
        self._key = {"id": {"S": KEY_PREFIX + provider}}
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()  # the guess and the counters; never held across a request
        self._seen_next_us = 0  # next_us as this process last saw it
        # The last draw had to wait: the fleet is at the limit. A new instance guesses so, as Lambda
        # starts instances when events queue up.
        self._busy = True
        self._round_trip_s = FIRST_ROUND_TRIP_S  # a moving average of the UpdateItem's
        self.requests = 0  # UpdateItems sent
        self.draws = 0  # slots taken (a late wake-up takes another)
        self.waited_s = 0.0  # in wait(), drawing and sleeping

    def wait(self, max_wait_s: float = math.inf) -> float:
        """Block until this caller's slot; returns the seconds waited.

        Raises ``SlotTooLate`` rather than sleep past ``max_wait_s`` (what the invocation has left):
        an instance killed while it waits would have spent its slot for nothing.
        """
        start = self._clock()
        for redraw in range(MAX_REDRAWS + 1):
            slot_us = self._draw()
            delay = slot_us / 1e6 - self._clock()
            if delay > max_wait_s - (self._clock() - start):
                raise SlotTooLate(f"{self.provider}: the next slot is {delay:.1f} s away")
            if delay > 0:
                self._sleep(delay)
            if self._clock() - slot_us / 1e6 <= LATE_S or redraw == MAX_REDRAWS:
                break
        waited = self._clock() - start
        with self._lock:
            self.waited_s += waited
        return waited

    @property
    def lead_s(self) -> float:
        """How far ahead of now a draw asks for its slot."""
        low, high = LEAD_BOUNDS_S
        return min(high, max(low, 2 * self._round_trip_s))

    def _draw(self) -> int:
        now_us = self._earliest_us()
        with self._lock:
            append = self._busy or self._seen_next_us > now_us
        for _ in range(MAX_REQUESTS_PER_DRAW):
            found = self._append(now_us) if append else self._start(now_us)
            if isinstance(found, _Slot):
                with self._lock:
                    self.draws += 1
                    self._seen_next_us = found.slot_us + self.interval_us
                    self._busy = found.slot_us > now_us
                return found.slot_us
            append = found > now_us  # the item as the failed condition found it
            with self._lock:
                self._seen_next_us = found
        raise RuntimeError(f"{self.provider} rate budget: no slot after {MAX_REQUESTS_PER_DRAW} requests")

    def _append(self, now_us: int) -> _Slot | int:
        """The slot at next_us, when next_us is not behind ``now_us``; else next_us as found."""
        answer = self._update(
            "ADD next_us :interval",
            "next_us >= :now",
            {":interval": {"N": str(self.interval_us)}, ":now": {"N": str(now_us)}},
            ReturnValues="UPDATED_NEW",
        )
        if isinstance(answer, int):
            return answer
        return _Slot(int(answer["Attributes"]["next_us"]["N"]) - self.interval_us)

    def _start(self, now_us: int) -> _Slot | int:
        """The slot ``now_us``, when next_us is not after it (or absent); else next_us as found."""
        answer = self._update(
            "SET next_us = :next",
            "attribute_not_exists(next_us) OR next_us <= :now",
            {":next": {"N": str(now_us + self.interval_us)}, ":now": {"N": str(now_us)}},
        )
        return answer if isinstance(answer, int) else _Slot(now_us)

    def _update(self, expression: str, condition: str, values: dict[str, Any], **extra: Any) -> dict[str, Any] | int:
        """The UpdateItem's answer, or next_us as the item holds it when the condition failed (0: no item)."""
        client = self._dynamodb()
        with self._lock:
            self.requests += 1
        sent = self._clock()
        try:
            return client.update_item(
                TableName=self.table,
                Key=self._key,
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **extra,
            )
        except client.exceptions.ConditionalCheckFailedException as failed:
            item = failed.response.get("Item") or {}
            return int(item.get("next_us", {}).get("N", "0"))
        finally:
            with self._lock:
                self._round_trip_s = 0.8 * self._round_trip_s + 0.2 * (self._clock() - sent)

    def _dynamodb(self) -> Any:
        # Made on first use, not at cold start: an instance that never calls a paced provider never pays for it.
        with self._lock:
            if self._client is None:
                import boto3

                self._client = boto3.client("dynamodb", config=AWS_CONFIG)
            return self._client

    def _earliest_us(self) -> int:
        """The earliest slot worth asking for: now, plus the time the answer takes to come back."""
        return int((self._clock() + self.lead_s) * 1_000_000)


class _Slot:
    __slots__ = ("slot_us",)

    def __init__(self, slot_us: int):
        self.slot_us = slot_us
