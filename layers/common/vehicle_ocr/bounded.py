"""Whatever an upstream answers, what we keep of it is bounded and storable.

An upstream answer is stored twice (as a paid answer, and in the record's ``raw``) and
DynamoDB refuses what JSON allows: NaN and infinities, numbers beyond 38 digits or outside
1e-130..1e126, items over 400 KB.  ``storable()`` makes a copy that every store accepts:
such numbers become their text, long strings and lists are cut with a marker that says
so, deep nesting is cut, and the whole is kept under a byte budget.  Nothing here raises.

``safe_message()`` decides whether an upstream's free text may be copied into a record
or a failure message: never when it could carry a key or personal data.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, DecimalException, InvalidOperation
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT

TRUNCATED = "…[truncated]"
# DynamoDB numbers: up to 38 significant digits (as boto3 writes them), magnitude 1e-130 to 9.99e125.
_MAX_EXPONENT = 125
_MIN_EXPONENT = -130


def fits_dynamodb_number(value: int | float | Decimal) -> bool:
    """True when DynamoDB can hold ``value`` exactly as a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return False
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        return False
    if not number.is_finite():
        return False
    if not number.is_zero() and not _MIN_EXPONENT <= number.adjusted() <= _MAX_EXPONENT:
        return False
    # The serializer boto3 writes with is the judge: 38 digits as written, nothing rounded or clamped.
    try:
        DYNAMODB_CONTEXT.create_decimal(number)
    except DecimalException:
        return False
    return True


def cut_text(text: str, limit: int) -> str:
    """``text`` itself, or its first characters followed by a marker saying it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(TRUNCATED), 0)] + TRUNCATED


def storable(value: Any, *, max_text: int = 4096, max_items: int = 100, max_depth: int = 12) -> Any:
    """A JSON- and DynamoDB-safe copy of ``value`` (see the module docstring)."""
    return _copy(value, max_text, max_items, max_depth)


def _copy(value: Any, max_text: int, max_items: int, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        if not fits_dynamodb_number(value):
            return cut_text(str(value), max_text)
        return value
    if isinstance(value, str):
        return cut_text(value, max_text)
    if isinstance(value, dict | list | tuple) and depth <= 0:
        return TRUNCATED
    if isinstance(value, dict):
        items = list(value.items())
        copied = {
            cut_text(str(name), 256): _copy(item, max_text, max_items, depth - 1) for name, item in items[:max_items]
        }
        if len(items) > max_items:
            copied[TRUNCATED] = f"{len(items) - max_items} more fields"
        return copied
    if isinstance(value, list | tuple):
        copied_list = [_copy(item, max_text, max_items, depth - 1) for item in value[:max_items]]
        if len(value) > max_items:
            copied_list.append(f"{TRUNCATED} {len(value) - max_items} more items")
        return copied_list
    return cut_text(repr(type(value).__name__), max_text)


def json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))


def within_budget(value: Any, budget_bytes: int) -> Any:
    """``storable(value)``, cut harder until its JSON fits ``budget_bytes``; a stub saying so if nothing fits."""
    for max_text, max_items in ((4096, 1000), (512, 30), (64, 10)):
        copied = storable(value, max_text=max_text, max_items=max_items)
        size = json_size(copied)
        if size <= budget_bytes:
            return copied
    return {TRUNCATED: f"answer of {json_size(storable(value, max_text=64, max_items=10))}+ bytes not kept"}


# Free text from an upstream is copied only when nothing in it could be a secret or a person's data:
# long tokens (keys), long digit runs (ID card and phone numbers), e-mail addresses, control characters.
_UNSAFE = re.compile(r"[A-Za-z0-9_\-]{16,}|[0-9]{6,}|@|[\x00-\x1f\x7f-\x9f]")
MESSAGE_LIMIT = 200


def safe_message(text: Any, *, secrets: tuple[str, ...] = ()) -> str | None:
    """An upstream's message fit to copy into a record or message, or None when it is not."""
    if not isinstance(text, str):
        return None
    text = " ".join(text.split())
    if not text or len(text) > MESSAGE_LIMIT or _UNSAFE.search(text):
        return None
    if any(secret and secret in text for secret in secrets):
        return None
    return text
