"""A fleet of RecognizeFunction instances as Lambda runs it: one process per instance, AWS in another.

The emulator (the local stack's) and each instance (bench/instance.py) run in processes of
their own; the local upstream runs in the benchmark's process, where it judges the rate limit
by its own clock. Events are handed to whichever instance is free, one at a time each, as
Lambda's asynchronous poller does up to the function's reserved concurrency.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Any

import boto3

from bench.common import REGION, ROOT
from vehicle_ocr_local.stack import EmulatorProcess, stop_child


class Emulator:
    """The local stack's emulated AWS, in its own process (``vehicle_ocr_local.stack.EmulatorProcess``)."""

    def __init__(self) -> None:
        self._process = EmulatorProcess()
        self.endpoint = ""

    def __enter__(self) -> Emulator:
        self._process.start()
        self.endpoint = f"http://127.0.0.1:{self._process.port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._process.stop()

    def session(self) -> boto3.Session:
        return boto3.Session(region_name=REGION)

    def client(self, service: str) -> Any:
        session: Any = self.session()
        return session.client(service, endpoint_url=self.endpoint)


@dataclass
class Counters:
    budget_requests: int = 0
    budget_draws: int = 0
    budget_waited_s: float = 0.0


@dataclass
class _Instance:
    process: subprocess.Popen[str]
    counters: Counters = field(default_factory=Counters)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(event, ensure_ascii=False) + "\n")
        stdin.flush()
        return self.read(stdout)

    def read(self, stdout: IO[str]) -> dict[str, Any]:
        line = stdout.readline()
        if not line:
            raise RuntimeError("a function instance died")
        reply: dict[str, Any] = json.loads(line)
        self.counters = Counters(reply["budget_requests"], reply["budget_draws"], reply["budget_waited_s"])
        return reply


class Fleet:
    """``size`` warm instances of RecognizeFunction with ``environment`` (its template environment)."""

    def __init__(self, size: int, environment: dict[str, str]):
        self.size = size
        self.environment = environment
        self._instances: list[_Instance] = []

    def __enter__(self) -> Fleet:
        for _ in range(self.size):
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.instance"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=self.environment,
            )
            self._instances.append(_Instance(process))
        for instance in self._instances:  # cold starts, in parallel
            assert instance.process.stdout is not None
            instance.read(instance.process.stdout)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for instance in self._instances:
            stop_child(instance.process)

    def counters(self) -> Counters:
        return Counters(
            sum(i.counters.budget_requests for i in self._instances),
            sum(i.counters.budget_draws for i in self._instances),
            sum(i.counters.budget_waited_s for i in self._instances),
        )

    def handle(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every event handled by the first free instance; the replies, in no particular order."""
        waiting: queue.Queue[dict[str, Any]] = queue.Queue()
        for event in events:
            waiting.put(event)
        replies: list[dict[str, Any]] = []
        lock = threading.Lock()

        def serve(instance: _Instance) -> None:
            while True:
                try:
                    event = waiting.get_nowait()
                except queue.Empty:
                    return
                reply = instance.invoke(event)
                with lock:
                    replies.append(reply)

        threads = [threading.Thread(target=serve, args=(instance,)) for instance in self._instances]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return replies
