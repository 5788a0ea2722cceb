"""What `vehicle-ocr` says when an ordinary mistake stops a command: one line, and an exit status.

A command raises (or lets through) an exception; :func:`explain` turns the kinds a user can
cause and fix (nothing listening on the endpoint, a file that does not exist, a port in use,
no AWS credentials, AWS refusing a request) into one line saying what is wrong and what to
do, and the exit status: 2 for bad usage (as argparse's own usage errors), 1 for an operation
that failed. Anything else is a bug and is left to raise, traceback and all.
"""

from __future__ import annotations

import argparse
import errno
import socket
from typing import Any

EXIT_FAILED = 1
EXIT_USAGE = 2

START_HINT = "Start it with `vehicle-ocr up` (or `make up`)"


class CliError(Exception):
    """A failed operation, already explained in its message."""

    exit_code = EXIT_FAILED


class UsageError(CliError):
    """The command line asks for something that cannot be done as written."""

    exit_code = EXIT_USAGE


def explain(error: BaseException, args: argparse.Namespace) -> tuple[str, int] | None:
    """(one line for stderr, exit status) for a mistake a user can fix; None for anything else."""
    explained = _explain(error, args)
    if explained is None:
        return None
    message, code = explained
    return " ".join(message.split()), code  # one line, whatever the exception's text held


def _explain(error: BaseException, args: argparse.Namespace) -> tuple[str, int] | None:
    if isinstance(error, CliError):
        return str(error), error.exit_code
    from vehicle_ocr_local.erase import ErasureIncomplete

    if isinstance(error, ErasureIncomplete):
        return f"{error}; nothing found is forgotten: run the same `vehicle-ocr erase` again", EXIT_FAILED
    port_in_use = _port_in_use(error, args)
    if port_in_use is not None:
        return port_in_use, EXIT_FAILED
    for explain_kind in (_explain_requests, _explain_botocore):
        explained = explain_kind(error, args)
        if explained is not None:
            return explained
    if isinstance(error, FileNotFoundError):
        return f"no such file: {error.filename or error}", EXIT_USAGE
    if isinstance(error, IsADirectoryError):
        return f"{error.filename or error} is a folder, not a file", EXIT_USAGE
    return None


# ------------------------------------------------------------------------------------------------ ports
def _port_in_use(error: BaseException, args: argparse.Namespace) -> str | None:
    from vehicle_ocr_local import stack

    port_in_use_error = getattr(stack, "PortInUseError", None)
    if port_in_use_error is not None and isinstance(error, port_in_use_error):
        port, option = getattr(error, "port", None), getattr(error, "option", None)
        if port is not None and option:
            return _port_message(port, option)
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        for option, port in _ports(args):
            if port and not _can_bind(getattr(args, "host", "127.0.0.1"), port):
                return _port_message(port, option)
        return f"a port is already in use ({error.strerror}): choose others with --aws-port N --api-port M"
    return None


def _port_message(port: int, option: str) -> str:
    return (
        f"port {port} is already in use (another `vehicle-ocr up`?): stop what listens there, "
        f"or choose another port with {option} N"
    )


def _ports(args: argparse.Namespace) -> list[tuple[str, int]]:
    return [
        (option, getattr(args, name))
        for option, name in (("--aws-port", "aws_port"), ("--api-port", "api_port"))
        if getattr(args, name, None)
    ]


def _can_bind(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


# ------------------------------------------------------------------------------------------------ query API
def _explain_requests(error: BaseException, args: argparse.Namespace) -> tuple[str, int] | None:
    import requests

    if not isinstance(error, requests.RequestException):
        return None
    api = getattr(args, "api", None) or _url_of(error)
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return f"nothing answers at {api}: is the local stack running? {START_HINT}, or pass --api URL", EXIT_FAILED
    if isinstance(error, requests.HTTPError) and error.response is not None:
        detail = _api_error_message(error.response)
        return (
            f"the query API at {api} answered HTTP {error.response.status_code}{detail}: "
            "is --api the stack's query API?",
            EXIT_FAILED,
        )
    if isinstance(error, requests.JSONDecodeError):
        return f"{api} did not answer JSON: is --api the stack's query API?", EXIT_FAILED
    return f"the query API at {api} could not be read ({type(error).__name__}); {START_HINT}", EXIT_FAILED


def _url_of(error: Any) -> str:
    request = getattr(error, "request", None)
    return getattr(request, "url", None) or "the query API"


def _api_error_message(response: Any) -> str:
    try:
        return f" ({response.json()['error']['message']})"
    except (ValueError, KeyError, TypeError):
        return ""


# ------------------------------------------------------------------------------------------------ AWS
def _explain_botocore(error: BaseException, args: argparse.Namespace) -> tuple[str, int] | None:
    from botocore import exceptions as boto

    deployed = bool(getattr(args, "stack", None))
    endpoint = getattr(args, "endpoint", None)
    if isinstance(error, boto.EndpointConnectionError | boto.ConnectTimeoutError | boto.ReadTimeoutError):
        if deployed:
            return f"cannot reach AWS ({error}): check the network and the region", EXIT_FAILED
        where = endpoint or error.kwargs.get("endpoint_url", "the AWS endpoint")
        return (
            f"nothing answers at {where}: is the local stack running? {START_HINT}, or pass --endpoint URL",
            EXIT_FAILED,
        )
    if isinstance(error, boto.NoCredentialsError | boto.PartialCredentialsError):
        return "no AWS credentials: configure them (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID)", EXIT_FAILED
    if isinstance(error, boto.NoRegionError):
        return "no AWS region: set AWS_DEFAULT_REGION or the profile's region", EXIT_FAILED
    if isinstance(error, boto.ClientError):
        return _client_error(error, args, deployed), EXIT_FAILED
    if isinstance(error, boto.BotoCoreError):
        return f"AWS request failed: {error}", EXIT_FAILED
    return None


def _client_error(error: Any, args: argparse.Namespace, deployed: bool) -> str:
    details = error.response.get("Error", {})
    code, message = details.get("Code", "error"), details.get("Message", "")
    operation = getattr(error, "operation_name", "a request")
    where = "AWS" if deployed else f"the stack at {getattr(args, 'endpoint', None) or 'the endpoint'}"
    if code == "NoSuchBucket":
        return (
            f"{where} has no bucket {getattr(args, 'bucket', '')!s}: is it the vehicle-ocr stack? "
            "(check --endpoint and --bucket)"
        )
    if code in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}:
        return f"{where} has no failure queue: is it the vehicle-ocr stack? (check --endpoint)"
    if code in {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"}:
        return f"AWS refused the credentials ({code}): refresh them and try again"
    return f"{where} refused {operation}: {code}: {message}".rstrip(": ")
