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


# The same, but the body as bytes, sent as they are
RawAnswer = Callable[[str, str, Mapping[str, str], bytes], tuple[int, bytes, Mapping[str, str]]]


@contextlib.contextmanager
def bytes_api(answer: RawAnswer) -> Iterator[str]:
    """Serve `answer` for GET, POST, PATCH and PUT on 127.0.0.1 while the block runs; yields the
    base URL. The body goes out as given; a Content-Length among the answer's headers is sent
    instead of the body's (larger: an answer cut off)."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, data, headers = answer(self.command, self.path, self.headers, raw)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = _handle

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for the loop's next poll: 0.05 s, not the default 0.5 s every test
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def json_api(answer: Answer) -> Iterator[str]:
    """Serve `answer` (a JSON body, or None for none) like `bytes_api`."""

    def encoded(
        method: str, path: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, bytes, Mapping[str, str]]:
        status, body, extra = answer(method, path, headers, raw)
        data = json.dumps(body).encode() if body is not None else b""
        return status, data, {k: v for k, v in extra.items() if k != "Content-Length"}

    with bytes_api(encoded) as url:
        yield url
