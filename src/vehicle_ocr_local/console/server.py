"""`vehicle-ocr console`: the console on 127.0.0.1 only (werkzeug's threaded WSGI server)."""

from __future__ import annotations

import socket
import threading
from typing import Any

from werkzeug.serving import make_server

from vehicle_ocr_local.console.app import PREFIX, ConsoleApp

HOST = "127.0.0.1"  # never wider: the console reads with the caller's own credentials


class ConsoleServer:
    """Serve ``app`` on 127.0.0.1:``port`` (0: any free port) in a thread; use as a context manager."""

    def __init__(self, app: ConsoleApp, port: int = 0):
        if port:
            _check_free(port)  # werkzeug would print its own message and exit instead of raising
        self._server: Any = make_server(HOST, port, app, threaded=True)
        self.port: int = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="console", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{PREFIX}/"

    def __enter__(self) -> ConsoleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def _check_free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds
        probe.bind((HOST, port))  # OSError EADDRINUSE when taken
