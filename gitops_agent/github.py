"""The few GitHub REST calls the tool makes: one pull request per session, its labels, and what
became of earlier pull requests.

Plain urllib behind a small typed wrapper, no client library: there are seven endpoints, and
PyGithub or ghapi would add a dependency tree (and their own retry and paging rules) for them.
The API base comes from GITHUB_API_URL, as Actions sets it (GitHub Enterprise too), and the
token from GITHUB_TOKEN or GH_TOKEN.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitops_agent import __version__
from gitops_agent.errors import UserError
from gitops_agent.git.remote import token_from_env
from gitops_agent.git.repo import OWN_PREFIX
from gitops_agent.results import BRANCH_PREFIX

WORKFLOW_PATH = ".github/workflows/gitops-agent.yml"  # what `init --github` writes

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
TIMEOUT = 30.0  # seconds for one request
PAGE_SIZE = 100  # the most GitHub sends in one page
# A listing follows GitHub's `Link: <url>; rel="next"` header from page to page, as the REST docs
# ask (no Link, no more pages; a short page is no sign of the last one). MAX_PAGES bounds it: 50
# pages of 100 are 5,000 pull requests, and 50 of the 1,000 requests an hour a workflow's
# GITHUB_TOKEN may make. A listing that goes on past it raises GitHubError naming MAX_PAGES,
# rather than being cut short in silence.
MAX_PAGES = 50
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
    base: str
    head_repository: str | None = None  # owner/name the branch lives in (a fork's, or ours)

    @classmethod
    def from_api(cls, data: Any) -> PullRequest:
        """A pull request as the REST API describes it; GitHubError when it is not one."""
        try:
            return cls(
                number=int(data["number"]),
                url=str(data["html_url"]),
                title=str(data.get("title") or ""),
                state=str(data["state"]),
                merged=data.get("merged_at") is not None,
                head=str(data["head"]["ref"]),
                base=str(data["base"]["ref"]),
                head_repository=(data["head"].get("repo") or {}).get("full_name"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise GitHubError(
                f"GitHub answered with a pull request this tool cannot read "
                f"({type(err).__name__}: {err})",
                0,
            ) from None


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

    def open_or_update_pull(
        self, head: str, base: str, title: str, body: str, *, draft: bool = False
    ) -> Published:
        """Open a PR from `head` into `base`; when one is open already, update its text."""
        opening: dict[str, Any] = {
            "title": title,
            "head": head,
            "base": base,
            "body": body,
            "maintainer_can_modify": False,
        }
        if draft:
            opening["draft"] = True
        try:
            data = self._call("POST", f"/repos/{self.repository}/pulls", body=opening)
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

    def merge_pull(self, number: int, *, sha: str, method: str, title: str) -> str:
        """Merge a PR if its head is still `sha` (GitHub refuses with 409 when it moved);
        returns the merge commit's id."""
        data = self._call(
            "PUT",
            f"/repos/{self.repository}/pulls/{number}/merge",
            body={"sha": sha, "merge_method": method, "commit_title": title},
        )
        if not isinstance(data, dict) or not data.get("merged"):
            raise GitHubError(f"pull request #{number} was not merged", 0)
        return str(data.get("sha") or "")

    def comment(self, number: int, body: str) -> None:
        """Add a comment to a PR (its conversation)."""
        self._call(
            "POST", f"/repos/{self.repository}/issues/{number}/comments", body={"body": body}
        )

    def pulls_for(self, head: str, *, state: str = "all") -> list[PullRequest]:
        """PRs whose head is our branch `head` in this repository, newest first."""
        return [
            PullRequest.from_api(item)
            for item in self._pages(
                f"/repos/{self.repository}/pulls",
                {"head": f"{self.owner}:{head}", "state": state},
            )
        ]

    def rejected_pulls(self, prefix: str = BRANCH_PREFIX) -> Iterator[PullRequest]:
        """The closed, unmerged PRs from a branch under `prefix` of this repository, most
        recently updated first. Pages are asked for as the caller gets to them: one that stops
        early spares the requests (and the rate limit) the rest would cost.

        A fork's branch may be named like ours, and anyone may open and close such a PR: only
        branches of this repository count.
        """
        for item in self._pages(
            f"/repos/{self.repository}/pulls",
            {"state": "closed", "sort": "updated", "direction": "desc"},
        ):
            pull = PullRequest.from_api(item)
            if (
                pull.head.startswith(prefix)
                and not pull.merged
                and pull.head_repository == self.repository
            ):
                yield pull

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
            {"ref": f"{OWN_PREFIX}gitops-agent-permission-check", "sha": "0" * 40},
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
            if err.status == 422 or 200 <= err.status < 300:  # 2xx: accepted, however it reads
                return True
            if err.status in (403, 404):
                return False
            raise
        return True  # accepted: allowed (it cannot have been, with that body)

    # -- transport -------------------------------------------------------------------------------

    def _pages(self, path: str, query: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """The items of a listing in GitHub's order, one page asked for at a time, when the
        caller reaches it (see MAX_PAGES)."""
        url = self._url(path, {**query, "per_page": str(PAGE_SIZE), "page": "1"})
        for page in range(1, MAX_PAGES + 1):
            what = f"GET {path}" + (f" (page {page})" if page > 1 else "")
            data, link = self._request("GET", url, what)
            if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
                raise GitHubError(f"{what}: GitHub answered with something other than a list", 0)
            yield from data
            following = _next_page(link)
            if following is None:
                return
            if not self._serves(following):  # the token goes with the request: ours only
                raise GitHubError(
                    f"{what}: the next page is at {following}, outside {self._api}; not followed",
                    0,
                )
            url = following
        raise GitHubError(
            f"GET {path}: GitHub lists more than {MAX_PAGES} pages of {PAGE_SIZE}; the tool "
            f"stops there (MAX_PAGES in {__name__}) rather than spend the hour's requests on it",
            0,
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        return self._request(method, self._url(path, query), f"{method} {path}", body)[0]

    def _url(self, path: str, query: Mapping[str, str] | None) -> str:
        return self._api + path + (f"?{urllib.parse.urlencode(query)}" if query else "")

    def _serves(self, url: str) -> bool:
        """Whether `url` is under this client's API (GitHub's Link URLs may name another path,
        `/repositories/<id>/...`, but never another host)."""
        got, api = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self._api)
        return (got.scheme, got.netloc.lower()) == (api.scheme, api.netloc.lower()) and (
            got.path.startswith(api.path.rstrip("/") + "/")
        )

    def _request(
        self, method: str, url: str, what: str, body: Mapping[str, Any] | None = None
    ) -> tuple[Any, str | None]:
        """The decoded JSON answer and its Link header. `what` names the request in errors."""
        if self._token is None:
            raise UserError("no GitHub token: set GITHUB_TOKEN (or GH_TOKEN)")
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
                status, answered = response.status, response.headers
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise _refusal(what, err) from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise GitHubError(f"{what}: cannot reach {self._api}: {reason}", 0) from None
        except http.client.HTTPException as err:  # a body cut short, a line that is not HTTP
            raise GitHubError(
                f"{what}: the answer from {self._api} broke off or was not HTTP "
                f"({err or type(err).__name__}); try again later",
                0,
            ) from None
        return _decoded(what, status, answered.get("Content-Type"), raw), answered.get("Link")


def _decoded(what: str, status: int, kind: str | None, raw: bytes) -> Any:
    """The JSON of a successful answer. Anything else (a proxy's HTML page, an empty or cut-off
    body) is a GitHubError that names the request, never a ValueError from deep inside."""
    if not raw and status == 204:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # JSONDecodeError; UnicodeDecodeError for bytes that are not text
        said = f"{status}, {kind or 'no Content-Type'}, " + (
            _glimpse(raw) if raw else "an empty body"
        )
        raise GitHubError(
            f"{what}: the answer is not JSON ({said}): GitHub, or a proxy on the way to it, "
            "failed; try again later",
            status,
        ) from None


def _glimpse(raw: bytes) -> str:
    """A few words of a body that is not JSON: an HTML page's title, else how it starts."""
    text = " ".join(raw[:2000].decode("utf-8", "replace").split())
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE)
    if title and title[1].strip():
        return f"a page titled {title[1].strip()[:80]!r}"
    return f"{text[:60]!r}" + ("..." if len(text) > 60 else "")


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_REL = re.compile(r'\brel\s*=\s*"?([^";,]*)"?', re.IGNORECASE)


