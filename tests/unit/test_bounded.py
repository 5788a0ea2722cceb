"""bounded: whatever an upstream answers, what we keep of it is JSON, fits DynamoDB and stays small.

Numbers are checked against boto3's own ``TypeSerializer`` (what the storage layer writes with),
not against a copy of the rule: the serializer refuses NaN, +Infinity and more than 38 digits of
precision.  It leaves the magnitude range (1e-130 .. 9.99e125) and -Infinity to the DynamoDB
service, so those edges are checked against the limits DynamoDB documents.
"""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from vehicle_ocr.bounded import TRUNCATED, cut_text, fits_dynamodb_number, safe_message, storable, within_budget
from vehicle_ocr.storage import _to_dynamo, from_dynamo

FORTY_DIGITS = int("1234567890" * 4)


def boto3_accepts(value: Any) -> bool:
    """Whether boto3's serializer writes ``value``, given as ``Decimal(str(value))``, as a DynamoDB number."""
    try:
        TypeSerializer().serialize(Decimal(str(value)))
    except (TypeError, decimal.DecimalException):
        return False
    return True


def stored_and_read_back(value: Any) -> Any:
    """``value`` written through the project's storage conversion (boto3's serializer) and read back."""
    return from_dynamo(_to_dynamo({"answer": value}))["answer"]


def as_json(value: Any) -> str:
    """Strict JSON, as a JSON log line or an API response needs it: no NaN, no infinities."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def nested(levels: int, *, kind: type) -> Any:
    """A value nested ``levels`` deep, built without recursion."""
    value: Any = "bottom"
    for _ in range(levels):
        value = [value] if kind is list else {"next": value}
    return value


def depth_of(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        depth += 1
    return depth


# --------------------------------------------------------------------------- fits_dynamodb_number


@pytest.mark.parametrize(
    ("number", "fits"),
    [
        pytest.param(int("1" * 38), True, id="38-digit-int"),
        pytest.param(int("1" * 39), False, id="39-digit-int"),
        pytest.param(-int("9" * 38), True, id="negative-38-nines"),
        pytest.param(-int("9" * 39), False, id="negative-39-nines"),
        pytest.param(FORTY_DIGITS, False, id="40-digit-int"),
        pytest.param(Decimal("1." + "1" * 37), True, id="decimal-38-digits"),
        pytest.param(Decimal("1." + "1" * 38), False, id="decimal-39-digits"),
        pytest.param(Decimal("-0." + "0" * 20 + "1" * 38), True, id="decimal-38-digits-after-leading-zeros"),
        pytest.param(Decimal("1" * 38 + "E+3"), True, id="trailing-zeros-in-exponent"),
        pytest.param(1e40, True, id="float-1e40"),
        pytest.param(123.456, True, id="float"),
        pytest.param(Decimal("7.50"), True, id="decimal-trailing-fraction-zero"),
        pytest.param(float("nan"), False, id="nan"),
        pytest.param(float("inf"), False, id="inf"),
        pytest.param(Decimal("NaN"), False, id="decimal-nan"),
        pytest.param(Decimal("Infinity"), False, id="decimal-inf"),
        pytest.param(5e-324, False, id="smallest-float"),
        pytest.param(1.7976931348623157e308, False, id="largest-float"),
        pytest.param(0, True, id="zero"),
        pytest.param(0.0, True, id="float-zero"),
        pytest.param(-0.0, True, id="negative-zero"),
        pytest.param(Decimal("-0.00"), True, id="decimal-zero"),
    ],
)
def test_precision_edges_agree_with_boto3(number, fits):
    """Given a number at DynamoDB's precision edges (38 significant digits, NaN, infinity, float extremes),
    when fits_dynamodb_number judges it,
    then it says what boto3's serializer does: what fits is written, what does not is refused."""
    assert fits_dynamodb_number(number) is fits
    assert boto3_accepts(number) is fits


# DynamoDB: positive numbers 1E-130 .. 9.9999999999999999999999999999999999999E+125, negatives mirrored.
LARGEST = Decimal("9." + "9" * 37 + "E+125")
LARGEST_NEGATIVE = Decimal("-9." + "9" * 37 + "E+125")  # not -LARGEST: unary minus rounds to 28 digits


