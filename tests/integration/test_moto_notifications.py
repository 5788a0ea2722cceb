"""The handler on events written by the emulator's own S3 notifications, not by hand.

moto's S3 notifies an SQS queue (it cannot run Lambda here); the local stack drains that
queue and invokes the handler with the event as S3 sent it. moto URL-encodes even "/",
and its events lack fields Powertools' parser model requires.
"""

from __future__ import annotations

import json

from tests.conftest import make_jpeg


def subscribe_bucket_to_queue(stack) -> str:
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName="test-s3-notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.client("s3").put_bucket_notification_configuration(
        Bucket=stack.bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    return url


def test_keys_as_moto_encodes_them_reach_the_right_records(stack, recognize_app, lambda_context, fake_upstream):
    # Given the bucket notifies a queue, and objects with awkward keys are uploaded
    queue_url = subscribe_bucket_to_queue(stack)
    keys = ["plates/cam1/沪A 1.jpg", "plates/gate 2/a+b.jpg", "vehicle-licenses/行驶证 正面.png"]
    for seed, key in enumerate(keys):
        stack.put_image(key, make_jpeg(seed=seed + 40))

    # When every notification is handed to the handler as it arrived
    notifications = stack.drain(queue_url)
    for message in notifications:
        recognize_app.lambda_handler(json.loads(message["Body"]), lambda_context)

    # Then each object has one record under its decoded key
    assert sorted(record["source"]["key"] for record in stack.records()) == sorted(keys)
    assert all(record["status"] == "SUCCEEDED" for record in stack.records())
    assert fake_upstream.billed() == 3
