"""A GitHub REST API stand-in on loopback that answers by each token's own permissions.

GitHub judges a fine-grained token per request: without read access to the repository it
answers 404, without the permission an endpoint needs 403 ("Resource not accessible by
personal access token", naming the permission in X-Accepted-GitHub-Permissions), and only then
does it look at the request itself (422 for one that cannot be done). This server does the
same for the few endpoints `doctor` asks, and records every request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from testing.http import json_api

LEVELS = {"none": 0, "read": 1, "write": 2}


@dataclass
class Repository:
    """One repository; `tokens` maps a token to its permissions, e.g. {"contents": "write"}."""

    name: str  # owner/name
    tokens: dict[str, dict[str, str]]
    url: str = ""
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status

    def routes(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(method, path) -> the permission it needs, at which level."""
        base = f"/repos/{self.name}"
        return {
            ("GET", base): ("metadata", "read"),
            ("POST", f"{base}/git/refs"): ("contents", "write"),
            ("POST", f"{base}/pulls"): ("pull_requests", "write"),
            ("GET", f"{base}/actions/permissions/workflow"): ("administration", "read"),
        }

    def answer(self, method: str, path: str, token: str, body: Any) -> tuple[int, Any, dict]:
        if token not in self.tokens:
            return 401, {"message": "Bad credentials"}, {}
        granted = {"metadata": "read", **self.tokens[token]}  # every token may read metadata
        route = self.routes().get((method, path))
        if route is None or LEVELS[granted["metadata"]] < 1:
            return 404, {"message": "Not Found"}, {}
        permission, level = route
        if LEVELS[granted.get(permission, "none")] < LEVELS[level]:
            who = "integration" if token.startswith("ghs_") else "personal access token"
            return (
                403,
                {"message": f"Resource not accessible by {who}"},
                {"X-Accepted-GitHub-Permissions": f"{permission}={level}"},
            )
        return self._allowed(method, path, body)

    def _allowed(self, method: str, path: str, body: Any) -> tuple[int, Any, dict]:
        if method == "GET" and path.endswith("/workflow"):
            body = {
                "default_workflow_permissions": "read",
                "can_approve_pull_request_reviews": False,
            }
            return 200, body, {}
        if method == "GET":
            # `permissions` are the token owner's on the repository, not the token's.
            owner = {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True}
            return 200, {"full_name": self.name, "default_branch": "main", "permissions": owner}, {}
        if path.endswith("/git/refs"):  # no commit here is all zeros
            return 422, {"message": "Object does not exist"}, {}
        missing = [k for k in ("title", "head", "base") if not (body or {}).get(k)]
        if missing:
            errors = [{"resource": "PullRequest", "field": k, "code": "missing"} for k in missing]
            return 422, {"message": "Validation Failed", "errors": errors}, {}
        return 500, {"message": "this stand-in opens no pull requests"}, {}


@contextmanager
def serve(repository: Repository) -> Iterator[Repository]:
    """The API on 127.0.0.1 (its base URL in `repository.url`) while the block runs."""

    def answer(
        method: str, path: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, Any, Mapping[str, str]]:
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        path = path.split("?", 1)[0]
        status, body, extra = repository.answer(
            method, path, token, json.loads(raw) if raw else None
        )
        repository.requests.append((method, path, status))
        return status, body, {"Content-Type": "application/json", **extra}

    with json_api(answer) as url:
        repository.url = url
        yield repository