@pytest.mark.parametrize(
    ("number", "fits"),
    [
        (9.99e125, True),
        (LARGEST, True),
        (1e126, False),
        (Decimal("1E+126"), False),
        (1e-130, True),
        (Decimal("1E-130"), True),
        (1e-131, False),
        (Decimal("1E-131"), False),
        (-9.99e125, True),
        (LARGEST_NEGATIVE, True),
        (-1e126, False),
        (-1e-130, True),
        (-1e-131, False),
        (Decimal("-1E-131"), False),
    ],
    ids=str,
)
def test_magnitude_edges_follow_dynamodb(number, fits):
    """Given a number at the edge of DynamoDB's range,
    when fits_dynamodb_number judges it,
    then only 1e-130 .. 9.99e125 (either sign) fits, and what fits is written by boto3
    (boto3 leaves the range to the service, so a number outside it would fail only at the service)."""
    assert fits_dynamodb_number(number) is fits
    if fits:
        assert boto3_accepts(number)


@pytest.mark.parametrize("number", [float("-inf"), Decimal("-Infinity")], ids=str)
def test_negative_infinity_does_not_fit(number):
    """Given -Infinity (which boto3's serializer lets through as the text "-Infinity"),
    when it is judged,
    then it does not fit, so storage keeps it as text instead of sending DynamoDB a number it refuses."""
    assert fits_dynamodb_number(number) is False
    assert storable({"score": number}) == {"score": str(number)}


@pytest.mark.parametrize(
    "number",
    [
        pytest.param(10**40, id="1e40-as-int"),
        pytest.param(int("1" * 38 + "000"), id="38-digits-then-zeros-int"),
        pytest.param(-(10**38), id="negative-1e38-as-int"),
        pytest.param(Decimal("1." + "0" * 50), id="decimal-with-50-zero-decimals"),
        pytest.param(Decimal("1." + "1" * 37 + "E-130"), id="decimal-38-digits-at-1e-130"),
        pytest.param(Decimal("0E-200"), id="decimal-zero-tiny-exponent"),
    ],
)
def test_numbers_boto3_refuses_as_written_do_not_fit(number):
    """Given a number whose value DynamoDB could hold but whose written form boto3 refuses,
    when fits_dynamodb_number judges it,
    then it agrees with boto3 (so storable keeps it as text instead of letting the write fail)."""
    assert fits_dynamodb_number(number) is boto3_accepts(number)


@pytest.mark.parametrize(
    "number",
    [
        pytest.param(10**40, id="1e40-as-int"),
        pytest.param(int("1" * 38 + "000"), id="38-digits-then-zeros-int"),
        pytest.param(Decimal("1." + "0" * 50), id="decimal-with-50-zero-decimals"),
        pytest.param(Decimal("1." + "1" * 37 + "E-130"), id="decimal-38-digits-at-1e-130"),
        pytest.param(Decimal("0E-200"), id="decimal-zero-tiny-exponent"),
    ],
)
def test_an_answer_with_written_out_zeros_is_stored(number):
    """Given an upstream answer holding a huge round number as JSON parses it (e.g. 10000…0, 41 digits),
    when storable copies it and storage writes the copy,
    then the write succeeds."""
    answer = {"total_mass": number}

    stored_and_read_back(storable(answer))


# --------------------------------------------------------------------------- storable


def json_answer_with_bad_numbers() -> Any:
    return json.loads('{"code": 200, "score": NaN, "mass": 1e400, "low": -Infinity, "id": ' + str(FORTY_DIGITS) + "}")


def self_containing_list() -> list[Any]:
    loop: list[Any] = ["start"]
    loop.append(loop)
    return loop


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(secret=tk-test-key)"


