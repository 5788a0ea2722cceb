"""Shared pytest fixtures for the fake upstream (load with ``pytest_plugins = ["tests.fakes.fixtures"]``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from tests.fakes.upstream import TIANAPI_PATH, FakeUpstream
from vehicle_ocr.providers.http import new_session

TIANAPI_TEST_KEY = "tk-test-key"
APIZERO_TEST_KEY = "ak-test-key"


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """Both upstream APIs on a fresh local port, keys ``TIANAPI_TEST_KEY`` / ``APIZERO_TEST_KEY``."""
    with FakeUpstream(tianapi_key=TIANAPI_TEST_KEY, apizero_key=APIZERO_TEST_KEY) as upstream:
        yield upstream


@pytest.fixture
def upstream_env(fake_upstream: FakeUpstream) -> dict[str, str]:
    return environment_for(fake_upstream)


def environment_for(upstream: FakeUpstream) -> dict[str, str]:
    """The environment that points a local stack's providers at ``upstream``, with its keys."""
    return {
        "TIANAPI_KEY": TIANAPI_TEST_KEY,
        "APIZERO_KEY": APIZERO_TEST_KEY,
        "TIANAPI_URL": upstream.tianapi_url,
        "APIZERO_URL": upstream.apizero_url,
    }


@pytest.fixture
def upstream_session() -> Iterator[requests.Session]:
    """A pooled transport session as production builds it (connection retries only)."""
    session = new_session()
    yield session
    session.close()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL on 127.0.0.1 where nothing listens: the port is bound (so nobody else takes it) but not listening."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{holder.getsockname()[1]}{TIANAPI_PATH}"
    finally:
        holder.close()
