"""A GitHub stand-in on loopback that keeps state: pull requests are created, listed, updated and
labelled as GitHub does it, for the few endpoints the tool calls.

Unlike the replayed exchanges of tests/test_github.py it does not fix the order of requests, so
whole runs (the console script, in a subprocess) can talk to it. It can be told to fail the next
pull-request creations with a 500, as GitHub sometimes does.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from testing.http import json_api

TOKEN = "ghs_fake0000000000000000000000000000000"
REPOSITORY = "octo-org/widgets"


@dataclass
class FakeGitHub:
    repository: str = REPOSITORY
    url: str = ""  # http://127.0.0.1:<port>, once serving
    pulls: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[int, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    fail_creates: int = 0  # how many of the next POST .../pulls answer 500
    lock: threading.Lock = field(default_factory=threading.Lock)

    def env(self) -> dict[str, str]:
        """What a run needs in its environment to talk to this stand-in."""
        return {
            "GITHUB_API_URL": self.url,
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_REPOSITORY": self.repository,
        }

    def pulls_for(self, head: str) -> list[dict[str, Any]]:
        return [p for p in self.pulls if p["head"]["ref"] == head]

    # -- the endpoints ---------------------------------------------------------------------

    def answer(self, method: str, target: str, body: Any) -> tuple[int, Any]:
        url = urllib.parse.urlsplit(target)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        prefix = f"/repos/{self.repository}"
        if not url.path.startswith(prefix):
            return 404, {"message": "Not Found"}
        path = url.path.removeprefix(prefix)
        with self.lock:
            self.requests.append((method, url.path))
            if path == "/pulls" and method == "POST":
                return self._create(body)
            if path == "/pulls" and method == "GET":
                return 200, self._list(query)
            if (found := re.fullmatch(r"/pulls/(\d+)", path)) and method == "PATCH":
                return self._update(int(found[1]), body)
            if re.fullmatch(r"/pulls/\d+/commits", path) and method == "GET":
                return 200, []
            if (found := re.fullmatch(r"/issues/(\d+)/labels", path)) and method == "POST":
                names = self.labels.setdefault(int(found[1]), [])
                names += [name for name in body["labels"] if name not in names]
                return 200, [{"name": name} for name in names]
        return 404, {"message": "Not Found"}

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        if self.fail_creates > 0:
            self.fail_creates -= 1
            return 500, {"message": "Server Error"}
        if any(p["state"] == "open" for p in self.pulls_for(body["head"])):
            return 422, {
                "message": "Validation Failed",
                "errors": [{"message": f"A pull request already exists for {body['head']}."}],
            }
        number = len(self.pulls) + 1
        pull = {
            "number": number,
            "html_url": f"https://github.com/{self.repository}/pull/{number}",
            "title": body["title"],
            "body": body["body"],
            "state": "open",
            "merged_at": None,
            "head": {
                "ref": body["head"],
                "sha": "0" * 40,
                "repo": {"full_name": self.repository},
            },
            "base": {"ref": body["base"]},
        }
        self.pulls.append(pull)
        return 201, pull

    def _list(self, query: dict[str, str]) -> list[dict[str, Any]]:
        if query.get("page", "1") != "1":
            return []
        state = query.get("state", "open")
        head = query.get("head", "").partition(":")[2]
        return [
            p
            for p in reversed(self.pulls)
            if (state == "all" or p["state"] == state) and (not head or p["head"]["ref"] == head)
        ]

    def _update(self, number: int, body: dict[str, Any]) -> tuple[int, Any]:
        for pull in self.pulls:
            if pull["number"] == number:
                pull.update({k: body[k] for k in ("title", "body") if k in body})
                return 200, pull
        return 404, {"message": "Not Found"}


JSON = {"Content-Type": "application/json"}


@contextlib.contextmanager
def serve(github: FakeGitHub | None = None) -> Iterator[FakeGitHub]:
    """Serve a FakeGitHub on 127.0.0.1 for the duration of the block."""
    fake = github or FakeGitHub()

    def answer(
        method: str, path: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, Any, Mapping[str, str]]:
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Bad credentials"}, JSON
        status, body = fake.answer(method, path, json.loads(raw or b"null"))
        return status, body, JSON

    with json_api(answer) as url:
        fake.url = url
        yield fake