HOSTILE_VALUES = {
    "nan": float("nan"),
    "infinity": float("inf"),
    "json-1e400": json.loads("1e400"),
    "40-digit-int": FORTY_DIGITS,
    "negative-40-digit-int": -FORTY_DIGITS,
    "json-answer-with-bad-numbers": json_answer_with_bad_numbers(),
    "nested-lists-10000": nested(10_000, kind=list),
    "nested-dicts-10000": nested(10_000, kind=dict),
    "dict-5000-keys": {f"field{i}": i for i in range(5000)},
    "list-5000-items": [float("nan")] * 5000,
    "string-10MB": "x" * 10_000_000,
    "chinese-string-3MB": "车" * 1_000_000,
    "tuple": (1, "a", (2.5, float("nan"))),
    "bytes": b"\x89PNG\r\n",
    "object": Opaque(),
    "odd-keys": {1: "int key", None: "none key", ("a", 1): "tuple key", "k" * 1000: "long key"},
    "set": {1, 2, 3},
    "contains-itself": self_containing_list(),
    "plain": {"number": "沪A12345", "color": "blue", "confidence": 0.987, "ok": True, "none": None},
}


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_any_value_becomes_strict_json_that_storage_writes(value):
    """Given any value an upstream answer may hold once parsed (or a Python object by mistake),
    when storable copies it,
    then the copy is strict JSON, and storage writes it and reads the same copy back."""
    kept = storable(value)

    as_json(kept)
    assert stored_and_read_back(kept) == kept


def test_numbers_dynamodb_cannot_hold_are_kept_as_their_text():
    """Given an answer with NaN, 1e400, -Infinity and a 40-digit id,
    when storable copies it,
    then each becomes its text (the digits of the id all kept) and the ordinary code stays a number."""
    kept = storable(json_answer_with_bad_numbers())

    assert kept == {"code": 200, "score": "nan", "mass": "inf", "low": "-inf", "id": str(FORTY_DIGITS)}


def test_plain_answers_are_kept_as_they_are():
    """Given an ordinary answer,
    when storable copies it,
    then nothing is changed."""
    answer = {"number": "沪A12345", "color": "blue", "confidence": 0.987, "ok": True, "none": None, "list": [1, 2]}

    assert storable(answer) == answer


def test_deep_nesting_is_cut_with_a_marker():
    """Given an answer nested 10,000 levels deep,
    when storable copies it,
    then the copy stops a dozen levels down with the truncation marker."""
    kept = storable(nested(10_000, kind=dict))

    assert depth_of(kept) <= 14
    assert TRUNCATED in as_json(kept)


def test_wide_objects_keep_their_first_fields_and_say_how_many_were_cut():
    """Given an object with 5,000 fields,
    when storable copies it,
    then the first hundred are kept and a marker says 4,900 more were left out."""
    kept = storable({f"field{i}": i for i in range(5000)})

    assert [name for name in kept if name != TRUNCATED] == [f"field{i}" for i in range(100)]
    assert kept[TRUNCATED] == "4900 more fields"


def test_long_text_is_cut_with_a_marker():
    """Given a 10 MB string,
    when storable copies it,
    then its beginning is kept and the copy ends with the truncation marker."""
    kept = storable("x" * 10_000_000)

    assert len(kept) == 4096
    assert kept.startswith("x" * 1000) and kept.endswith(TRUNCATED)


def test_objects_are_named_never_dumped():
    """Given bytes or an arbitrary object (whose repr could carry anything),
    when storable copies it,
    then only its type name is kept."""
    assert "bytes" in storable(b"\x89PNG")
    kept = storable(Opaque())
    assert "Opaque" in kept and "tk-test-key" not in kept


# --------------------------------------------------------------------------- within_budget


def utf8_size(value: Any) -> int:
    return len(as_json(value).encode("utf-8"))


OVERSIZED = {
    "string-10MB": "x" * 10_000_000,
    "chinese-1MB": "车" * 350_000,
    "dict-5000-keys": {f"field{i}": "v" * 200 for i in range(5000)},
    "nested-10000": nested(10_000, kind=list),
    "grid-of-long-strings": [[["s" * 100 for _ in range(30)] for _ in range(10)] for _ in range(10)],
    "chinese-grid": [["车" * 5000 for _ in range(50)] for _ in range(50)],
    "bad-numbers": [json_answer_with_bad_numbers()] * 3000,
}


