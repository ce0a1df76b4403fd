"""A GitHub stand-in on loopback that keeps state: pull requests are created, listed, updated and
labelled as GitHub does it, for the few endpoints the tool calls.

Unlike the replayed exchanges of testing/replay.py it does not fix the order of requests, so
whole runs (the console script, in a subprocess) can talk to it. It can be told to fail the next
pull-request creations with a 500, as GitHub sometimes does. It pages a listing as GitHub does:
`per_page` items, and a `Link` header whose rel="next" URL names the repository by its id.

`raw_api` is the other kind of server: it answers every request with the same bytes, to stand for
what is not GitHub's JSON (a proxy's HTML page, an empty body, one cut off).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from testing.http import bytes_api, json_api

TOKEN = "ghs_fake0000000000000000000000000000000"
REPOSITORY = "octo-org/widgets"
REPOSITORY_ID = 720458391  # GitHub's Link URLs name a repository by its id


@dataclass
class FakeGitHub:
    repository: str = REPOSITORY
    url: str = ""  # http://127.0.0.1:<port>, once serving
    pulls: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[int, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path with query)
    fail_creates: int = 0  # how many of the next POST .../pulls answer 500
    next_base: str = ""  # where Link headers point, when not at this server itself
    # Merging a PR: called with the pull request and the merge body; does the merge (in the
    # test's bare remote) and returns the merge commit's id, as GitHub does its own merges.
    merger: Callable[[dict[str, Any], dict[str, Any]], str] | None = None
    comments: dict[int, list[str]] = field(default_factory=dict)
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

    def answer(self, method: str, target: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        url = urllib.parse.urlsplit(target)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        prefix = next(
            (
                p
                for p in (f"/repos/{self.repository}", f"/repositories/{REPOSITORY_ID}")
                if url.path.startswith(p)
            ),
            None,
        )
        if prefix is None:
            return 404, {"message": "Not Found"}, {}
        path = url.path.removeprefix(prefix)
        with self.lock:
            self.requests.append((method, target))
            if path == "/pulls" and method == "POST":
                return (*self._create(body), {})
            if path == "/pulls" and method == "GET":
                return self._list(query)
            if (found := re.fullmatch(r"/pulls/(\d+)", path)) and method == "PATCH":
                return (*self._update(int(found[1]), body), {})
            if re.fullmatch(r"/pulls/\d+/commits", path) and method == "GET":
                return 200, [], {}
            if (found := re.fullmatch(r"/pulls/(\d+)/merge", path)) and method == "PUT":
                return (*self._merge(int(found[1]), body), {})
            if (found := re.fullmatch(r"/issues/(\d+)/comments", path)) and method == "POST":
                self.comments.setdefault(int(found[1]), []).append(body["body"])
                return 201, {"body": body["body"]}, {}
            if (found := re.fullmatch(r"/issues/(\d+)/labels", path)) and method == "POST":
                names = self.labels.setdefault(int(found[1]), [])
                names += [name for name in body["labels"] if name not in names]
                return 200, [{"name": name} for name in names], {}
        return 404, {"message": "Not Found"}, {}

    def add_closed(self, count: int, *, merged: int = 0, forks: int = 0) -> None:
        """`count` closed pull requests from autonomous branches, oldest first: every
        `merged`-th one merged and every `forks`-th one from a fork (0: none)."""
        for n in range(1, count + 1):
            number = len(self.pulls) + 1
            head = f"autonomous/closed-{n:05d}"
            fork = bool(forks) and n % forks == 0
            self.pulls.append(
                {
                    "number": number,
                    "html_url": f"https://github.com/{self.repository}/pull/{number}",
                    "title": f"gitops-agent: closed {n}",
                    "state": "closed",
                    "merged_at": "2026-11-19T08:00:00Z" if merged and n % merged == 0 else None,
                    "head": {
                        "ref": head,
                        "sha": "0" * 40,
                        "repo": {"full_name": "someone/widgets" if fork else self.repository},
                    },
                    "base": {"ref": "main"},
                }
            )

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
            "draft": bool(body.get("draft", False)),
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

    def _list(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """Newest first, a page of `per_page` (30 unless asked, 100 at most, as GitHub does)."""
        state = query.get("state", "open")
        head = query.get("head", "").partition(":")[2]
        found = [
            p
            for p in reversed(self.pulls)
            if (state == "all" or p["state"] == state) and (not head or p["head"]["ref"] == head)
        ]
        size, page = min(int(query.get("per_page", "30")), 100), int(query.get("page", "1"))
        pages = max(1, -(-len(found) // size))
        base = f"{self.next_base or self.url}/repositories/{REPOSITORY_ID}/pulls?"
        links = []
        if page < pages:
            links.append(
                f'<{base}{urllib.parse.urlencode({**query, "page": page + 1})}>; rel="next"'
            )
            links.append(f'<{base}{urllib.parse.urlencode({**query, "page": pages})}>; rel="last"')
        return (
            200,
            found[(page - 1) * size : page * size],
            {"Link": ", ".join(links)} if links else {},
        )

    def _merge(self, number: int, body: dict[str, Any]) -> tuple[int, Any]:
        """GitHub's PUT /pulls/N/merge: 409 when `sha` is not the head, 405 when not open."""
        pull = next((p for p in self.pulls if p["number"] == number), None)
        if pull is None:
            return 404, {"message": "Not Found"}
        if pull["state"] != "open" or self.merger is None:
            return 405, {"message": "Pull Request is not mergeable"}
        if body.get("sha") and pull["head"]["sha"] not in ("0" * 40, body["sha"]):
            return 409, {"message": "Head branch was modified. Review and try the merge again."}
        sha = self.merger(pull, body)
        pull.update({"state": "closed", "merged_at": "2026-12-02T03:00:00Z"})
        return 200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}

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
        status, body, headers = fake.answer(method, path, json.loads(raw or b"null"))
        return status, body, {**JSON, **headers}

    with json_api(answer) as url:
        fake.url = url
        yield fake


@dataclass
class RawServer:
    url: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path with query)


@contextlib.contextmanager
def raw_api(status: int, headers: Mapping[str, str], body: bytes) -> Iterator[RawServer]:
    """Answer every request on 127.0.0.1 with `status`, `headers` and the bytes `body`, as they
    are: a Content-Length in `headers` larger than `body` stands for an answer cut off."""
    server_state = RawServer()

    def answer(
        method: str, path: str, _headers: Mapping[str, str], _raw: bytes
    ) -> tuple[int, bytes, Mapping[str, str]]:
        server_state.requests.append((method, path))
        return status, body, headers

    with bytes_api(answer) as url:
        server_state.url = url
        yield server_state
