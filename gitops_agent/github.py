"""The few GitHub REST calls the tool makes: one pull request per session, its labels, and what
became of earlier pull requests.

Plain urllib behind a small typed wrapper, no client library: there are seven endpoints, and
PyGithub or ghapi would add a dependency tree (and their own retry and paging rules) for them.
The API base comes from GITHUB_API_URL, as Actions sets it (GitHub Enterprise too), and the
token from GITHUB_TOKEN or GH_TOKEN.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitops_agent import __version__
from gitops_agent.errors import UserError
from gitops_agent.git.remote import token_from_env

WORKFLOW_PATH = ".github/workflows/gitops-agent.yml"  # what `init --github` writes

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
TIMEOUT = 30.0  # seconds for one request
PAGE_SIZE = 100
MAX_PAGES = 10
_TRAILER = re.compile(r"^Task-Id:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubError(UserError):
    """GitHub refused a request; `status` is the HTTP status (0 when it could not be reached)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, "GitHub")
        self.status = status


@dataclass(frozen=True, slots=True)
class PullRequest:
    number: int
    url: str  # the page a person opens
    title: str
    state: str  # "open" or "closed"
    merged: bool
    head: str  # branch name
    head_sha: str
    base: str
    head_repository: str | None = None  # owner/name the branch lives in (a fork's, or ours)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> PullRequest:
        return cls(
            number=int(data["number"]),
            url=str(data["html_url"]),
            title=str(data.get("title") or ""),
            state=str(data["state"]),
            merged=data.get("merged_at") is not None,
            head=str(data["head"]["ref"]),
            head_sha=str(data["head"]["sha"]),
            base=str(data["base"]["ref"]),
            head_repository=(data["head"].get("repo") or {}).get("full_name"),
        )


@dataclass(frozen=True, slots=True)
class Published:
    pull: PullRequest
    created: bool  # False: an open PR for the branch existed and was updated


