"""A scripted model on loopback, speaking enough of the Anthropic Messages API for Claude Code.

The real CLI talks to it through ANTHROPIC_BASE_URL. Each conversation goes: the model asks
for one tool call (from `script`, given the agent's working directory), the CLI runs the tool
and sends its result, the model ends the turn with a sentence. Every request is kept, so a
test can see what reached the model (the prompt, tool results, anything leaked).

The other dialects, each in the same manner: OpenAI Chat Completions (aider), the Gemini API
(Gemini CLI) and the OpenAI Responses API (Codex CLI, which asks for several tool calls in turn).
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


@dataclass(kw_only=True)
class _Recorded:
    """What every scripted server shares: how it misbehaves when asked, and what it was sent."""

    port: int = 0
    # When set: every model call is answered 429 with this retry delay (seconds) and message.
    rate_limited: tuple[int, str] | None = None
    # When set: every model call waits this many seconds before answering (a hung API).
    stall: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)  # the API key each request carried

    def seen(self) -> str:
        """Every request body, as text: what the agent sent to its model."""
        return "\n".join(json.dumps(r) for r in self.requests)


class _Handler(BaseHTTPRequestHandler):
    """Quiet, and with the two moves every scripted API makes."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def record(self, model: _Recorded, key: str) -> dict[str, Any]:
        """The request's JSON body, kept with the API key it carried in header `key`."""
        length = int(self.headers.get("content-length", 0))
        body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        model.requests.append(body)
        model.api_keys.append(self.headers.get(key, "").removeprefix("Bearer "))
        return body

    def send(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if content_type == "application/json":
            self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def _listening(handler: type[_Handler], model: _Recorded) -> Iterator[None]:
    """Serve `handler` on 127.0.0.1 (a free port, set on `model`) for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True  # a stalled answer does not hold up the end of the test
    model.port = server.server_address[1]
    # shutdown() waits for the loop's next poll: 0.05 s, not the default 0.5 s every test
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class ModelServer(_Recorded):
    """Anthropic Messages (streamed), as Claude Code calls it."""

    script: Script
    final: str = "Done."  # the text that ends the turn, after the tool's result

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


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
    script: Script,
    *,
    rate_limited: tuple[int, str] | None = None,
    stall: float = 0.0,
    final: str = "Done.",
) -> Iterator[ModelServer]:
    """A ModelServer listening on 127.0.0.1 for the duration of the block; `final` is the
    text the model ends its turn with."""
    model = ModelServer(script, rate_limited=rate_limited, stall=stall, final=final)

    class Handler(_Handler):
        def do_HEAD(self) -> None:
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:
            self.send(200, b"{}")

        def do_POST(self) -> None:
            body = self.record(model, "x-api-key")
            text = json.dumps(body)
            if not self.path.startswith("/v1/messages"):
                self.send(200, b"{}")
                return
            if model.stall:
                time.sleep(model.stall)
            if model.rate_limited is not None:
                retry_after, message = model.rate_limited
                error = {"type": "error", "error": {"type": "rate_limit_error", "message": message}}
                self.send(
                    429, json.dumps(error).encode(), headers={"retry-after": str(retry_after)}
                )
                return
            if '"tool_result"' in text:
                answer = _reply([{"type": "text", "text": model.final}], "end_turn")
            else:
                found = _WORKDIR.search(text)
                name, tool_input = model.script(found[1].strip() if found else "", text)
                block = {"type": "tool_use", "id": "toolu_1", "name": name, "input": tool_input}
                answer = _reply([block], "tool_use")
            self.send(200, answer, "text/event-stream", {"cache-control": "no-cache"})

    with _listening(Handler, model):
        yield model


# Given the request's text: the assistant's whole answer (aider's edit formats are plain text).
ChatScript = Callable[[str], str]


@dataclass
class ChatServer(_Recorded):
    """OpenAI Chat Completions (not streamed), as aider's litellm calls it."""

    script: ChatScript

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@contextmanager
def serving_chat(
    script: ChatScript, *, stall: float = 0.0, rate_limited: tuple[int, str] | None = None
) -> Iterator[ChatServer]:
    """A ChatServer listening on 127.0.0.1 for the duration of the block."""
    model = ChatServer(script, stall=stall, rate_limited=rate_limited)

    class Handler(_Handler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def do_POST(self) -> None:
            body = self.record(model, "authorization")
            if model.stall:
                time.sleep(model.stall)
            if model.rate_limited is not None:
                retry_after, message = model.rate_limited
                error = {"error": {"message": message, "type": "rate_limit_exceeded"}}
                self.send(
                    429, json.dumps(error).encode(), headers={"retry-after": str(retry_after)}
                )
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
            self.send(200, json.dumps(answer).encode())

    with _listening(Handler, model):
        yield model


# Given the agent's working directory and the request's text: (function name, arguments).
GeminiScript = Callable[[str, str], tuple[str, dict[str, Any]]]
_GEMINI_WORKDIR = re.compile(r"Workspace Directories:\*\*\s*\n\s*- (\S+)")


@dataclass
class GeminiServer(_Recorded):
    """The Gemini API as Gemini CLI calls it: a routing call (generateContent), then the
    conversation (streamGenerateContent, SSE): one function call, then a final text."""

    script: GeminiScript

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


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

    class Handler(_Handler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def do_POST(self) -> None:
            body = self.record(model, "x-goog-api-key")
            if ":generateContent" in self.path:  # the CLI's routing of the request
                route = {"complexity_reasoning": "a simple edit", "complexity_score": 10}
                self.send(200, json.dumps(candidate([{"text": json.dumps(route)}])).encode())
                return
            if model.rate_limited is not None:
                delay, message = model.rate_limited
                retry = {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{delay}s",
                }
                error = {
                    "error": {
                        "code": 429,
                        "message": message,
                        "status": "RESOURCE_EXHAUSTED",
                        "details": [retry],
                    }
                }
                self.send(429, json.dumps(error).encode())
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
            payload = f"data: {json.dumps(candidate(answer))}\r\n\r\n".encode()
            self.send(200, payload, "text/event-stream")

    with _listening(Handler, model):
        yield model


# A step of a scripted Codex conversation: ("shell", a command line) or ("patch", the text of
# an apply_patch call, "*** Begin Patch" to "*** End Patch").
CodexStep = tuple[str, str]
# Given the agent's working directory and the request's text: the steps, in order, before the
# model's final answer.
CodexScript = Callable[[str, str], list[CodexStep]]
_CODEX_WORKDIR = re.compile(r"<cwd>([^<]+)</cwd>")


@dataclass
class ResponsesServer(_Recorded):
    """The OpenAI Responses API (streamed), as Codex CLI calls it: one tool call per model turn,
    the script's steps in order, then a final message.

    Codex declares its tools in one of two ways, and each step is asked for in the way the request
    declared: plain functions (`exec_command`, apply_patch through it, as Codex 0.171 gives a model
    it has no metadata for), or a JavaScript `exec` tool in the `functions` namespace of an
    `additional_tools` input item that calls `tools.exec_command` and `tools.apply_patch` (as it
    gives its default model)."""

    script: CodexScript
    # The `error.type` (ChatGPT's Codex backend) or `error.code` (the OpenAI platform) of a 429:
    # Codex stops at once on "usage_limit_reached" and says when to try again (its `resets_at`);
    # any other 429 it retries (after `retry-after` when given, else not) and then gives up.
    limit: str = "usage_limit_reached"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _codex_call(step: CodexStep, body: dict[str, Any], number: int) -> dict[str, Any]:
    """The output item that asks Codex for `step`, in the form its request declared."""
    kind, text = step
    plain = any(t.get("name") == "exec_command" for t in body.get("tools", []))
    call_id = f"call_{number}"
    if plain:
        command = text if kind == "shell" else f"apply_patch <<'PATCH'\n{text}PATCH\n"
        arguments = json.dumps({"cmd": command})
        return {
            "type": "function_call",
            "id": f"fc_{number}",
            "call_id": call_id,
            "name": "exec_command",
            "arguments": arguments,
            "status": "completed",
        }
    if kind == "shell":
        source = (
            f"const r = await tools.exec_command({{cmd: {json.dumps(text)}}});\ntext(r.output);"
        )
    else:
        source = f"text(await tools.apply_patch({json.dumps(text)}));"
    return {
        "type": "custom_tool_call",
        "id": f"ctc_{number}",
        "call_id": call_id,
        "namespace": "functions",
        "name": "exec",
        "input": source,
        "status": "completed",
    }


def _response_events(item: dict[str, Any], number: int) -> bytes:
    """One streamed response whose only output is `item` (a tool call or a message)."""
    response = {"id": f"resp_{number}", "object": "response", "status": "in_progress", "output": []}
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 15,
    }
    done = {**response, "status": "completed", "output": [item], "usage": usage}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response},
        {"type": "response.in_progress", "response": response},
    ]
    if item["type"] == "message":
        said = item["content"][0]["text"]
        events += [
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "status": "in_progress", "content": []},
            },
            {
                "type": "response.output_text.delta",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": said,
            },
        ]
    else:
        events.append({"type": "response.output_item.added", "output_index": 0, "item": item})
    events += [
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": done},
    ]
    return _events([(event["type"], event) for event in events])


