"""The local stack: in-process and through the `vehicle-ocr` command.

Start, upload, read back through the query API, stop, and nothing left running.
Providers point at the local upstream server so these tests do not depend on the
offline engine (tested on its own in test_engine_accuracy.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, unquote_plus

import pytest
import requests

from tests.conftest import free_port, make_jpeg
from vehicle_ocr_local.stack import LocalStack, StackConfig

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def no_moto_endpoint(monkeypatch):
    """The stack runs its own emulator; the session-wide one must not leak into it."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def wait_until(predicate, timeout_s: float = 60, interval_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError("condition not met in time")


def test_stack_in_process_processes_uploads_and_stops_cleanly(upstream_env, no_moto_endpoint, fake_upstream):
    threads_before = {t.ident for t in threading.enumerate()}
    # Given a running local stack whose providers are the local upstream server
    config = StackConfig(aws_port=0, api_port=0, environment=upstream_env, concurrency=2, quiet=True)
    with LocalStack(config) as stack:
        assert stack.providers == {"plate": "tianapi", "vehicle_license": "apizero"}
        # When images go into both prefixes, plus one outside them and one broken image
        stack.upload("plates/gate 1/沪A 1.jpg", make_jpeg(seed=1))
        stack.upload("vehicle-licenses/a+b.jpg", make_jpeg(seed=2))
        stack.upload("plates/broken.jpg", make_jpeg(seed=3)[:-200])
        stack.upload("receipts/not-ours.jpg", make_jpeg(seed=4))
        assert stack.wait_for(3, timeout_s=60) == 3

        # Then the query API on localhost answers for each of them
        by_object = requests.get(
            f"{stack.api_url}/results",
            params={"bucket": "vehicle-ocr-images", "key": "plates/gate 1/沪A 1.jpg"},
            timeout=10,
        ).json()
        assert by_object["status"] == "SUCCEEDED"
        plate = requests.get(f"{stack.api_url}/plates/{quote('沪A12345')}", timeout=10).json()
        assert {item["kind"] for item in plate["items"]} == {"plate", "vehicle_license"}
        failed = requests.get(f"{stack.api_url}/results", params={"status": "FAILED"}, timeout=10).json()["items"]
        assert [(r["source"]["key"], r["error"]["code"]) for r in failed] == [("plates/broken.jpg", "IMAGE_CORRUPT")]
        # And the object outside both prefixes was never dispatched (S3's prefix filters, from the template)
        assert "receipts/not-ours.jpg" not in json.dumps(requests.get(f"{stack.api_url}/results", timeout=10).json())

        # And successes reached the watch queue, the failure the failure queue
        sqs = stack.client("sqs")
        events = sqs.receive_message(QueueUrl=stack.events_queue_url, MaxNumberOfMessages=10)["Messages"]
        assert len(events) == 2
        failures = sqs.receive_message(QueueUrl=stack.resources.refs["FailureQueue"], MaxNumberOfMessages=10)
        assert [json.loads(m["Body"])["error"]["code"] for m in failures["Messages"]] == ["IMAGE_CORRUPT"]
        assert fake_upstream.billed() == 2

    # And after stop nothing of the stack keeps running (the emulator's last request threads end
    # as their connections close), and the environment is as it was
    def leftover():
        return [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]

    fake_upstream.stop()  # its keep-alive threads are the fixture's, not the stack's
    try:
        wait_until(lambda: not leftover(), timeout_s=10)
    except AssertionError:
        pytest.fail(f"threads left running: {leftover()}")
    assert "AWS_ENDPOINT_URL" not in os.environ
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{stack.api_url}/results", timeout=2)


def test_quiet_stack_prints_nothing_however_many_invocations(upstream_env, no_moto_endpoint, capfd):
    # Given a quiet stack (the demo draws its progress bar on stdout)
    config = StackConfig(aws_port=0, api_port=0, environment=upstream_env, concurrency=2, quiet=True)
    with LocalStack(config) as stack:
        # When more than 100 invocations run (Powertools publishes a metric once it holds 100 values)
        for index in range(101):
            stack.upload(f"plates/folder-{index}/", b"")
        assert stack.wait_for(101, timeout_s=60) == 101
    # Then nothing reached stdout: no metrics, no logs
    assert capfd.readouterr().out == ""


