"""A JSON HTTP API on loopback for tests: the stand-ins for GitHub share it."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path with its query, request headers, raw body) -> (status, JSON body or None, headers)
Answer = Callable[[str, str, Mapping[str, str], bytes], tuple[int, Any, Mapping[str, str]]]


@contextlib.contextmanager
def json_api(answer: Answer) -> Iterator[str]:
    """Serve `answer` for GET, POST and PATCH on 127.0.0.1 while the block runs; yields the
    base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, body, headers = answer(self.command, self.path, self.headers, raw)
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _handle

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