@contextmanager
def serving_responses(
    script: CodexScript,
    *,
    stall: float = 0.0,
    rate_limited: tuple[int, str] | None = None,
    limit: str = "usage_limit_reached",
) -> Iterator[ResponsesServer]:
    """A ResponsesServer listening on 127.0.0.1 for the duration of the block."""
    model = ResponsesServer(script, stall=stall, rate_limited=rate_limited, limit=limit)

    class Handler(_Handler):
        def do_GET(self) -> None:  # a WebSocket upgrade: refused, so it uses HTTP
            self.send(404, b"{}")

        def do_POST(self) -> None:
            body = self.record(model, "authorization")
            if not self.path.endswith("/responses"):
                self.send(404, b"{}")
                return
            if model.stall:
                time.sleep(model.stall)
            if model.rate_limited is not None:
                delay, message = model.rate_limited
                if model.limit == "usage_limit_reached":
                    error: dict[str, Any] = {
                        "type": model.limit,
                        "message": message,
                        "plan_type": "plus",
                        "resets_at": int(time.time()) + delay,
                        "resets_in_seconds": delay,
                    }
                    headers = {}
                else:
                    error = {"message": message, "type": "requests", "param": None}
                    error["code"] = model.limit
                    headers = {"retry-after": str(delay)} if delay else {}
                self.send(429, json.dumps({"error": error}).encode(), headers=headers)
                return
            text = json.dumps(body)
            found = _CODEX_WORKDIR.search(text)
            steps = model.script(found[1] if found else "", text)
            inputs = body.get("input", [])
            answered = sum(1 for item in inputs if str(item.get("type")).endswith("call_output"))
            number = len(model.requests)
            if answered < len(steps):
                item = _codex_call(steps[answered], body, number)
            else:
                item = {
                    "type": "message",
                    "id": f"msg_{number}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Done.", "annotations": []}],
                }
            payload = _response_events(item, number)
            self.send(200, payload, "text/event-stream", {"cache-control": "no-cache"})

    with _listening(Handler, model):
        yield model
