"""Publishing a result: push its branches and open (or update) its one pull request.

In the workflow it runs after `verify` took the artifact's branches in; on a laptop it pushes
what `run` or `integrate` made. No pull request when nothing was committed: then only the
memory branch is pushed, so the next run (in a fresh clone) knows what happened.

The memory branch is pushed without losing what other runs pushed there (`publish_memory`).
A branch reaches the remote before its pull request can be opened; when opening it failed, the
branch sat there with its tasks skipped as awaiting a review nobody was asked for. So every
publication also opens the missing pull request of each such branch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_agent.artifact import RESULT_FILE, own_branches, read_result
from gitops_agent.checkpoints import tag_merges
from gitops_agent.errors import UserError
from gitops_agent.files import read_text
from gitops_agent.git.remote import (
    DEFAULT_REMOTE,
    fetch_autonomous,
    push,
    push_checkpoints,
    remote_url,
)
from gitops_agent.github import GitHub, GitHubError, PullRequest, repository_from_url
from gitops_agent.memory import load_session, publish_memory
from gitops_agent.project import Base, load_base
from gitops_agent.render import render
from gitops_agent.results import BRANCH_PREFIX, MEMORY_BRANCH
from gitops_agent.session import pr_body, task_pr_body

LABELS = ("gitops-agent",)
TITLE_LIMIT = 120


@dataclass(frozen=True, slots=True)
class Publication:
    pushed: tuple[str, ...]
    pull: PullRequest | None
    created: bool
    labels: tuple[str, ...]
    repaired: tuple[PullRequest, ...] = ()  # opened for branches pushed earlier without one
    notes: tuple[str, ...] = ()  # for people: what could not be done, and what happens next
    others: tuple[PullRequest, ...] = ()  # the PRs of its tasks' own branches


def publish(
    repo_dir: Path | None,
    artifact: Path | None = None,
    *,
    branch: str | None = None,
    body_file: Path | None = None,
    remote: str = DEFAULT_REMOTE,
    repository: str | None = None,
    plan: Path | None = None,
    constraints: Path | None = None,
    require_github: bool = True,
    pull_failure_ok: bool = False,
    own: Sequence[str] = (),
) -> Publication:
    """Push the result's branch and the memory branch to `remote`; open or update the PR.

    The branch and PR text come from an artifact directory (`bundle --out`), or are given.
    With `pull_failure_ok` (run --push), a pull request GitHub would not open is a note: the
    branches are pushed, and the next publication opens it.
    """
    data: dict[str, Any] = {}
    if artifact is not None:
        # The artifact's pr-body.md is never read: it came from the job that ran the agent.
        # The description is rendered here, from the verified commits and memory record.
        data = read_result(artifact / RESULT_FILE)
        branch = branch or data.get("branch")
    base = load_base(repo_dir, plan, constraints)
    repo = base.repo
    if branch and repo.branch_tip(branch) is None:
        raise UserError(f"branch {branch} does not exist here (run `verify` first)", str(repo.root))
    # A task with approval per-task or auto is on a branch of its own, with a PR of its own:
    # the result names them (an artifact), or the caller does (`own`: run --push).
    own = [b for b in (*own_branches(data), *own) if repo.branch_tip(b) is not None]
    pushed = push(repo, remote, [*([branch] if branch else []), *own])
    timezone = base.project.plan.settings.timezone
    tag_merges(repo, base.branch, timezone=timezone)  # what a person merged since: checkpoints
    memory = publish_memory(repo, remote, timezone=timezone)
    pushed += [memory] if memory else []
    pushed += push_checkpoints(repo, remote)
    repository = repository or repository_from_url(remote_url(repo, remote))
    if repository is None and not os.environ.get("GITHUB_REPOSITORY") and not require_github:
        return Publication(tuple(pushed), None, False, ())  # not on GitHub: pushed only
    github = GitHub.from_env(repository)
    notes: list[str] = []
    pull: PullRequest | None = None
    created = False
    labels: tuple[str, ...] = ()
    if branch:
        tip = repo.branch_tip(branch)
        assert tip is not None  # checked above
        tasks = _tasks(base, tip)
        if body_file is not None:
            body = read_text(body_file, str(body_file))  # a person's own text, given by name
        else:
            body = _body(base, branch, tasks, tip, left_out=data.get("left_out"))
        try:
            published = github.open_or_update_pull(branch, base.branch, _title(tasks, branch), body)
            pull, created = published.pull, published.created
            labels = tuple(github.add_labels(pull.number, LABELS))
        except GitHubError as err:
            if not pull_failure_ok:
                raise
            notes.append(
                f"The pull request for {branch} was not opened ({err}). The branch is on "
                f"{remote}: the next run (or `gitops-agent publish`) opens it."
            )
    opened: list[PullRequest] = []
    for each in own:
        tip = repo.branch_tip(each)
        assert tip is not None  # checked above
        tasks = _tasks(base, tip)
        try:
            alone = github.open_or_update_pull(
                each, base.branch, _title(tasks, each), _body(base, each, tasks, tip)
            )
            github.add_labels(alone.pull.number, LABELS)
            opened.append(alone.pull)
        except GitHubError as err:
            if not pull_failure_ok:
                raise
            notes.append(f"The pull request for {each} was not opened ({err}).")
    repaired = _open_missing(base, github, remote, skip=branch, notes=notes)
    return Publication(
        tuple(pushed), pull, created, labels, tuple(repaired), tuple(notes), tuple(opened)
    )


def _open_missing(
    base: Base, github: GitHub, remote: str, *, skip: str | None, notes: list[str]
) -> list[PullRequest]:
    """Open the pull request of every unmerged branch on `remote` that never had one."""
    repo = base.repo
    opened: list[PullRequest] = []
    for branch, tip in fetch_autonomous(repo, remote).items():
        if branch in (MEMORY_BRANCH, skip) or repo.is_merged(tip, base.commit):
            continue
        tasks = _tasks(base, tip)
        try:
            if github.pulls_for(branch, state="all"):
                continue  # open, merged or closed: a person has it, or had it
            published = github.open_or_update_pull(
                branch, base.branch, _title(tasks, branch), _body(base, branch, tasks, tip)
            )
            github.add_labels(published.pull.number, LABELS)
        except GitHubError as err:
            notes.append(f"{branch} still has no pull request ({err}); the next run tries again.")
            continue
        opened.append(published.pull)
    return opened


def _tasks(base: Base, tip: str) -> list[str]:
    """The ids of the tasks a branch carries, in plan order."""
    order = {task.id: n for n, task in enumerate(base.project.plan.tasks)}
    found = {c.trailers.get("Task-Id", "") for c in base.repo.commits_between(tip, base.commit)}
    return sorted(found - {""}, key=lambda t: (order.get(t, len(order)), t))


def _body(base: Base, branch: str, tasks: list[str], tip: str, *, left_out: object = None) -> str:
    """A branch's description, from verified data only: a session branch's from its session's
    record (as its run wrote it, every field escaped); an integration branch's from its merge
    commits, plus the tasks the result says were left out (only ids the plan holds)."""
    settings = base.project.plan.settings
    session = load_session(base.repo, branch.removeprefix(BRANCH_PREFIX))
    if session is not None and session.branch == branch:
        return pr_body(session, base.project.constraints, settings.quarantine_hours)
    own = _own_branch_body(base, branch, tip)
    if own is not None:
        return own
    merged = _merged(base, tip)
    known = {task.id for task in base.project.plan.tasks}
    dropped = [
        entry
        for entry in (left_out if isinstance(left_out, list) else [])
        if isinstance(entry, dict)
        and isinstance(entry.get("tasks"), list)
        and entry["tasks"]
        and all(isinstance(t, str) and t in known and t not in tasks for t in entry["tasks"])
    ]
    return render(
        "integration-pr.md.j2",
        branch=branch,
        base=base.branch,
        tasks=tasks,
        merged=merged,
        left_out=[
            {
                "tasks": entry["tasks"],
                "branch": None,  # never pushed: the matrix workflow pushes the integration only
                "reason": str(entry.get("reason") or "left out"),
                "files": [f for f in entry.get("files") or [] if isinstance(f, str)],
            }
            for entry in dropped
        ],
        gate=None,
    )


def _own_branch_body(base: Base, branch: str, tip: str) -> str | None:
    """A task's own branch (approval per-task or auto): described from its session's record,
    as the task is recorded there, when that record names this branch."""
    sessions = {c.trailers.get("Session") for c in base.repo.commits_between(tip, base.commit)}
    if len(sessions) != 1:
        return None
    session = load_session(base.repo, sessions.pop() or "")
    if session is None:
        return None
    hours = base.project.plan.settings.quarantine_hours
    return task_pr_body(session, branch, base.project.constraints, hours)


def _merged(base: Base, tip: str) -> list[dict[str, Any]]:
    """What each merge commit between the base and `tip` brought: its tasks and sessions, from
    the trailers of the commits it merged (verify checked them), oldest first."""
    repo = base.repo
    merged = []
    for commit in reversed(repo.commits_between(tip, base.commit)):
        if len(commit.parents) != 2:
            continue
        brought = reversed(
            repo.commits_between(commit.parents[1], [base.commit, commit.parents[0]])
        )
        found = [
            (c.trailers["Task-Id"], c.trailers.get("Session", ""))
            for c in brought
            if "Task-Id" in c.trailers
        ]
        if found:
            merged.append(
                {
                    "tasks": list(dict.fromkeys(t for t, _ in found)),
                    "sessions": list(dict.fromkeys(s for _, s in found if s)),
                }
            )
    return merged


def _title(tasks: list[str], branch: str) -> str:
    if not tasks:
        return f"gitops-agent: {branch}"
    noun = "task" if len(tasks) == 1 else "tasks"
    title = f"gitops-agent: {len(tasks)} {noun} ({', '.join(tasks)})"
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 3] + "..."


@dataclass(frozen=True, slots=True)
class Offer:
    """A branch the tool made for people to take (a rollback, a proposal, a draft): where it
    went and its pull request, if it got one."""

    branch: str
    pushed: bool
    pull: PullRequest | None
    notes: tuple[str, ...] = ()


def offer_branch(
    base: Base,
    branch: str,
    title: str,
    body: str,
    *,
    push_it: bool,
    remote: str = DEFAULT_REMOTE,
    draft: bool = False,
    labels: tuple[str, ...] = LABELS,
) -> Offer:
    """Push `branch` (and the memory branch) to `remote` and open or update its pull request
    into the base, when asked to push and the remote is on GitHub; else it stays a local
    branch, which a person merges or pushes. A PR GitHub would not open is a note."""
    repo = base.repo
    if not push_it:
        return Offer(branch, False, None)
    push(repo, remote, [branch])
    publish_memory(repo, remote, timezone=base.project.plan.settings.timezone)
    repository = repository_from_url(remote_url(repo, remote))
    if repository is None and not os.environ.get("GITHUB_REPOSITORY"):
        return Offer(branch, True, None, ("The remote is not on GitHub: no pull request.",))
    github = GitHub.from_env(repository)
    try:
        published = github.open_or_update_pull(branch, base.branch, title, body, draft=draft)
        github.add_labels(published.pull.number, labels)
    except GitHubError as err:
        return Offer(
            branch, True, None, (f"The pull request for {branch} was not opened ({err}).",)
        )
    return Offer(branch, True, published.pull)
