"""The local stack's S3 events carry the object's version and a sequencer, as S3's do.

moto's notifications name neither: local records showed ``version_id: null`` in a versioned
bucket, and after A, B, then A again to one key the object's latest record was B's (the
second A had the first A's ETag, so the same record, and no sequencer ordered the writes).
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import make_jpeg
from vehicle_ocr_local.stack import LocalStack, StackConfig

KEY = "plates/gate 1/沪A.jpg"


@pytest.fixture
def no_moto_endpoint(monkeypatch):
    """The stack runs its own emulator; the session-wide one must not leak into it."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def wait_for_records(api_url: str, count: int, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    items: list[dict] = []
    while time.monotonic() < deadline:
        items = requests.get(f"{api_url}/results", params={"kind": "plate"}, timeout=10).json()["items"]
        if len(items) >= count:
            return items
        time.sleep(0.2)
    raise AssertionError(f"{len(items)} of {count} records after {timeout_s} s: {items}")


def test_a_b_then_a_again_leaves_a_as_the_latest_record_with_each_version(
    upstream_env, fake_upstream, no_moto_endpoint
):
    # Given a running stack whose plate provider answers A and B with different plates
    image_a, image_b = make_jpeg(seed=61), make_jpeg(seed=62)
    fake_upstream.set_answer(image_a, {"color": "blue", "number": "沪A11111"})
    fake_upstream.set_answer(image_b, {"color": "blue", "number": "京B22222"})
    config = StackConfig(aws_port=0, api_port=0, environment=upstream_env, concurrency=4, quiet=True)
    with LocalStack(config) as stack:
        s3 = stack.client("s3")
        # When A, B, then A again are uploaded to one key of the (versioned) bucket
        versions = [
            s3.put_object(Bucket=stack.config.bucket, Key=KEY, Body=body)["VersionId"]
            for body in (image_a, image_b, image_a)
        ]
        assert len(set(versions)) == 3

        # Then there is one record per version, each naming its own version and the plate of its bytes
        records = wait_for_records(stack.api_url, 3)
        assert sorted((r["source"]["version_id"], r["plates"][0]["number"]) for r in records) == sorted(
            [(versions[0], "沪A11111"), (versions[1], "京B22222"), (versions[2], "沪A11111")]
        )
        # And the object's latest record is the last write's, A's
        latest = requests.get(
            f"{stack.api_url}/results", params={"bucket": stack.config.bucket, "key": KEY}, timeout=10
        )
        assert latest.status_code == 200
        assert latest.json()["source"]["version_id"] == versions[2]
        assert latest.json()["plates"][0]["number"] == "沪A11111"


def test_events_carry_the_version_and_a_sequencer_that_grows_with_each_write(
    upstream_env, no_moto_endpoint, monkeypatch
):
    # Given a running stack whose handler invocations are watched
    config = StackConfig(aws_port=0, api_port=0, environment=upstream_env, concurrency=3, quiet=True)
    with LocalStack(config) as stack:
        delivered: list[dict] = []
        handler = stack.recognize.lambda_handler

        def watching(event, context):
            delivered.append(event["Records"][0]["s3"]["object"])
            return handler(event, context)

        monkeypatch.setattr(stack.recognize, "lambda_handler", watching)
        s3 = stack.client("s3")
        # When one key is written five times (two of them the same bytes) and another key once
        bodies = [make_jpeg(seed=70), make_jpeg(seed=71), make_jpeg(seed=70), make_jpeg(seed=72), make_jpeg(seed=73)]
        versions = [s3.put_object(Bucket=stack.config.bucket, Key=KEY, Body=b)["VersionId"] for b in bodies]
        other = s3.put_object(Bucket=stack.config.bucket, Key="plates/other.jpg", Body=make_jpeg(seed=74))
        assert stack.wait_for(6, timeout_s=60) == 6

    # Then every event names its object's version, each version exactly once
    by_version = {obj["versionId"]: obj for obj in delivered}
    assert len(delivered) == 6 and set(by_version) == {*versions, other["VersionId"]}
    # And the sequencers are hex strings of one width that grow with the writes to the key
    sequencers = [by_version[version]["sequencer"] for version in versions]
    assert all(int(sequencer, 16) >= 0 and len(sequencer) == len(sequencers[0]) for sequencer in sequencers)
    assert sequencers == sorted(sequencers) and len(set(sequencers)) == 5
