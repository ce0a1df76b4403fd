"""A scripted model on loopback, speaking enough of the Anthropic Messages API for Claude Code.

The real CLI talks to it through ANTHROPIC_BASE_URL. Each conversation goes: the model asks
for one tool call (from `script`, given the agent's working directory), the CLI runs the tool
and sends its result, the model ends the turn with a sentence. Every request is kept, so a
test can see what reached the model (the prompt, tool results, anything leaked).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_WORKDIR = re.compile(r"Primary working directory: ([^\n\"\\]+)")

# Given the agent's working directory and the request's text (the prompt, any feedback in it):
# (tool name, tool input) for the model's first answer in a conversation.
Script = Callable[[str, str], tuple[str, dict[str, Any]]]


@dataclass
class ModelServer:
    script: Script
    port: int = 0
    # When set: every model call is answered 429 with this retry-after (seconds) and message.
    rate_limited: tuple[int, str] | None = None
    # When set: every model call waits this many seconds before answering (a hung API).
    stall: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)  # the x-api-key header of each request

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def seen(self) -> str:
        """Every request body, as text: what the agent sent to its model."""
        return "\n".join(json.dumps(r) for r in self.requests)


def _events(message: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in message
    )


def _reply(blocks: list[dict[str, Any]], stop: str) -> bytes:
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_scripted",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-scripted",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 10, "output_tokens": 1},
                },
            },
        )
    ]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events += [
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
    events += [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return _events(events)


@contextmanager
def serving(
    script: Script, *, rate_limited: tuple[int, str] | None = None, stall: float = 0.0
) -> Iterator[ModelServer]:
    """A ModelServer listening on 127.0.0.1 for the duration of the block."""
    model = ModelServer(script, rate_limited=rate_limited, stall=stall)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            model.requests.append(body)
            model.api_keys.append(self.headers.get("x-api-key", ""))
            text = json.dumps(body)
            if not self.path.startswith("/v1/messages"):
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")
                return
            if model.stall:
                time.sleep(model.stall)
            if model.rate_limited is not None:
                retry_after, message = model.rate_limited
                error = {"type": "error", "error": {"type": "rate_limit_error", "message": message}}
                payload = json.dumps(error).encode()
                self.send_response(429)
                self.send_header("content-type", "application/json")
                self.send_header("retry-after", str(retry_after))
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if '"tool_result"' in text:
                answer = _reply([{"type": "text", "text": "Done."}], "end_turn")
            else:
                found = _WORKDIR.search(text)
                name, tool_input = model.script(found[1].strip() if found else "", text)
                block = {"type": "tool_use", "id": "toolu_1", "name": name, "input": tool_input}
                answer = _reply([block], "tool_use")
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # a stalled answer does not hold up the end of the test
    model.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()


# Given the request's text: the assistant's whole answer (aider's edit formats are plain text).
ChatScript = Callable[[str], str]


@dataclass
class ChatServer:
    """OpenAI Chat Completions (not streamed), as aider's litellm calls it."""

    script: ChatScript
    port: int = 0
    stall: float = 0.0  # seconds every answer waits (a hung API)
    rate_limited: tuple[int, str] | None = None  # answer 429: (retry-after seconds, message)
    requests: list[dict[str, Any]] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)  # the bearer token of each request

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def seen(self) -> str:
        return "\n".join(json.dumps(r) for r in self.requests)


@contextmanager
def serving_chat(
    script: ChatScript, *, stall: float = 0.0, rate_limited: tuple[int, str] | None = None
) -> Iterator[ChatServer]:
    """A ChatServer listening on 127.0.0.1 for the duration of the block."""
    model = ChatServer(script, stall=stall, rate_limited=rate_limited)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            model.requests.append(body)
            model.api_keys.append(self.headers.get("authorization", "").removeprefix("Bearer "))
            if model.stall:
                time.sleep(model.stall)
            if model.rate_limited is not None:
                retry_after, message = model.rate_limited
                error = {"error": {"message": message, "type": "rate_limit_exceeded"}}
                payload = json.dumps(error).encode()
                self.send_response(429)
                self.send_header("content-type", "application/json")
                self.send_header("retry-after", str(retry_after))
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            answer = {
                "id": "chatcmpl-scripted",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "scripted"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": model.script(json.dumps(body))},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    model.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()


# Given the agent's working directory and the request's text: (function name, arguments).
GeminiScript = Callable[[str, str], tuple[str, dict[str, Any]]]
_GEMINI_WORKDIR = re.compile(r"Workspace Directories:\*\*\s*\n\s*- (\S+)")


@dataclass
class GeminiServer:
    """The Gemini API as Gemini CLI calls it: a routing call (generateContent), then the
    conversation (streamGenerateContent, SSE): one function call, then a final text."""

    script: GeminiScript
    port: int = 0
    stall: float = 0.0  # seconds every conversation answer waits (a hung API)
    rate_limited: tuple[int, str] | None = None  # answer 429: (retry delay seconds, message)
    requests: list[dict[str, Any]] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)  # the x-goog-api-key header of each

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def seen(self) -> str:
        return "\n".join(json.dumps(r) for r in self.requests)


@contextmanager
def serving_gemini(
    script: GeminiScript, *, stall: float = 0.0, rate_limited: tuple[int, str] | None = None
) -> Iterator[GeminiServer]:
    """A GeminiServer listening on 127.0.0.1 for the duration of the block."""
    model = GeminiServer(script, stall=stall, rate_limited=rate_limited)

    def candidate(parts: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": 10,
                "candidatesTokenCount": 5,
                "totalTokenCount": 15,
            },
        }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            model.requests.append(body)
            model.api_keys.append(self.headers.get("x-goog-api-key", ""))
            if ":generateContent" in self.path:  # the CLI's routing of the request
                route = {"complexity_reasoning": "a simple edit", "complexity_score": 10}
                payload = json.dumps(candidate([{"text": json.dumps(route)}])).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if model.rate_limited is not None:
                delay, message = model.rate_limited
                error = {
                    "error": {
                        "code": 429,
                        "message": message,
                        "status": "RESOURCE_EXHAUSTED",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                                "retryDelay": f"{delay}s",
                            }
                        ],
                    }
                }
                payload = json.dumps(error).encode()
                self.send_response(429)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if model.stall:
                time.sleep(model.stall)
            parts = [p for c in body.get("contents", []) for p in c.get("parts", [])]
            if any("functionResponse" in part for part in parts):
                answer = [{"text": "Done."}]
            else:
                text = "\n".join(str(p.get("text", "")) for p in parts)
                found = _GEMINI_WORKDIR.search(text)
                name, args = model.script(found[1] if found else "", json.dumps(body))
                answer = [{"functionCall": {"name": name, "args": args}}]
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            self.wfile.write(f"data: {json.dumps(candidate(answer))}\r\n\r\n".encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    model.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()
