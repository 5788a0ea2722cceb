"""The whole stack on one machine: no AWS account, no network.

* AWS is moto's server, reached over HTTP by boto3 like the real thing.
* The stack's resources are created from template.yaml (``vehicle_ocr_local.template``).
* The bucket notifies a queue (moto cannot run Lambda here) with the prefix filters of the
  images bucket's notifications to RecognizeFunction (template.yaml); a dispatcher drains it
  and invokes the real handler with the real event, several at a time, retrying failed
  invocations the way Lambda retries asynchronous ones (two retries, then the on-failure
  destination queue).
* Successes on the event bus are copied into a local queue by a rule, so they can be watched.
* The query API is the real QueryFunction behind the local API Gateway adapter.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import importlib.util
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote_plus

import boto3
import requests
from botocore.config import Config
from werkzeug.serving import get_sockaddr, select_address_family

from vehicle_ocr_local.api_gateway import (
    LocalApiServer,
    LocalLambdaContext,
    gateway_responses_from_template,
    routes_from_template,
)
from vehicle_ocr_local.template import LOCAL_BUCKET, REGION, LocalResources, create_resources, load_template

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO_ROOT / "functions"
CONSOLE_PREFIX = "/console"
NOTIFICATION_QUEUE = "vehicle-ocr-local-s3-notifications"
# A message with this attribute only wakes a worker's long poll on stop() (LocalStack._wake_pollers).
STOP_ATTRIBUTE = "vehicle-ocr-local-stop"
# Every object created, whatever the filters: the stack says which ones no notification delivers.
ALL_OBJECTS_QUEUE = "vehicle-ocr-local-s3-all-objects"
EVENTS_QUEUE = "vehicle-ocr-local-success-events"
# Lambda retries a failed asynchronous invocation twice (after about 1 and 2 minutes); locally, seconds.
DEFAULT_RETRY_DELAYS_S = (1.0, 2.0)


def _logger_levels() -> dict[str, int]:
    return {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }


class PortInUseError(Exception):
    """A port the stack needs is taken (another `vehicle-ocr up`, LocalStack, ...); ``option`` picks another."""

    def __init__(self, port: int, option: str) -> None:
        self.port = port
        self.option = option
        super().__init__(port, option)

    def __str__(self) -> str:
        return f"port {self.port} is in use (another `vehicle-ocr up`?); choose another with {self.option}"


def listening_socket(host: str, port: int, option: str) -> socket.socket:
    """A socket bound and listening on ``host:port`` as the servers bind theirs (SO_REUSEADDR).

    A port something else listens on raises :class:`PortInUseError`, at once and in the caller's thread.
    """
    family = select_address_family(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(get_sockaddr(host, port, family))
        sock.listen(128)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(port, option) from None
        raise
    return sock


def check_port_free(host: str, port: int, option: str) -> None:
    """Raise :class:`PortInUseError` if ``host:port`` cannot be bound now (port 0 always can)."""
    if port:
        listening_socket(host, port, option).close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def choose_chain(env: Mapping[str, str], kind: Any) -> str:
    """The providers a kind is recognised by locally, comma-separated, as the contract says.

    ``<K>_PROVIDERS`` or ``<K>_PROVIDER`` force a choice; otherwise the kind's upstream when its
    key is set, else the offline engine (no account, no network).
    """
    from vehicle_ocr.providers.registry import provider_spec  # the layer: importable once a function is

    for variable in (f"{kind.settings_name}_PROVIDERS", f"{kind.settings_name}_PROVIDER"):
        forced = env.get(variable, "").strip().lower()
        if forced:
            return ",".join(name.strip() for name in forced.split(",") if name.strip())
    chain = []
    for name in kind.default_providers:
        spec = provider_spec(kind.name, name)
        keyed = not spec.needs_key or env.get(f"{spec.settings_name}_KEY", "").strip()
        chain.append(name if keyed else "local")
    return ",".join(dict.fromkeys(chain))


def recognize_environment(resources: Any, env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """RecognizeFunction's environment locally, and each kind's provider chain (for the banner).

    The template's environment, with each kind's chain chosen by :func:`choose_chain`, and the
    provider keys, URLs and upstream timeouts taken from the user's environment.
    """
    from vehicle_ocr.kinds import all_kinds
    from vehicle_ocr.providers.registry import all_providers

    chains = {kind.name: choose_chain(env, kind) for kind in all_kinds()}
    function_env = resources.local_function_environment("RecognizeFunction")
    for kind in all_kinds():
        function_env.pop(f"{kind.settings_name}_PROVIDER", None)
        function_env[f"{kind.settings_name}_PROVIDERS"] = chains[kind.name]
    keyed = [spec.settings_name for spec in all_providers() if spec.settings_name]
    passthrough = (
        *(f"{name}_KEY" for name in keyed),
        *(f"{name}_URL" for name in keyed),
        "UPSTREAM_READ_TIMEOUT",
        "UPSTREAM_CONNECT_TIMEOUT",
        "UPSTREAM_MAX_ATTEMPTS",
        "UPSTREAM_RETRY_BASE_DELAY",
        "MAX_IMAGE_BYTES",
    )
    function_env.update({name: env[name] for name in passthrough if env.get(name)})
    return function_env, chains


def load_function(function: str, module_name: str, environment: Mapping[str, str]) -> ModuleType:
    """Import functions/<function>/app.py under its own module name, with its environment set (cold start)."""
    os.environ.update(environment)
    spec = importlib.util.spec_from_file_location(module_name, FUNCTIONS / function / "app.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(FUNCTIONS / function / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        # A handler pauses the cyclic collector for its cold start and freezes what it made (a Lambda
        # process lives for that one function). This process goes on, and may load it again: the
        # collector runs here as it did before, over every object, whether the cold start worked or not.
        gc.unfreeze()
        gc.enable()
    apply_log_level(module, environment)
    return module


def apply_log_level(module: ModuleType, environment: Mapping[str, str]) -> None:
    """Give the function's logger its configured level, as a fresh Lambda process would.

    Loggers are process-wide and Powertools does not re-apply the level to one it configured
    before, so a second function module in this process would inherit whatever was left. The
    AWS SDK's loggers go back to WARNING too, as the layer's bootstrap sets them in a fresh
    process: a stopped local stack restores the levels it found, and the bootstrap module,
    imported once per process, would not raise them again.
    """
    from vehicle_ocr.bootstrap import quiet_sdk_loggers  # the layer: importable once a function is

    quiet_sdk_loggers()
    level = environment.get("POWERTOOLS_LOG_LEVEL") or environment.get("LOG_LEVEL") or "INFO"
    logger = getattr(module, "logger", None)
    if logger is not None:
        logger.setLevel(level)


def stop_child(process: subprocess.Popen[str]) -> None:
    """End a child that stops when its standard input closes; killed if it has not within 30 s."""
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class EmulatorProcess:
    """The stack's SerializedMotoServer in a child process (``python -m vehicle_ocr_local.emulator``).

    Everything in the stack's process (dispatchers, handlers, boto3) and the emulator would
    otherwise share one interpreter, and so one core: a burst of uploads then drained at half
    the provider's limit. The port is bound here, in the caller's thread, and handed down, so a
    taken port still raises :class:`PortInUseError` at once; the child ends when its standard
    input closes, so it never outlives the stack (a crash included).
    """

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0, option: str = "--aws-port"):
        self._ip_address, self._port, self._option = ip_address, port, option
        self._process: subprocess.Popen[str] | None = None

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> None:
        sock = listening_socket(self._ip_address, self._port, self._option)
        try:
            self._port = sock.getsockname()[1]
            self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
                [sys.executable, "-m", "vehicle_ocr_local.emulator", str(sock.fileno())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                pass_fds=(sock.fileno(),),
            )
        finally:
            sock.close()
        if self._process.stdout is None or self._process.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("the local AWS emulator did not start")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        stop_child(process)
        if process.stdout is not None:
            process.stdout.close()


def notification_matches(notification: Mapping[str, Any], event_name: str, key: str) -> bool:
    """Whether an S3 notification (``Event``, ``Filter.S3Key.Rules``) fires for ``event_name`` on ``key``.

    ``event_name`` as a record names it (``ObjectCreated:Put``); rules are ``prefix``/``suffix`` on the key.
    """
    event = f"s3:{event_name}"
    wanted = str(notification.get("Event") or "")
    if not (event == wanted or (wanted.endswith(":*") and event.startswith(wanted[:-1]))):
        return False
    rules = ((notification.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
    for rule in rules:
        name, value = str(rule.get("Name", "")).lower(), str(rule.get("Value", ""))
        if (name == "prefix" and not key.startswith(value)) or (name == "suffix" and not key.endswith(value)):
            return False
    return True


class ObjectVersions:
    """Give moto's S3 events what S3's carry: the object's ``versionId`` and a ``sequencer``.

    moto's events name neither. S3's sequencer is a hex string; of two events for one key, the
    later write's compares greater (after right-padding the shorter with zeros). Here every
    version of a key gets a fixed-width sequencer the first time it is seen, in the order the
    bucket lists the key's versions (the order they were written), so that order holds however
    the dispatcher's threads interleave. An event is matched to its version by ETag: the oldest
    version with the event's ETag that no earlier event was given (an image uploaded twice has
    two versions with one ETag, and two events). A version that has gone (deleted before its
    event was handled) leaves the event as moto sent it.
    """

    WIDTH = 18  # S3's sequencers are 16 to 18 hex digits

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._sequencers: dict[tuple[str, str], dict[str, str]] = {}  # (bucket, key) -> version -> sequencer
        self._announced: dict[tuple[str, str], set[str]] = {}  # versions an event was matched to

    def complete(self, s3: Any, event: Any) -> None:
        """Add ``versionId`` and ``sequencer`` to the event's ObjectCreated records that lack them, in place."""
        records = event.get("Records") if isinstance(event, dict) else None
        for record in records if isinstance(records, list) else []:
            try:
                if not str(record.get("eventName") or "").startswith("ObjectCreated:"):
                    continue
                bucket, obj = record["s3"]["bucket"]["name"], record["s3"]["object"]
                if obj.get("versionId") and obj.get("sequencer"):
                    continue
                self._complete_object(s3, bucket, unquote_plus(obj["key"]), obj)
            except (KeyError, TypeError, AttributeError):
                continue  # a malformed record: the handler reports it as such
            except Exception:  # the emulator is unreachable (stopping): deliver the event as it is
                log.debug("could not read the versions of an object", exc_info=True)

    def _complete_object(self, s3: Any, bucket: str, key: str, obj: dict[str, Any]) -> None:
        with self._lock:
            versions = self._list_versions(s3, bucket, key)  # oldest first: (identity, version id, etag)
            sequencers = self._sequencers.setdefault((bucket, key), {})
            for identity, _, _ in versions:
                if identity not in sequencers:
                    sequencers[identity] = f"{next(self._counter):0{self.WIDTH}X}"
            announced = self._announced.setdefault((bucket, key), set())
            if obj.get("versionId"):  # e.g. a redrive: the version is known, its sequencer is not
                identity = str(obj["versionId"])
            else:
                etag = str(obj.get("eTag") or "").strip('"')
                matching = [identity for identity, _, version_etag in versions if version_etag == etag]
                unannounced = [identity for identity in matching if identity not in announced]
                if not unannounced:
                    return
                identity = unannounced[0]
                announced.add(identity)
                version_id = next(version for name, version, _ in versions if name == identity)
                if version_id:
                    obj["versionId"] = version_id
            if identity in sequencers:
                obj["sequencer"] = sequencers[identity]

    @staticmethod
    def _list_versions(s3: Any, bucket: str, key: str) -> list[tuple[str, str | None, str]]:
        found: list[tuple[str, str | None, str]] = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
            for version in page.get("Versions", []):
                if version["Key"] != key:
                    continue
                etag = str(version.get("ETag") or "").strip('"')
                version_id = version.get("VersionId")
                if not version_id or version_id == "null":  # an unversioned bucket: only the current object
                    identity = f"null:{etag}:{version.get('LastModified')}"
                    found.append((identity, None, etag))
                else:
                    found.append((version_id, version_id, etag))
        found.reverse()  # S3 lists a key's versions newest first
        return found