@pytest.mark.parametrize("budget", [1_000, 16_384, 200_000])
@pytest.mark.parametrize("value", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_oversized_answers_fit_the_budget_and_say_they_were_cut(value, budget):
    """Given an answer far over the byte budget (ASCII or 3-byte Chinese characters),
    when within_budget keeps it,
    then the kept copy's UTF-8 JSON fits the budget, says it was truncated, and storage writes it."""
    kept = within_budget(value, budget)

    assert utf8_size(kept) <= budget
    assert TRUNCATED in as_json(kept)
    assert stored_and_read_back(kept) == kept


def test_nothing_fits_gives_a_stub_that_says_so():
    """Given an answer that stays over budget even cut to 10 items of 64 characters,
    when within_budget keeps it under 16 KB,
    then a small stub says the answer was not kept."""
    grid = [[["s" * 100 for _ in range(10)] for _ in range(10)] for _ in range(10)]

    kept = within_budget(grid, 16_384)

    assert list(kept) == [TRUNCATED]
    assert "not kept" in kept[TRUNCATED]


def test_an_answer_within_budget_is_kept_whole():
    """Given an answer under the budget,
    when within_budget keeps it,
    then it is unchanged."""
    answer = [{"number": "沪A12345", "color": "blue"}, {"number": "京B99999", "color": "yellow"}]

    assert within_budget(answer, 16_384) == answer


# --------------------------------------------------------------------------- cut_text


@pytest.mark.parametrize("text", ["", "沪A12345", "x" * 200])
def test_text_within_the_limit_is_unchanged(text):
    """Given text no longer than the limit,
    when it is cut,
    then it is returned as it is."""
    assert cut_text(text, 200) == text


@pytest.mark.parametrize("text", ["x" * 201, "识别" * 1000])
def test_text_over_the_limit_is_cut_to_the_limit_with_a_marker(text):
    """Given text over the limit (characters, not bytes),
    when it is cut,
    then the result has exactly the limit's length, keeps the text's beginning and ends with the marker."""
    cut = cut_text(text, 200)

    assert len(cut) == 200
    assert cut.endswith(TRUNCATED)
    assert text.startswith(cut.removesuffix(TRUNCATED))


# --------------------------------------------------------------------------- safe_message


@pytest.mark.parametrize(
    "message", ["API可用次数不足", "unknown failure", "图片无法识别,请确认为行驶证且图片清晰完整", "错" * 200]
)
def test_ordinary_short_messages_are_copied(message):
    """Given an upstream's ordinary short message (Chinese or English, up to 200 characters),
    when it is checked,
    then it may be copied as it is."""
    assert safe_message(message) == message


def test_whitespace_is_collapsed():
    """Given a message with runs of spaces, tabs and line breaks,
    when it is checked,
    then it comes back on one line with single spaces (a log line cannot be split by it)."""
    assert safe_message("  unknown\tfailure\r\n  retry later ") == "unknown failure retry later"


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("invalid key tk-test-key", "the key passed in secrets"),
        ("key sk_live_0123456789abcdef refused", "a long token"),
        ("bad token ABCDEFGHIJKLMNOP", "a 16-character token"),
        ("owner phone 13800138000", "a phone number"),
        ("id 310101199001011234 not found", "an ID card number"),
        ("order 123456 failed", "six digits"),
        ("contact admin@example.com", "an e-mail address"),
        ("a@b", "an @"),
        ("bad\x00byte", "NUL"),
        ("\x1b[31mred\x1b[0m", "an ANSI escape"),
        ("del\x7fete", "DEL"),
        ("错" * 201, "over 200 characters"),
        ("", "empty"),
        ("   \n\t ", "only whitespace"),
    ],
)
def test_messages_that_could_carry_secrets_or_personal_data_are_refused(message, why):
    """Given a message that could carry a key or personal data, or is unprintable or too long,
    when it is checked with the call's key as a secret,
    then it is refused."""
    assert safe_message(message, secrets=("tk-test-key",)) is None, why


@pytest.mark.parametrize("value", [None, 150, 1.5, b"API error", ["unknown failure"], {"msg": "x"}])
def test_non_strings_are_refused(value):
    """Given an upstream ``msg`` that is not a string,
    when it is checked,
    then it is refused."""
    assert safe_message(value) is None


def test_an_empty_secret_does_not_refuse_everything():
    """Given an empty secret (a key source that returned nothing),
    when an ordinary message is checked,
    then it is still copied."""
    assert safe_message("unknown failure", secrets=("",)) == "unknown failure"


@pytest.mark.parametrize("message", ["fail\x9b31mred", "fail\x90payload\x9c"])
def test_c1_control_characters_are_refused(message):
    """Given a message with a C1 control character (unicodedata category Cc, like \\x1b),
    when it is checked,
    then it is refused like the other control characters."""
    assert safe_message(message) is None