def _next_page(header: str | None) -> str | None:
    """The URL of `rel="next"` in a Link header (RFC 8288), as GitHub pages its listings."""
    for found in _LINK.finditer(header or ""):
        rel = _REL.search(found[2])
        if rel and "next" in rel[1].lower().split():
            return found[1]
    return None


def _refusal(what: str, err: urllib.error.HTTPError) -> GitHubError:
    """A message that says what GitHub said, and what to do where we know it."""
    try:
        data = json.loads(err.read() or b"{}")
    except (ValueError, OSError, http.client.HTTPException):  # a proxy's page, a body cut off
        data = {}
    if not isinstance(data, dict):
        data = {}
    said = str(data.get("message") or err.reason)
    errors = data.get("errors")
    details = [
        str(e.get("message") or e.get("code")) if isinstance(e, dict) else str(e)
        for e in (errors if isinstance(errors, list) else [])
        if e
    ]
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
    elif err.code >= 500:
        hint = " (GitHub, or a proxy on the way to it, failed; try again later)"
    return GitHubError(f"{what}: {err.code} {text}{hint}", err.code)


_GITHUB_URL = re.compile(
    r"^(?:https://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)


def repository_from_url(url: str | None) -> str | None:
    """`owner/name` of a github.com remote URL, else None."""
    found = _GITHUB_URL.match(url or "")
    return found["repo"] if found else None
