"""Shared fixtures: a moto server reached over HTTP, the stack's resources built from template.yaml,
the local upstream server, and the real RecognizeFunction handler loaded under its own module name."""

from __future__ import annotations

import functools
import io
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
import requests
from PIL import Image, ImageDraw

pytest.register_assert_rewrite("tests.fakes")  # before importing from it, so its asserts are rewritten too
from tests.fakes.fixtures import APIZERO_TEST_KEY, TIANAPI_TEST_KEY  # noqa: E402
from vehicle_ocr_local.emulator import SerializedMotoServer  # noqa: E402
from vehicle_ocr_local.stack import free_port, load_function  # noqa: E402
from vehicle_ocr_local.template import SSM_KEY_PARAMETERS, create_resources  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

pytest_plugins = ["tests.fakes.fixtures", "tests.fakes.log_audit"]

# No test may reach a real AWS account, whatever the developer's shell has configured.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="1",
    POWERTOOLS_SERVICE_NAME="vehicle-ocr",
    POWERTOOLS_METRICS_NAMESPACE="VehicleOcr",
)
# Every handler a test loads makes its own boto3 session, and each session parsed botocore's JSON models
# again (0.1-0.4 s a handler, hundreds of handlers). One loader for the test process: the same files,
# parsed once; what a session does with them is unchanged. The deployed layer's loading is the bench's.
_SHARED_BOTOCORE_LOADERS: dict[str | None, botocore.loaders.Loader] = {}


def _shared_botocore_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    if search_path_string not in _SHARED_BOTOCORE_LOADERS:
        _SHARED_BOTOCORE_LOADERS[search_path_string] = botocore.loaders.create_loader(search_path_string)
    return _SHARED_BOTOCORE_LOADERS[search_path_string]


botocore.session.create_loader = _shared_botocore_loader

# The offline engine on one thread per test worker: the workers already fill the cores, and onnxruntime's
# threads contending with the other worker cost a fifth more CPU time for the same results (measured).
os.environ.setdefault("VEHICLE_OCR_ENGINE_THREADS", "1")


