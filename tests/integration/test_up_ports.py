"""`vehicle-ocr up` when a port it needs is taken, and when it is told to stop.

A second `vehicle-ocr up` used to print "Port 4566 is in use" and hang for good (moto waited for
a server thread that had already died, and ignored Ctrl-C and SIGTERM); on a taken API port it
ended in an OSError that did not name the port. Now the start fails within moments with one
PortInUseError naming the port and the option that picks another.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from vehicle_ocr_local import stack as stack_module
from vehicle_ocr_local.stack import LocalStack, PortInUseError, StackConfig

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def no_moto_endpoint(monkeypatch):
    """The stack runs its own emulator; the session-wide one must not leak into it."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on (as a first `vehicle-ocr up` would)."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


def run_up(aws_port: int, api_port: int, env: dict[str, str], timeout_s: float = 20) -> tuple[int, str, float]:
    """Run `vehicle-ocr up` to its end (killed after ``timeout_s``): exit code, output, seconds taken."""
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(VENV_BIN / "vehicle-ocr"), "up", "--aws-port", str(aws_port), "--api-port", str(api_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=10)
        pytest.fail(f"`vehicle-ocr up` still running after {timeout_s} s:\n{output}")
    return process.returncode, output, time.monotonic() - started


# `vehicle-ocr up` on a taken port used to hang for good: exiting well within this is "at once", even for an
# interpreter that imports boto3 and moto on two busy cores.
STARTUP_BOUND_S = 15


def child_env(upstream_env: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **upstream_env, "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    return env


def test_up_on_a_taken_aws_port_exits_at_once_naming_the_port(taken_port, upstream_env):
    # Given another program listens on the AWS port (a first `vehicle-ocr up`)
    # When a second `vehicle-ocr up` is started on that port
    code, output, seconds = run_up(taken_port, free_port(), child_env(upstream_env))
    # Then it exits non-zero on its own, and what it says names the port and the option (it used to hang
    # for good; the bound leaves room for an interpreter starting on a loaded machine, e.g. under xdist)
    assert code != 0, output
    assert seconds < STARTUP_BOUND_S, f"took {seconds:.1f} s:\n{output}"
    assert f"port {taken_port}" in output and "in use" in output
    assert "--aws-port" in output


def test_up_on_a_taken_api_port_exits_at_once_naming_the_port(taken_port, upstream_env):
    # Given another program listens on the query API's port
    aws_port = free_port()
    # When `vehicle-ocr up` is started with that API port
    code, output, seconds = run_up(aws_port, taken_port, child_env(upstream_env))
    # Then it exits non-zero on its own, naming the port and --api-port
    assert code != 0, output
    assert seconds < STARTUP_BOUND_S, f"took {seconds:.1f} s:\n{output}"
    assert f"port {taken_port}" in output and "in use" in output
    assert "--api-port" in output
    # And it left nothing listening on the AWS port it did not get to use
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{aws_port}/", timeout=2)


def test_sigterm_ends_a_running_up_promptly(upstream_env):
    # Given a running `vehicle-ocr up`
    aws_port, api_port = free_port(), free_port()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(VENV_BIN / "vehicle-ocr"), "up", "--aws-port", str(aws_port), "--api-port", str(api_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(upstream_env),
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while not any("ready" in line for line in seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or process.poll() is not None:
                pytest.fail("`vehicle-ocr up` did not get ready:\n" + "".join(seen))
            try:
                seen.append(lines.get(timeout=min(remaining, 1)))
            except queue.Empty:
                continue
        assert requests.get(f"http://127.0.0.1:{api_port}/results", timeout=5).status_code == 200

        # When it gets SIGTERM
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        seconds = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    # Then it ends promptly and cleanly, and both ports are free again
    assert code == 0
    assert seconds < 10, f"SIGTERM took {seconds:.1f} s"
    for port in (aws_port, api_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_stack_start_raises_port_in_use_error_and_leaves_nothing_running(taken_port, upstream_env, no_moto_endpoint):
    threads_before = {thread.ident for thread in threading.enumerate()}
    environment_before = dict(os.environ)
    # Given the AWS port is taken
    config = StackConfig(aws_port=taken_port, api_port=0, environment=upstream_env, quiet=True)
    # When the stack starts
    started = time.monotonic()
    with pytest.raises(PortInUseError) as raised:
        LocalStack(config).start()
    # Then one typed error names the port and the option, at once
    assert time.monotonic() - started < 5
    assert (raised.value.port, raised.value.option) == (taken_port, "--aws-port")
    assert str(raised.value) == (
        f"port {taken_port} is in use (another `vehicle-ocr up`?); choose another with --aws-port"
    )
    # And nothing of the stack is left running, the environment as it was
    assert [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()] == []
    assert dict(os.environ) == environment_before


def test_api_port_taken_after_the_check_still_raises_port_in_use_error(
    taken_port, upstream_env, no_moto_endpoint, monkeypatch
):
    # Given the API port is taken only after the stack checked it (a race with another program)
    monkeypatch.setattr(stack_module, "check_port_free", lambda host, port, option: None)
    aws_port = free_port()
    config = StackConfig(aws_port=aws_port, api_port=taken_port, environment=upstream_env, quiet=True)
    # When the stack starts
    started = time.monotonic()
    with pytest.raises(PortInUseError) as raised:
        LocalStack(config).start()
    # Then the query API's failed bind is the same typed error, and the emulator is stopped again
    assert time.monotonic() - started < 30
    assert (raised.value.port, raised.value.option) == (taken_port, "--api-port")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{aws_port}/", timeout=2)