def test_failing_invocations_are_retried_then_sent_to_the_destination(upstream_env, no_moto_endpoint):
    # Given a stack whose results table has gone (every invocation fails after the paid call)
    config = StackConfig(
        aws_port=0, api_port=0, environment=upstream_env, retry_delays_s=(0.1, 0.1), concurrency=1, quiet=True
    )
    with LocalStack(config) as stack:
        stack.client("dynamodb").delete_table(TableName=stack.resources.refs["ResultsTable"])
        # When an image is uploaded
        stack.upload("plates/x.jpg", make_jpeg(seed=5))
        # Then Lambda's behaviour: the first try plus two retries, then the on-failure destination
        wait_until(lambda: stack.stats.dead_lettered == 1, timeout_s=30)
        assert stack.stats.retries == 2
        (message,) = stack.client("sqs").receive_message(QueueUrl=stack.resources.refs["RecognizeDeadLetterQueue"])[
            "Messages"
        ]
        record = json.loads(message["Body"])
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert unquote_plus(record["requestPayload"]["Records"][0]["s3"]["object"]["key"]) == "plates/x.jpg"


def test_up_command_serves_aws_and_the_api_until_stopped(upstream_env, tmp_path, no_moto_endpoint):
    # Given `vehicle-ocr up` on free ports
    aws_port, api_port = free_port(), free_port()
    env = {**os.environ, **upstream_env, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(VENV_BIN / "vehicle-ocr"), "up", "--aws-port", str(aws_port), "--api-port", str(api_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        # When it says it is ready
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "ready" in line:
                break
        assert any("ready" in line for line in lines), "".join(lines)

        # And images are copied in with the AWS CLI (or boto3 where the CLI is missing), into both prefixes
        endpoint = f"http://127.0.0.1:{aws_port}"
        plate, licence = tmp_path / "car 1.jpg", tmp_path / "front.jpg"
        plate.write_bytes(make_jpeg(seed=8))
        licence.write_bytes(make_jpeg(seed=9))
        aws = shutil.which("aws")
        cli_env = {
            **env,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        for path, key in ((plate, "plates/car 1.jpg"), (licence, "vehicle-licenses/front.jpg")):
            if aws:
                subprocess.run(  # noqa: S603
                    [aws, "--endpoint-url", endpoint, "s3", "cp", str(path), f"s3://vehicle-ocr-images/{key}"],
                    check=True,
                    env=cli_env,
                    capture_output=True,
                )
            else:
                subprocess.run(  # noqa: S603
                    [
                        str(VENV_BIN / "vehicle-ocr"),
                        "upload",
                        str(path),
                        "--endpoint",
                        endpoint,
                        "--kind",
                        "plate" if key.startswith("plates/") else "vehicle_license",
                    ],
                    check=True,
                    env=cli_env,
                )

        # Then within seconds the query API on localhost has both results
        api = f"http://127.0.0.1:{api_port}"
        items = wait_until(
            lambda: (r := requests.get(f"{api}/results", timeout=5).json()["items"]) and len(r) == 2 and r, timeout_s=30
        )
        assert sorted(item["source"]["key"] for item in items) == ["plates/car 1.jpg", "vehicle-licenses/front.jpg"]
        assert {item["status"] for item in items} == {"SUCCEEDED"}

        # And `vehicle-ocr results` reads them too: a table, and with --json every field
        listed = subprocess.run(  # noqa: S603
            [str(VENV_BIN / "vehicle-ocr"), "results", "--api", api], capture_output=True, text=True, check=True
        )
        assert len(listed.stdout.splitlines()) == 3  # the header and two rows
        as_json = subprocess.run(  # noqa: S603
            [str(VENV_BIN / "vehicle-ocr"), "results", "--api", api, "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert len(json.loads(as_json.stdout)) == 2
    finally:
        # When it is stopped
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    # Then it exits cleanly and frees its ports
    assert code == 0
    for port in (aws_port, api_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_demo_command_processes_every_sample_and_prints_the_table(upstream_env, tmp_path, no_moto_endpoint):
    # Given a samples folder with plates and a licence (one broken)
    (tmp_path / "plates").mkdir()
    (tmp_path / "vehicle-licenses").mkdir()
    (tmp_path / "plates" / "a.jpg").write_bytes(make_jpeg(seed=10))
    (tmp_path / "plates" / "b.jpg").write_bytes(make_jpeg(seed=11)[:-300])
    (tmp_path / "vehicle-licenses" / "c.jpg").write_bytes(make_jpeg(seed=12))
    # When the demo runs on it
    result = subprocess.run(  # noqa: S603
        [str(VENV_BIN / "vehicle-ocr"), "demo", "--samples", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, **upstream_env, "COLUMNS": "200"},
        timeout=300,
    )
    # Then it exits 0 having processed all three, and the table shows each with its outcome
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "3 uploaded, 3 processed: 2 SUCCEEDED, 1 FAILED" in out
    for text in ("plates/a.jpg", "plates/b.jpg", "vehicle-licenses/c.jpg", "IMAGE_CORRUPT", "沪A12345"):
        assert text in out
    assert "张三" not in out  # the table never shows an owner