class GitHub:
    """A client for one repository (`owner/name`)."""

    def __init__(self, repository: str, token: str | None, api_url: str = DEFAULT_API_URL) -> None:
        if not _REPOSITORY.match(repository):
            raise UserError(f"not a repository name (owner/name): {repository!r}")
        self.repository = repository
        self.owner = repository.split("/", 1)[0]
        self._token = token
        self._api = api_url.rstrip("/")

    def __repr__(self) -> str:  # never the token
        return f"GitHub({self.repository!r}, api={self._api!r})"

    @classmethod
    def from_env(
        cls, repository: str | None = None, env: Mapping[str, str] | None = None
    ) -> GitHub:
        """Repository from GITHUB_REPOSITORY unless given; API from GITHUB_API_URL."""
        env = os.environ if env is None else env
        repository = repository or env.get("GITHUB_REPOSITORY")
        if not repository:
            raise UserError("which GitHub repository? set GITHUB_REPOSITORY=owner/name")
        return cls(repository, token_from_env(env), env.get("GITHUB_API_URL") or DEFAULT_API_URL)

    # -- pull requests -----------------------------------------------------------------------

    def open_or_update_pull(self, head: str, base: str, title: str, body: str) -> Published:
        """Open a PR from `head` into `base`; when one is open already, update its text."""
        try:
            data = self._call(
                "POST",
                f"/repos/{self.repository}/pulls",
                body={
                    "title": title,
                    "head": head,
                    "base": base,
                    "body": body,
                    "maintainer_can_modify": False,
                },
            )
            return Published(PullRequest.from_api(data), created=True)
        except GitHubError as err:
            if err.status != 422 or "already exists" not in err.message:
                raise
        found = self.pulls_for(head, state="open")
        if not found:
            raise GitHubError(f"GitHub says a PR for {head} exists, but none is open", 422)
        number = found[0].number
        data = self._call(
            "PATCH",
            f"/repos/{self.repository}/pulls/{number}",
            body={"title": title, "body": body, "base": base},
        )
        return Published(PullRequest.from_api(data), created=False)

    def add_labels(self, number: int, labels: Sequence[str]) -> list[str]:
        """Add labels (GitHub creates missing ones); returns every label the PR now has."""
        data = self._call(
            "POST",
            f"/repos/{self.repository}/issues/{number}/labels",
            body={"labels": list(labels)},
        )
        return [str(label["name"]) for label in data]

    def pulls_for(self, head: str, *, state: str = "all") -> list[PullRequest]:
        """PRs whose head is our branch `head` in this repository, newest first."""
        return [
            PullRequest.from_api(item)
            for item in self._pages(
                f"/repos/{self.repository}/pulls",
                {"head": f"{self.owner}:{head}", "state": state},
            )
        ]

    def closed_unmerged_pulls(self, head: str) -> list[PullRequest]:
        """PRs from `head` that were closed without being merged: a person said no."""
        return [p for p in self.pulls_for(head, state="closed") if not p.merged]

    def rejected_pulls(self, prefix: str = "autonomous/") -> list[PullRequest]:
        """Every closed, unmerged PR from a branch under `prefix` of this repository.

        A fork's branch may be named like ours, and anyone may open and close such a PR: only
        branches of this repository count.
        """
        return [
            pull
            for item in self._pages(
                f"/repos/{self.repository}/pulls",
                {"state": "closed", "sort": "updated", "direction": "desc"},
            )
            if (pull := PullRequest.from_api(item)).head.startswith(prefix)
            and not pull.merged
            and pull.head_repository == self.repository
        ]

    def pull_task_ids(self, number: int) -> list[str]:
        """The `Task-Id:` trailers of a PR's commits, in order (GitHub keeps them after the
        branch is deleted)."""
        found: list[str] = []
        for item in self._pages(f"/repos/{self.repository}/pulls/{number}/commits", {}):
            for task_id in _TRAILER.findall(str(item["commit"]["message"])):
                if task_id not in found:
                    found.append(task_id)
        return found

    # -- the repository ------------------------------------------------------------------------

    def repository_info(self) -> dict[str, Any]:
        """`GET /repos/{owner}/{repo}` (default branch, and `permissions` for user tokens)."""
        data = self._call("GET", f"/repos/{self.repository}")
        if not isinstance(data, dict):
            raise GitHubError("unexpected answer to GET /repos", 0)
        return data

    def workflow_permissions(self) -> dict[str, Any]:
        """The Actions settings: default token permissions and whether Actions may open PRs."""
        data = self._call("GET", f"/repos/{self.repository}/actions/permissions/workflow")
        if not isinstance(data, dict):
            raise GitHubError("unexpected answer to GET actions/permissions/workflow", 0)
        return data

    # -- what the token may do -------------------------------------------------------------------
    # A fine-grained token lists no scopes (no X-OAuth-Scopes header), and `permissions` in
    # GET /repos are its owner's, not its own. So ask with a write GitHub must refuse: it checks
    # the token's permission first (403, or 404 where it may not even read), and only then the
    # request (422). Neither request can succeed, so nothing is created.

    def may_push(self) -> bool:
        """Whether the token may create branches here (contents: write)."""
        return self._permitted(
            "POST",
            f"/repos/{self.repository}/git/refs",
            {"ref": "refs/heads/autonomous/gitops-agent-permission-check", "sha": "0" * 40},
        )

    def may_open_pulls(self) -> bool:
        """Whether the token may open pull requests here (pull-requests: write)."""
        return self._permitted(
            "POST", f"/repos/{self.repository}/pulls", {"title": "", "head": "", "base": ""}
        )

    def _permitted(self, method: str, path: str, body: Mapping[str, Any]) -> bool:
        try:
            self._call(method, path, body=body)
        except GitHubError as err:
            if err.status == 422:
                return True
            if err.status in (403, 404):
                return False
            raise
        return True  # accepted: allowed (it cannot have been, with that body)

    # -- transport -------------------------------------------------------------------------------

    def _pages(self, path: str, query: Mapping[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            data = self._call(
                "GET", path, query={**query, "per_page": str(PAGE_SIZE), "page": str(page)}
            )
            if not isinstance(data, list):
                raise GitHubError(f"unexpected answer to GET {path}: not a list", 0)
            items.extend(data)
            if len(data) < PAGE_SIZE:
                break
        return items

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        if self._token is None:
            raise UserError("no GitHub token: set GITHUB_TOKEN (or GH_TOKEN)")
        url = self._api + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {
            "Accept": ACCEPT,
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"gitops-agent/{__version__}",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise _refusal(method, path, err) from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise GitHubError(f"{method} {path}: cannot reach {self._api}: {reason}", 0) from None
        return json.loads(raw) if raw else None


def _refusal(method: str, path: str, err: urllib.error.HTTPError) -> GitHubError:
    """A message that says what GitHub said, and what to do where we know it."""
    try:
        data = json.loads(err.read() or b"{}")
    except ValueError:
        data = {}
    said = str(data.get("message") or err.reason)
    details = [str(e.get("message") or e.get("code")) for e in data.get("errors") or [] if e]
    text = "; ".join([said, *details])
    hint = ""
    if err.code == 401:
        hint = " (the token is wrong or expired)"
    elif err.code == 403 and "not permitted to create" in text:
        hint = (
            " (allow it: Settings > Actions > General > 'Allow GitHub Actions to create and "
            "approve pull requests', or give the workflow a GITOPS_AGENT_TOKEN secret)"
        )
    elif err.code in (403, 404):
        hint = " (the token may lack the permission: contents and pull-requests write)"
    return GitHubError(f"{method} {path}: {err.code} {text}{hint}", err.code)


_GITHUB_URL = re.compile(
    r"^(?:https://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)


def repository_from_url(url: str | None) -> str | None:
    """`owner/name` of a github.com remote URL, else None."""
    found = _GITHUB_URL.match(url or "")
    return found["repo"] if found else None
