"""An HTTP server on 127.0.0.1 that records every JSON body posted to it: where notifications
are delivered in the tests (the `inbox` fixture of tests/conftest.py)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Inbox:
    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[str, dict[str, Any]]] = []


@contextlib.contextmanager
def receiving() -> Iterator[Inbox]:
    """An `Inbox` listening while the block runs; each POST is recorded as (path, JSON body)."""
    box: Inbox

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            box.received.append((self.path, json.loads(self.rfile.read(length))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test asserts what arrived."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box = Inbox(server.server_address[1])
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
