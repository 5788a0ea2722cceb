"""What the paid APIs were asked and what they cost: one counter item per provider and UTC day.

The recognition function adds each invocation's calls to the results table with one
``UpdateItem ADD`` per provider it asked (never one per call), from the call logs of the
uploads it processed; the query API (``GET /usage``) and the console read the counters
back without CloudWatch. Counter items live in their own partition
(``pk=USAGE, sk=DAY#<YYYY-MM-DD>#<provider>``) and carry none of the attributes the
listings' indexes are keyed on (``created_sort``, ``plate_number``, ``vin``, ``object_ref``,
``kind``, ``status``), so no listing and no erasure ever meets them.

Per provider and day:

* ``calls``: requests sent; ``billed``: answers a paid provider gave (it bills every answer,
  a usable one or not; the offline engine bills nothing); ``possibly_billed``: requests that
  got no answer after they went out (a provider may have billed them);
* ``reused``: answers served from the paid-answer store instead of paying again;
* ``fallbacks``: times the provider could not answer and the next of the chain was asked.

Money is ``billed`` x the provider's price per call (template parameters
``TianapiPricePerCall`` and ``ApizeroPricePerCall``, passed to the query function).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aws_lambda_powertools import Logger

from vehicle_ocr.errors import ConfigurationError

logger = Logger(child=True)

USAGE_PK = "USAGE"
DAY_PREFIX = "DAY#"
COUNTERS = ("calls", "billed", "possibly_billed", "reused", "fallbacks")
CURRENCY = "CNY"  # both providers price in yuan
# Providers with a price parameter (environment ``<NAME>_PRICE_PER_CALL``); any other (the offline engine) is free.
PRICED_PROVIDERS = ("tianapi", "apizero")
MAX_DAYS = 366


@dataclass
class UsageTally:
    """One invocation's counts, per provider: filled as the uploads are recognised, written once at the end."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, provider: str, counter: str, amount: int = 1) -> None:
        if counter not in COUNTERS:
            raise ValueError(f"unknown usage counter {counter!r}")
        if amount:
            self.counts.setdefault(provider, Counter())[counter] += amount

    def merge(self, other: UsageTally) -> None:
        for provider, counts in other.counts.items():
            for counter, amount in counts.items():
                self.add(provider, counter, amount)

    def __bool__(self) -> bool:
        return any(self.counts.values())


class UsageCounters:
    """The write side: add one invocation's tally to the day's counters."""

    def __init__(self, table_name: str, client: Any):
        self.table_name = table_name
        self._client = client

    def add(self, day: date, tally: UsageTally) -> None:
        for provider, counts in sorted(tally.counts.items()):
            values = {f":{counter}": {"N": str(counts.get(counter, 0))} for counter in COUNTERS}
            self._client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": USAGE_PK}, "sk": {"S": f"{DAY_PREFIX}{day.isoformat()}#{provider}"}},
                UpdateExpression="SET #day = :day, provider = :provider ADD "
                + ", ".join(f"{counter} :{counter}" for counter in COUNTERS),
                ExpressionAttributeNames={"#day": "day"},
                ExpressionAttributeValues={
                    ":day": {"S": day.isoformat()},
                    ":provider": {"S": provider},
                    **values,
                },
            )


@dataclass(frozen=True)
class Prices:
    """Price per call of each paid provider, in CNY."""

    per_call: Mapping[str, Decimal]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Prices:
        source = os.environ if env is None else env
        prices: dict[str, Decimal] = {}
        for provider in PRICED_PROVIDERS:
            name = f"{provider.upper()}_PRICE_PER_CALL"
            raw = (source.get(name) or "0").strip()
            try:
                price = Decimal(raw)
            except InvalidOperation:
                raise ConfigurationError(f"{name} must be a price in CNY such as 0.05, not {raw!r}") from None
            if not price.is_finite() or price < 0:
                raise ConfigurationError(f"{name} must be a price of zero or more, not {raw!r}")
            prices[provider] = price
        return cls(prices)

    def of(self, provider: str) -> Decimal:
        return self.per_call.get(provider, Decimal(0))


class InvalidRange(ValueError):
    """The days asked for are not a range this report gives."""


def day_range(first: str | None, last: str | None, *, today: date) -> tuple[date, date]:
    """Parse ``from`` / ``to`` (YYYY-MM-DD, inclusive); defaults: the 30 days ending today."""
    try:
        end = date.fromisoformat(last) if last else today
        start = date.fromisoformat(first) if first else end - timedelta(days=29)
    except ValueError:
        raise InvalidRange("from and to must be dates written YYYY-MM-DD") from None
    if start > end:
        raise InvalidRange("from must not be after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidRange(f"at most {MAX_DAYS} days at once")
    return start, end


class UsageReport:
    """The read side: counters per day and provider, with their money, for ``GET /usage`` and the console."""

    def __init__(self, table_name: str, client: Any, prices: Prices):
        self.table_name = table_name
        self._client = client
        self.prices = prices

    def items(self, start: date, end: date) -> Iterable[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": {"S": USAGE_PK},
                ":first": {"S": f"{DAY_PREFIX}{start.isoformat()}#"},
                ":last": {"S": f"{DAY_PREFIX}{end.isoformat()}#\uffff"},
            },
        }
        while True:
            response = self._client.query(**request)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def report(self, start: date, end: date) -> dict[str, Any]:
        by_day: dict[str, list[dict[str, Any]]] = {}
        for item in self.items(start, end):
            provider = item["provider"]["S"]
            counts = {counter: int(item.get(counter, {}).get("N", "0")) for counter in COUNTERS}
            cost = self.prices.of(provider) * counts["billed"]
            by_day.setdefault(item["day"]["S"], []).append({"provider": provider, **counts, "cost": _money(cost)})
        days = []
        totals: Counter[str] = Counter()
        total_cost = Decimal(0)
        moment = start
        while moment <= end:
            providers = sorted(by_day.get(moment.isoformat(), []), key=lambda entry: entry["provider"])
            day_cost = sum((Decimal(str(entry["cost"])) for entry in providers), Decimal(0))
            day_counts = {counter: sum(entry[counter] for entry in providers) for counter in COUNTERS}
            totals.update(day_counts)
            total_cost += day_cost
            days.append({"day": moment.isoformat(), **day_counts, "cost": _money(day_cost), "providers": providers})
            moment += timedelta(days=1)
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "currency": CURRENCY,
            "price_per_call": {provider: _money(price) for provider, price in sorted(self.prices.per_call.items())},
            "totals": {**{counter: totals[counter] for counter in COUNTERS}, "cost": _money(total_cost)},
            "days": days,
        }


def _money(amount: Decimal) -> float:
    return float(round(amount, 4))
