"""Recorded GitHub API exchanges, replayed by a local server that checks every request.

`serve(name)` answers the requests of tests/fixtures/github/<name>.json in their order; a request
that differs from the recording (method, path, query, body, headers) is recorded as an error.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gitops_agent.github import API_VERSION
from testing.http import json_api

EXCHANGES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "github"
TOKEN = "ghs_test0000000000000000000000000000000"


class Replay:
    """Recorded exchanges, answered in order; any request that differs is recorded as an error."""

    def __init__(self, name: str) -> None:
        data = json.loads((EXCHANGES / f"{name}.json").read_text(encoding="utf-8"))
        self.pending: list[dict[str, Any]] = list(data["exchanges"])
        self.errors: list[str] = []
        self.bodies: list[Any] = []  # every request's JSON body, in order
        self.url = ""

    def answer(self, method: str, target: str, headers: Any, raw: bytes) -> tuple[int, Any, dict]:
        if not self.pending:
            self.errors.append(f"unexpected request {method} {target}")
            return 500, {"message": "no more recorded exchanges"}, {}
        expected = self.pending.pop(0)
        want, got_url = expected["request"], urllib.parse.urlsplit(target)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(got_url.query).items()}
        body = json.loads(raw) if raw else None
        self.bodies.append(body)
        checks = {
            "method": (method, want["method"]),
            "path": (got_url.path, want["path"]),
            "query": (query, want["query"]),
            "body": (body, want["body"]),
            "Authorization": (headers.get("Authorization"), f"Bearer {TOKEN}"),
            "Accept": (headers.get("Accept"), "application/vnd.github+json"),
            "X-GitHub-Api-Version": (headers.get("X-GitHub-Api-Version"), API_VERSION),
        }
        if raw:
            checks["Content-Type"] = (headers.get("Content-Type"), "application/json")
        for what, (got, wanted) in checks.items():
            if not matches(got, wanted):
                self.errors.append(f"{want['method']} {want['path']}: {what} {got!r} != {wanted!r}")
        response = expected["response"]
        return response["status"], response["body"], response["headers"]


def matches(got: Any, wanted: Any) -> bool:
    """Equality, except that {"$any": "str"} in a recording stands for any string."""
    if wanted == {"$any": "str"}:
        return isinstance(got, str)
    if isinstance(wanted, dict) and isinstance(got, dict):
        return got.keys() == wanted.keys() and all(matches(got[k], wanted[k]) for k in wanted)
    return bool(got == wanted)


@contextlib.contextmanager
def serve(name: str) -> Iterator[Replay]:
    """A GitHub API stand-in on 127.0.0.1 replaying tests/fixtures/github/<name>.json."""
    replay = Replay(name)

    with json_api(replay.answer) as url:
        replay.url = url
        yield replay
    # pytest rewrites the asserts of test modules only: here the message says what differed.
    assert replay.errors == [], replay.errors


def done(replay: Replay) -> None:
    """Every recorded request was made, and as recorded."""
    assert replay.errors == [], replay.errors
    assert replay.pending == [], f"recorded requests were never made: {replay.pending}"