@dataclass
class DispatchStats:
    """What the dispatcher did; read by `demo` for its progress bar."""

    invocations: int = 0
    retries: int = 0
    dead_lettered: int = 0
    duplicates_delivered: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # the handler's "processed" entries
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def processed_count(self) -> int:
        with self.lock:
            return len(self.outcomes)


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    aws_port: int = 4566  # 0: any free port
    api_port: int = 3000  # 0: any free port
    concurrency: int = 4
    bucket: str = LOCAL_BUCKET
    retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S
    environment: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # Template parameter overrides (e.g. {"LogLevel": "WARNING"}), applied as a deploy would.
    parameters: Mapping[str, str] = field(default_factory=dict)
    quiet: bool = False  # no function logs or metrics on stdout (the demo draws a progress bar there)
    # Fault injection: how many extra copies of an S3 event to deliver (S3 delivers at least once).
    # Copies are queued the moment the original is received, so they often run concurrently with it.
    duplicate_deliveries: Callable[[dict[str, Any]], int] | None = None


class LocalStack:
    def __init__(self, config: StackConfig | None = None):
        self.config = config or StackConfig()
        self.stats = DispatchStats()
        self.resources: LocalResources | None = None
        self.providers: dict[str, str] = {}
        self._moto: EmulatorProcess | None = None
        self._api: LocalApiServer | None = None
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._saved_environment: dict[str, str] | None = None
        self._saved_levels: dict[str, int] | None = None
        self.aws_endpoint = ""
        self.api_url = ""
        self.recognize: ModuleType | None = None
        self.query: ModuleType | None = None
        self.notification_queue_url = ""
        self.events_queue_url = ""
        self._versions = ObjectVersions()
        self.all_objects_queue_url = ""
        self._notifications: list[dict[str, Any]] = []  # the template's notifications to RecognizeFunction
        self._session: boto3.Session | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()  # a boto3 session is not safe to make clients from two threads

    # ------------------------------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        """Start the emulator, create the resources, load the functions, serve the query API.

        A port that is taken raises :class:`PortInUseError` within moments, with nothing left running.
        """
        self._saved_environment = dict(os.environ)
        self._saved_levels = _logger_levels()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        config = self.config
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        if not config.quiet and log.level == logging.NOTSET:
            # The stack's own notes (an upload no notification delivers) are INFO: shown unless configured otherwise.
            log.setLevel(logging.INFO)
        # Both ports first, before anything slow: a second `vehicle-ocr up` fails in a moment.
        check_port_free(config.host, config.api_port, "--api-port")
        moto = EmulatorProcess(ip_address=config.host, port=config.aws_port, option="--aws-port")
        moto.start()
        self._moto = moto
        host = f"[{config.host}]" if ":" in config.host else config.host
        self.aws_endpoint = f"http://{host}:{moto.port}"
        # moto keeps its state per process, not per server: start from empty, as a new stack would.
        requests.post(f"{self.aws_endpoint}/moto-api/reset", timeout=30).raise_for_status()
        # Every boto3 client in this process, the handlers' included, talks to the emulator with
        # throw-away credentials: nothing can reach a real account from here.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(
            AWS_ENDPOINT_URL=self.aws_endpoint,
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - the emulator accepts any credentials
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            POWERTOOLS_TRACE_DISABLED="1",
        )
        self._create_resources()
        self._start_functions()

    def stop(self) -> None:
        self._stopping.set()
        self._wake_pollers()
        for worker in self._workers:
            worker.join(timeout=30)
        self._workers.clear()
        if self._api is not None:
            self._api.stop()
            self._api = None
        # Drop the function modules: their boto3 clients hold keep-alive connections to the emulator,
        # and the emulator's request threads only end when those close.
        for module in (getattr(self, "recognize", None), getattr(self, "query", None)):
            if module is not None:
                sys.modules.pop(module.__name__, None)
        self.recognize = self.query = None
        gc.collect()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._saved_environment is not None:
            os.environ.clear()
            os.environ.update(self._saved_environment)
            self._saved_environment = None
        # The functions' loggers are process-wide: leave them as they were (a quiet stack sets ERROR).
        if self._saved_levels is not None:
            for name, logger in list(logging.root.manager.loggerDict.items()):
                if isinstance(logger, logging.Logger):
                    logger.setLevel(self._saved_levels.get(name, logging.NOTSET))
            self._saved_levels = None

    # ------------------------------------------------------------------------------------------ resources
    @property
    def failure_queue_url(self) -> str:
        if self.resources is None:
            raise RuntimeError("the stack is not started")
        return self.resources.refs["FailureQueue"]

    @property
    def session(self) -> boto3.Session:
        with self._clients_lock:
            if self._session is None:
                self._session = boto3.Session(region_name=REGION)
            return self._session

    def client(self, service: str) -> Any:
        """One client per service, kept: making one (a new session, the service's model) cost 0.3 s per upload."""
        session: Any = self.session  # boto3-stubs type a client by its literal service name; this serves any
        with self._clients_lock:
            key = (service, self.aws_endpoint)
            if key not in self._clients:
                self._clients[key] = session.client(service, endpoint_url=self.aws_endpoint)
            return self._clients[key]

    def _create_resources(self) -> None:
        template = load_template()
        parameters = dict(self.config.parameters)
        if self.config.quiet:
            parameters.setdefault("LogLevel", "ERROR")
        self.resources = create_resources(
            self.session, template=template, parameters=parameters, bucket_name=self.config.bucket
        )
        sqs = self.client("sqs")
        self.notification_queue_url = sqs.create_queue(
            QueueName=NOTIFICATION_QUEUE, Attributes={"VisibilityTimeout": "900"}
        )["QueueUrl"]
        self.events_queue_url = sqs.create_queue(QueueName=EVENTS_QUEUE)["QueueUrl"]

        # The bus → a local queue, so successes can be watched (`aws sqs receive-message`).
        events = self.client("events")
        bus = self.resources.refs["EventBus"]
        events.put_rule(Name="local-watch", EventBusName=bus, EventPattern=json.dumps({"source": ["vehicle-ocr"]}))
        events.put_targets(
            Rule="local-watch",
            EventBusName=bus,
            Targets=[{"Id": "queue", "Arn": self._queue_arn(self.events_queue_url)}],
        )

        # The bucket → the notification queue, with the bucket's notifications (and prefix filters)
        # that invoke RecognizeFunction in the template.
        queue_arn = self._queue_arn(self.notification_queue_url)
        configurations = []
        notifications = self.resources.lambda_notifications("ImagesBucket", "RecognizeFunction")
        if not notifications:
            raise ValueError("template.yaml: ImagesBucket has no notification that invokes RecognizeFunction")
        for index, notification in enumerate(notifications):
            configuration: dict[str, Any] = {
                "Id": f"RecognizeFunction-{index}",
                "QueueArn": queue_arn,
                "Events": [notification["Event"]],
            }
            if "Filter" in notification:
                configuration["Filter"] = {"Key": {"FilterRules": notification["Filter"]["S3Key"]["Rules"]}}
            configurations.append(configuration)
        self._notifications = notifications
        # And every object created to a second queue, unfiltered, so that the ones no filter matches
        # (never delivered, as in AWS) are logged rather than vanishing without a trace.
        self.all_objects_queue_url = sqs.create_queue(QueueName=ALL_OBJECTS_QUEUE)["QueueUrl"]
        configurations.append(
            {
                "Id": "local-all-objects",
                "QueueArn": self._queue_arn(self.all_objects_queue_url),
                "Events": sorted({notification["Event"] for notification in notifications}),
            }
        )
        self.client("s3").put_bucket_notification_configuration(
            Bucket=self.config.bucket, NotificationConfiguration={"QueueConfigurations": configurations}
        )

    def _queue_arn(self, url: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return attributes["Attributes"]["QueueArn"]

    # ------------------------------------------------------------------------------------------ functions
    def _start_functions(self) -> None:
        if self.resources is None:
            raise RuntimeError("resources must be created before the functions")
        recognize_env, self.providers = recognize_environment(self.resources, self.config.environment)
        if self.config.quiet:
            recognize_env["POWERTOOLS_METRICS_DISABLED"] = "true"
        suffix = uuid.uuid4().hex[:8]  # two stacks in one process (tests) get their own modules
        self.recognize = load_function("recognize", f"vehicle_ocr_local_recognize_{suffix}", recognize_env)
        self.query = load_function(
            "query", f"vehicle_ocr_local_query_{suffix}", self.resources.function_environment("QueryFunction")
        )

        self._stopping.clear()
        watcher = threading.Thread(target=self._watch_unmatched, name="local-unmatched-objects", daemon=True)
        watcher.start()
        self._workers.append(watcher)
        for index in range(max(1, self.config.concurrency)):
            worker = threading.Thread(target=self._dispatch, name=f"local-dispatcher-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)

        routes = routes_from_template(self.resources.template, "QueryFunction")
        self._api = LocalApiServer(
            self.query.lambda_handler,
            routes,
            host=self.config.host,
            port=self.config.api_port,
            function_name="QueryFunction",
            # Unknown routes and the like answer as the template's QueryApi does: {"error": {"code", "message"}}.
            gateway_responses=gateway_responses_from_template(self.resources.template, "QueryFunction"),
            mounts={CONSOLE_PREFIX: self._console()},
        )
        try:
            self._api.start()
        except OSError as error:
            self._api = None
            if error.errno == errno.EADDRINUSE:  # taken since start() checked it
                raise PortInUseError(self.config.api_port, "--api-port") from None
            raise
        self.api_url = self._api.url

    def _console(self) -> Any:
        """The console (vehicle_ocr_local.console), served under /console/ beside the query API."""
        from vehicle_ocr_local.console.app import ConsoleApp
        from vehicle_ocr_local.console.backend import local_backend

        return ConsoleApp(lambda: local_backend(self.aws_endpoint))

    # ------------------------------------------------------------------------------------------ dispatcher
    def _dispatch(self) -> None:
        sqs, s3 = self.client("sqs"), self.client("s3")
        while not self._stopping.is_set():
            messages = self._receive(sqs, QueueUrl=self.notification_queue_url, MaxNumberOfMessages=1)
            for message in messages:
                event = json.loads(message["Body"])
                self._versions.complete(s3, event)
                if self.config.duplicate_deliveries and "MessageAttributes" not in message:
                    body = json.dumps(event, ensure_ascii=False)  # the copies carry the same version and sequencer
                    self._deliver_again(sqs, body, self.config.duplicate_deliveries(event))
                self._invoke_async(event)
                sqs.delete_message(QueueUrl=self.notification_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _receive(self, sqs: Any, **request: Any) -> list[dict[str, Any]]:
        """One long poll of a notification queue; nothing (after a pause) when it fails, as during stop()."""
        try:
            messages = sqs.receive_message(WaitTimeSeconds=1, MessageAttributeNames=["All"], **request)
        except Exception:  # the emulator is going away during stop()
            if not self._stopping.is_set():
                log.exception("receiving S3 notifications failed")
                time.sleep(0.5)
            return []
        return [m for m in messages.get("Messages", []) if STOP_ATTRIBUTE not in m.get("MessageAttributes", {})]

    def _wake_pollers(self) -> None:
        """End the workers' long polls at once on stop(), rather than when they time out: a message each."""
        if self._moto is None or not self._workers:
            return
        pollers = {self.notification_queue_url: max(1, self.config.concurrency), self.all_objects_queue_url: 1}
        stop = {STOP_ATTRIBUTE: {"DataType": "String", "StringValue": "stop"}}
        try:
            # Its own client, one try each: an emulator that has died must not hold stop() in botocore's retries.
            session: Any = self.session
            config = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=2)
            sqs = session.client("sqs", endpoint_url=self.aws_endpoint, config=config)
            for url, count in pollers.items():
                for _ in range(count if url else 0):
                    sqs.send_message(QueueUrl=url, MessageBody="{}", MessageAttributes=stop)
        except Exception:  # noqa: S110 - the polls end by themselves within a second
            pass

    def _watch_unmatched(self) -> None:
        """Log each created object that no notification delivers (its key matches no filter)."""
        sqs = self.client("sqs")
        while not self._stopping.is_set():
            for message in self._receive(sqs, QueueUrl=self.all_objects_queue_url, MaxNumberOfMessages=10):
                try:
                    records = json.loads(message["Body"]).get("Records") or []  # s3:TestEvent has none
                except (ValueError, AttributeError):
                    records = []
                for record in records:
                    try:
                        name = str(record["eventName"])
                        bucket = record["s3"]["bucket"]["name"]
                        key = unquote_plus(record["s3"]["object"]["key"])
                    except (KeyError, TypeError):
                        continue
                    if not any(notification_matches(n, name, key) for n in self._notifications):
                        log.info("s3://%s/%s matches no notification prefix: not recognised (as in AWS)", bucket, key)
                sqs.delete_message(QueueUrl=self.all_objects_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _deliver_again(self, sqs: Any, body: str, copies: int) -> None:
        for _ in range(copies):
            sqs.send_message(
                QueueUrl=self.notification_queue_url,
                MessageBody=body,
                MessageAttributes={"duplicate": {"DataType": "String", "StringValue": "true"}},
            )
        with self.stats.lock:
            self.stats.duplicates_delivered += copies

    def _invoke_async(self, event: dict[str, Any]) -> None:
        if self.recognize is None:
            raise RuntimeError("the functions must be started before events are delivered")
        """One asynchronous invocation: the first try, Lambda's two retries, then the on-failure destination."""
        delays = (0.0, *self.config.retry_delays_s)
        error: BaseException | None = None
        request_id = str(uuid.uuid4())  # as in Lambda, every retry of one asynchronous invocation keeps it
        for attempt, delay in enumerate(delays, start=1):
            if delay:
                with self.stats.lock:
                    self.stats.retries += 1
                if self._stopping.wait(delay):
                    return
            context = LocalLambdaContext("RecognizeFunction", memory_limit_in_mb=512, timeout_seconds=60)
            context.aws_request_id = request_id
            with self.stats.lock:
                self.stats.invocations += 1
            try:
                result = self.recognize.lambda_handler(event, context)
            except Exception as exc:  # what Lambda would count as a failed invocation
                error = exc
                log.warning("RecognizeFunction invocation %d failed: %s", attempt, type(exc).__name__)
                continue
            finally:
                if self.config.quiet:
                    # With metrics disabled Powertools never clears them, and once it holds 100 values
                    # it prints them anyway (onto the demo's progress bar): drop them after each invocation.
                    # The store is shared by the threads; clearing another's is harmless while disabled.
                    self.recognize.metrics.clear_metrics()
            with self.stats.lock:
                self.stats.outcomes.extend(result.get("processed", []))
            return
        self._send_to_destination(event, error, attempts=len(delays))

    def _send_to_destination(self, event: dict[str, Any], error: BaseException | None, attempts: int) -> None:
        """What Lambda sends to an on-failure destination after the last retry."""
        if self.resources is None:
            raise RuntimeError("the stack is not running")
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:RecognizeFunction:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
        }
        self.client("sqs").send_message(
            QueueUrl=self.resources.refs["RecognizeDeadLetterQueue"], MessageBody=json.dumps(record, ensure_ascii=False)
        )
        with self.stats.lock:
            self.stats.dead_lettered += 1

    # ------------------------------------------------------------------------------------------ conveniences
    def upload(self, key: str, body: bytes) -> None:
        self.client("s3").put_object(Bucket=self.config.bucket, Key=key, Body=body)

    def wait_for(self, count: int, *, timeout_s: float = 120, on_progress: Callable[[int], None] | None = None) -> int:
        """Wait until ``count`` objects have been processed (or dead-lettered); returns how many were."""
        deadline = time.monotonic() + timeout_s
        done = 0
        while time.monotonic() < deadline:
            with self.stats.lock:
                done = len(self.stats.outcomes) + self.stats.dead_lettered
            if on_progress:
                on_progress(done)
            if done >= count:
                return done
            time.sleep(0.2)
        return done