# The modules that take more than a few seconds, longest first (measured by `pytest --junitxml`). The Makefile
# runs the suite on parallel workers (one more than the cores), each taking whole modules in collection order
# (--dist loadfile --no-loadscope-reorder): these start first and the short ones fill in after. By
# default xdist takes the modules with the most tests first, and so these last: the engine's accuracy
# module (6 tests, over a minute) then ran alone at the end while the other workers sat idle.
LONG_MODULES = (
    "integration/test_engine_accuracy.py",
    "integration/test_hostile_upstream.py",
    "integration/test_fault_injection.py",
    "integration/test_erase_races.py",
    "integration/test_recognize_failures.py",
    "integration/test_erase.py",
    "integration/test_erase_cli.py",
    "integration/test_sam_build.py",
    "integration/test_local_burst.py",
    "integration/test_local_stack.py",
    "integration/test_console.py",
    "integration/test_cli_recognize.py",
    "unit/test_engine.py",
    "integration/test_cli.py",
    "integration/test_cli_invoke.py",
    "integration/test_console_browser.py",
    "integration/test_redrive.py",
    "integration/test_local_unmatched_uploads.py",
    "integration/test_up_chain.py",
    "integration/test_up_ports.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {str(ROOT / "tests" / module): index for index, module in enumerate(LONG_MODULES)}
    if missing := [path for path in rank if not Path(path).is_file()]:
        raise pytest.UsageError(f"LONG_MODULES names modules that do not exist: {missing}")
    items.sort(key=lambda item: rank.get(str(item.path), len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session, reached over real HTTP like AWS itself.

    The local stack's serialised server: moto's backends are not thread-safe, and a plain threaded
    server lets two concurrent conditional writes both succeed (a paid answer taken twice).
    """
    port = free_port()
    server = SerializedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint  # every boto3 client, the handler's included, goes here
    yield endpoint
    server.stop()
    if previous is None:
        os.environ.pop("AWS_ENDPOINT_URL", None)
    else:
        os.environ["AWS_ENDPOINT_URL"] = previous


@dataclass
class Stack:
    """The emulated stack: resources from template.yaml, plus a queue that watches the event bus."""

    session: boto3.Session
    resources: Any
    bucket: str
    events_queue_url: str
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """One client per service (making one costs more than most of the requests a test sends)."""
        if service not in self.clients:
            self.clients[service] = self.session.client(service)
        return self.clients[service]

    @property
    def table(self) -> str:
        return self.resources.refs["ResultsTable"]

    @property
    def failure_queue_url(self) -> str:
        return self.resources.refs["FailureQueue"]

    def put_image(self, key: str, body: bytes) -> dict[str, Any]:
        response = self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        return {"size": len(body), "eTag": response["ETag"].strip('"'), "versionId": response.get("VersionId")}

    def items(self) -> list[dict[str, Any]]:
        """Every item of the results table, every page of the scan."""
        from vehicle_ocr.storage import from_dynamo

        paginator = self.client("dynamodb").get_paginator("scan")
        return [from_dynamo(item) for page in paginator.paginate(TableName=self.table) for item in page["Items"]]

    def records(self) -> list[dict[str, Any]]:
        """Every record item (not the plate sightings) in the results table."""
        from vehicle_ocr.storage import RECORD_SK, from_item

        return [from_item(item) for item in self.items() if item["sk"] == RECORD_SK]

    def records_of(self, key: str) -> list[dict[str, Any]]:
        """The records of one object key, newest first, through the index the query API reads."""
        from vehicle_ocr.queries import ResultsQueries

        return (
            ResultsQueries(self.table, self.client("dynamodb"))
            .object_history(self.bucket, key, limit=100, cursor=None)
            .items
        )

    def sightings(self) -> list[dict[str, Any]]:
        from vehicle_ocr.storage import PLATE_SK_PREFIX

        return [item for item in self.items() if item["sk"].startswith(PLATE_SK_PREFIX)]

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        """Receive and delete everything in a queue (messages with their attributes)."""
        sqs = self.client("sqs")
        received: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            received.extend(batch)

    def failure_messages(self) -> list[dict[str, Any]]:
        return [
            {
                "body": json.loads(m["Body"]),
                "attributes": {k: v["StringValue"] for k, v in m["MessageAttributes"].items()},
            }
            for m in self.drain(self.failure_queue_url)
        ]

    def success_events(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.drain(self.events_queue_url)]


@pytest.fixture
def stack(moto_endpoint: str) -> Stack:
    """A fresh emulated stack per test: moto reset, then every resource created from template.yaml."""
    return fresh_stack(moto_endpoint)


@functools.cache
def _test_session() -> boto3.Session:
    """One session for the tests' stacks: each new one loads the service models again (0.3 s a stack)."""
    return boto3.Session(region_name="us-east-1")


def fresh_stack(moto_endpoint: str) -> Stack:
    """Reset moto, create every resource from template.yaml, and watch the event bus."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    session = _test_session()
    resources = create_resources(session)
    # Watch the bus the way a downstream consumer would: a rule into a queue.
    sqs = session.client("sqs")
    events_queue_url = sqs.create_queue(QueueName="test-success-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=events_queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = session.client("events")
    bus = resources.refs["EventBus"]
    events.put_rule(Name="watch-all", EventBusName=bus, EventPattern=json.dumps({"source": ["vehicle-ocr"]}))
    events.put_targets(Rule="watch-all", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return Stack(session, resources, resources.refs["ImagesBucket"], events_queue_url)


@dataclass
class FakeLambdaContext:
    """What Powertools reads from the Lambda context object."""

    function_name: str = "RecognizeFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:RecognizeFunction"
    aws_request_id: str = ""
    remaining_ms: int = 60_000

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_function_module(function: str, module_name: str) -> Any:
    """Import functions/<function>/app.py under a distinct name (two app.py files must not collide),
    with the environment the test set: the local stack's own loader."""
    return load_function(function, module_name, os.environ)


@pytest.fixture
def recognize_env(stack: Stack, fake_upstream: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """RecognizeFunction's environment as template.yaml defines it, pointed at the local upstream."""
    env = recognize_environment(stack, fake_upstream)
    apply_environment(monkeypatch, env)
    return env


def recognize_environment(stack: Stack, fake_upstream: Any, **overrides: str) -> dict[str, str]:
    """RecognizeFunction's environment from template.yaml, pointed at ``fake_upstream``, with its keys."""
    env = stack.resources.local_function_environment("RecognizeFunction")
    env.update(
        TIANAPI_URL=fake_upstream.tianapi_url,
        APIZERO_URL=fake_upstream.apizero_url,
        TIANAPI_KEY=TIANAPI_TEST_KEY,
        APIZERO_KEY=APIZERO_TEST_KEY,
        UPSTREAM_READ_TIMEOUT="1.0",
        UPSTREAM_RETRY_BASE_DELAY="0.01",
        # Pacing has its own tests; here it would only slow the suite down.
        TIANAPI_REQUESTS_PER_SECOND="1000",
        APIZERO_REQUESTS_PER_SECOND="1000",
    )
    env.update(overrides)
    return env


def apply_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Set a function's environment; keys come from the environment locally, so the SSM parameter names go."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in SSM_KEY_PARAMETERS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def recognize_app(recognize_env: dict[str, str]) -> Any:
    """The real handler module, imported fresh (cold start) with the stack's environment."""
    return load_function_module("recognize", "recognize_app")


@pytest.fixture
def query_app(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real QueryFunction module with its environment from template.yaml."""
    for name, value in stack.resources.function_environment("QueryFunction").items():
        monkeypatch.setenv(name, value)
    return load_function_module("query", "query_app")


@pytest.fixture
def capture_logs() -> Iterator[Any]:
    """``capture_logs(app_module)`` → a buffer receiving everything that function's Powertools logger writes.

    Powertools binds its stream handler at import time, so pytest's capsys never sees it.
    """
    restore: list[tuple[Any, Any]] = []

    def capture(app_module: Any) -> io.StringIO:
        buffer = io.StringIO()
        handler = app_module.logger.registered_handler
        # Loggers are process-wide: an earlier quiet local stack may have left this one and its
        # children (vehicle_ocr's modules, imported once per process) at ERROR.
        import logging

        service = app_module.logger.service
        existing = logging.root.manager.loggerDict
        # Only loggers that exist: creating one for a placeholder name would re-parent (orphan) children.
        names = [name for name in existing if name == service or name.startswith(f"{service}.")]
        for name in names:
            std_logger = existing[name]
            if not isinstance(std_logger, logging.Logger):
                continue
            levels.append((std_logger, std_logger.level))
            std_logger.setLevel("INFO")  # the template's default LogLevel
        restore.append((handler, handler.setStream(buffer)))
        return buffer

    levels: list[tuple[Any, Any]] = []
    yield capture
    for handler, stream in restore:
        handler.setStream(stream)
    for logger, level in levels:
        logger.setLevel(level)


def invoke_async(app: Any, event: dict[str, Any], context: Any, *, attempts: int = 3) -> int:
    """Invoke like Lambda invokes asynchronously: retry a failed invocation, at most ``attempts`` times in all.

    Returns how many invocations it took (attempts + 1 if even the last one failed).
    """
    for attempt in range(1, attempts + 1):
        try:
            app.lambda_handler(event, context)
        except Exception:  # noqa: S112 - what Lambda counts as a failed invocation
            continue
        return attempt
    return attempts + 1


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def make_jpeg(seed: int = 0, size: tuple[int, int] = (64, 32)) -> bytes:
    """A small, valid, distinct JPEG per seed (distinct bytes → distinct sha256)."""
    image = Image.new("RGB", size, (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256))
    ImageDraw.Draw(image).text((2, 2), str(seed), fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
