"""The GitHub client against replayed API exchanges: a local server checks every request."""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_agent.github import API_VERSION, GitHub, GitHubError
from testing.http import json_api

EXCHANGES = Path(__file__).parent / "fixtures" / "github"
TOKEN = "ghs_test0000000000000000000000000000000"
REPOSITORY = "octo-org/widgets"
BRANCH = "autonomous/20261123-020000-ab12"
BODY = "## Autonomous session\n\nRecorded body.\n"


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
    assert replay.errors == []


def done(replay: Replay) -> None:
    assert replay.errors == []
    assert replay.pending == [], "recorded requests were never made"


def client(replay: Replay) -> GitHub:
    return GitHub.from_env(
        env={
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_API_URL": replay.url,
            "GITHUB_TOKEN": TOKEN,
        }
    )


def test_a_new_session_branch_gets_a_new_labelled_pull_request() -> None:
    with serve("open_pull") as replay:
        github = client(replay)
        published = github.open_or_update_pull(BRANCH, "main", "gitops-agent: 1 task (t1)", BODY)
        labels = github.add_labels(published.pull.number, ["gitops-agent"])
        done(replay)
    assert published.created
    assert published.pull.number == 7
    assert published.pull.url == "https://github.com/octo-org/widgets/pull/7"
    assert (published.pull.head, published.pull.base, published.pull.state) == (
        BRANCH,
        "main",
        "open",
    )
    assert labels == ["gitops-agent"]


def test_an_open_pull_request_for_the_branch_is_updated_not_duplicated() -> None:
    with serve("update_pull") as replay:
        github = client(replay)
        published = github.open_or_update_pull(BRANCH, "main", "gitops-agent: 1 task (t1)", BODY)
        github.add_labels(published.pull.number, ["gitops-agent"])
        done(replay)
    assert not published.created
    assert published.pull.number == 7
    assert published.pull.title == "gitops-agent: 1 task (t1)"


def test_a_pull_request_closed_without_merging_is_found_with_its_task_ids() -> None:
    with serve("closed_pulls") as replay:
        github = client(replay)
        rejected = github.closed_unmerged_pulls("autonomous/20261120-020000-cd34")
        assert [p.number for p in rejected] == [5]  # #3 was merged: not a rejection
        assert github.pull_task_ids(5) == ["t1", "t2"]
        done(replay)


def test_actions_not_allowed_to_create_pull_requests_says_where_to_allow_it() -> None:
    with serve("actions_not_permitted") as replay:
        with pytest.raises(GitHubError) as raised:
            client(replay).open_or_update_pull(BRANCH, "main", "gitops-agent: 1 task (t1)", BODY)
        done(replay)
    assert raised.value.status == 403
    assert "Allow GitHub Actions to create and approve pull requests" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_no_token_is_a_user_error_and_the_token_never_shows_in_repr() -> None:
    github = GitHub(REPOSITORY, None, "http://127.0.0.1:9")
    with pytest.raises(Exception, match="no GitHub token"):
        github.pulls_for(BRANCH)
    assert TOKEN not in repr(GitHub(REPOSITORY, TOKEN))


def test_an_unreachable_api_is_a_clear_error() -> None:
    github = GitHub(REPOSITORY, TOKEN, "http://127.0.0.1:9")
    with pytest.raises(GitHubError, match="cannot reach"):
        github.pulls_for(BRANCH)
