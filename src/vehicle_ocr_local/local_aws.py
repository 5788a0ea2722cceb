"""boto3 clients for the local stack (`vehicle-ocr up`): its endpoint, throw-away credentials, a quick "nobody there".

botocore retries a refused connection with growing pauses (DynamoDB ten times): with no stack running,
a command would sit silent for half a minute before saying so. Every client made here first checks
that something accepts connections at the endpoint, once per endpoint and process, and fails at once
with botocore's own EndpointConnectionError, which the CLI turns into its "is the local stack running?"
line.
"""

from __future__ import annotations

import functools
import socket
from typing import Any
from urllib.parse import urlsplit

PROBE_TIMEOUT_S = 2.0
REGION = "us-east-1"


def local_client(endpoint: str, service: str) -> Any:
    """A boto3 client for ``service`` at the local stack's ``endpoint`` (EndpointConnectionError if none runs)."""
    import boto3

    require_listening(endpoint)
    session: Any = boto3  # boto3-stubs type a client by its literal service name; this helper serves any
    return session.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        # The local stack accepts any credentials: the developer's own are never sent to an endpoint named here.
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - throw-away, as the stack's own
    )


@functools.cache
def require_listening(endpoint: str) -> None:
    """Return if something accepts a TCP connection at ``endpoint``; raise EndpointConnectionError otherwise."""
    from botocore.exceptions import EndpointConnectionError

    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", port), timeout=PROBE_TIMEOUT_S):
            return
    except OSError as error:
        raise EndpointConnectionError(endpoint_url=endpoint, error=error) from None
