"""The local stack's emulated AWS in a process of its own.

    python -m vehicle_ocr_local.emulator FD

Serves :class:`SerializedMotoServer` (one request at a time: moto is
not thread-safe) on the listening socket inherited as file descriptor FD, prints ``ready`` and
runs until its standard input closes: the stack stopped, or died. The stack binds the socket
itself, so a taken port fails there, at once. In its own process, the emulator's work and the
functions' (boto3, the handlers) each get a core instead of sharing one interpreter.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from vehicle_ocr_local.stack import listening_socket


class SerializedMotoServer(ThreadedMotoServer):
    """moto's server, answering one request at a time, and failing fast on a port that is taken.

    moto's backends are not thread-safe: concurrent requests (the dispatcher runs several
    invocations at once) lose writes and fail with "dictionary changed size during
    iteration". SQS long polls stay outside the lock: they wait for a SendMessage that
    would otherwise never get in.

    moto binds its port in the server thread and waits, without a timeout, for that thread to
    say it is ready: on a taken port werkzeug prints "Port N is in use" and exits the thread,
    and the caller waits forever (signals included). Here the port is bound in the caller's
    thread before the server thread starts, so a taken port raises :class:`PortInUseError`,
    and the thread only serves.
    """

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0, verbose: bool = False, option: str = "--aws-port"):
        super().__init__(ip_address=ip_address, port=port, verbose=verbose)
        self._option = option

    def _make_app(self) -> Callable[..., Any]:
        patch_moto()  # transactions that do not copy whole tables (see there)
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def serialized(environ: dict[str, Any], start_response: Any) -> Any:
            if environ.get("HTTP_X_AMZ_TARGET") == "AmazonSQS.ReceiveMessage":
                return app(environ, start_response)
            with lock:
                return list(app(environ, start_response))  # the whole response, inside the lock

        return serialized

    def start(self) -> None:
        sock = listening_socket(self._ip_address, self._port, self._option)
        try:
            self.serve_socket(sock.fileno())
        finally:
            sock.close()

    def serve_socket(self, fd: int) -> None:
        """Serve, from a thread, on the listening socket ``fd`` (werkzeug serves a duplicate of it)."""
        self._server = make_server(
            self._ip_address, self._port, self._make_app(), True, request_handler=MotoRequestHandler, fd=fd
        )
        self._port = self._server.port
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-moto-server", daemon=True)
        self._thread.start()
        self._server_ready_event.set()

    def _server_entry(self) -> None:  # pragma: no cover - start() never runs moto's own entry
        raise RuntimeError("SerializedMotoServer binds in start()")

    @property
    def port(self) -> int:
        return self._port

    def stop(self) -> None:
        self._server_ready_event.clear()
        server, thread = self._server, self._thread
        if server is not None:
            server.shutdown()
            server.server_close()  # moto's stop() leaves the listening socket open
        if thread is not None:
            thread.join(timeout=30)
        self._server = None
        self._thread = None


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group: the stack stops this process by closing its input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    server = SerializedMotoServer()
    server.serve_socket(int(argv[0]))
    print("ready", flush=True)
    # Nobody reads the pipe after that line: anything printed later would fill it and stall the server.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.stdin.read()
    # Everything the emulator holds is in this process's memory and ends with it: no orderly shutdown of
    # the server and moto's modules (0.7 s on every stop of the stack).
    os._exit(0)


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``DynamoDBBackend.transact_write_items``, rolled back item by item instead of table by table.

    moto deep-copies every table a transaction names, for each of its operations, before doing
    anything: with the results table's few thousand items that is a tenth of a second per
    record written, growing with the table. Here only the items the transaction changes are
    copied, before their first change, and put back if it fails. The checks and errors are
    moto's own (the code below follows moto 5's). Safe because the server runs one request at
    a time: nothing else changes the items between the check and the write.
    """
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    saved: dict[tuple[str, str], tuple[str, dict[str, Any], Any]] = {}  # item -> as it was before

    def remember(table_name: str, key: dict[str, Any]) -> None:
        identity = (table_name, str(sorted(key.items())))
        if identity not in saved:
            saved[identity] = (table_name, key, copy.deepcopy(self.get_item(table_name, key)))

    def roll_back() -> None:
        for table_name, key, item in saved.values():
            if item is not None:
                self.put_item(table_name, item.to_json()["Attributes"])
            elif self.get_item(table_name, key) is not None:
                self.delete_item(table_name, key)

    targets: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(item) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition = op.get("ConditionExpression")
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                table = self.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)
            current = self.get_item(table_name, key)
            if condition is not None and not get_filter_expression(condition, names, values).expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original_item = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                remember(table_name, key)
            common = {
                "condition_expression": condition,
                "expression_attribute_names": names,
                "expression_attribute_values": values,
            }
            if op_type == "Put":
                self.put_item(table_name, op["Item"], **common)
            elif op_type == "Delete":
                self.delete_item(table_name, key, **common)
            elif op_type == "Update":
                self.update_item(table_name, key, update_expression=op["UpdateExpression"], **common)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            roll_back()
            raise
        except ConditionalCheckFailed as failed:
            errors.append(("ConditionalCheckFailed", str(failed.message), original_item))
        except Exception as error:  # moto reports any other failure of an operation the same way
            errors.append((type(error).__name__, str(error), original_item))
    if any(code is not None for code, _, _ in errors):
        roll_back()
        raise TransactionCanceledException(errors)


def _versions_under_prefix(original: Any) -> Any:
    """moto's ``S3Backend.list_object_versions``, deep-copying only the keys under the prefix.

    moto deep-copies every version of every key in the bucket (their bytes included) and then
    keeps those under the prefix: the stack lists one key's versions per event, so a burst of
    uploads cost more with each image. The listing is unchanged: the same call on a bucket that
    holds only the keys under the prefix (one request at a time, so nothing sees the swap).
    """

    @functools.wraps(original)
    def list_object_versions(self: Any, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
        prefix = kwargs.get("prefix") or (args[3] if len(args) > 3 else "")
        bucket = self.get_bucket(bucket_name)
        if not prefix:
            return original(self, bucket_name, *args, **kwargs)
        everything = bucket.keys
        narrowed = type(everything)()
        for name, versions in everything.iterlists():
            if name.startswith(prefix):
                dict.__setitem__(narrowed, name, versions)  # as stored: no disposal, no copy
        bucket.keys = narrowed
        try:
            return original(self, bucket_name, *args, **kwargs)
        finally:
            bucket.keys = everything

    list_object_versions.narrowed = True  # type: ignore[attr-defined]
    return list_object_versions


# DynamoDB answers that carry items. moto's generic serializer walks the service model member by
# member to write them (about 2 ms per item of ours: most of a Scan's time, and a tenth of each
# GetItem or UpdateItem); their result is already DynamoDB's JSON, so it is written as it is.
ITEM_OPERATIONS = frozenset(
    {"GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem"}
)


def _without_none(value: Any) -> Any:
    """The generic serializer leaves members that are None out of the answer; so does this."""
    if isinstance(value, dict):
        return {key: _without_none(member) for key, member in value.items() if member is not None}
    if isinstance(value, list):
        return [_without_none(member) for member in value]
    return value


def _items_as_json(generic: Any) -> Any:
    """``DynamoHandler.serialized`` writing item answers with ``json.dumps``; everything else as moto does."""

    def serialized(self: Any, action_result: Any) -> Any:
        from moto.dynamodb.responses import DynamoResult

        if isinstance(action_result, DynamoResult) and self._get_action() in ITEM_OPERATIONS:
            try:
                body = json.dumps(_without_none(action_result.result), separators=(",", ":"))
            except (TypeError, ValueError):  # something only the model knows how to write (bytes, dates)
                return generic(self, action_result)
            headers = {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}
            return 200, headers, body
        return generic(self, action_result)

    serialized.items_as_json = True  # type: ignore[attr-defined]
    serialized.generic = generic  # type: ignore[attr-defined]
    return serialized


def patch_moto() -> None:
    """Give moto (in this process) the transactions, version listings and item answers above; idempotent.

    And a parse of each JSONPath once: moto's PutEvents builds a JSONPath parser (ply's tables
    included) for every path of every target's input on every event, a third of its time.
    """
    import jsonpath_ng.ext
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler
    from moto.s3.models import S3Backend

    if not hasattr(jsonpath_ng.ext.parse, "cache_info"):
        jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    if not getattr(DynamoHandler.serialized, "items_as_json", False):
        DynamoHandler.serialized = _items_as_json(DynamoHandler.serialized)  # type: ignore[method-assign]
    if not getattr(S3Backend.list_object_versions, "narrowed", False):
        S3Backend.list_object_versions = _versions_under_prefix(S3Backend.list_object_versions)  # type: ignore[method-assign]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
