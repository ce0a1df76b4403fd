"""Which results already wait for a person: unmerged autonomous branches and their tasks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gitops_agent.git import Repo
from gitops_agent.git.remote import DEFAULT_REMOTE, remote_branches
from gitops_agent.results import INTEGRATION_PREFIX, MEMORY_BRANCH


@dataclass(frozen=True, slots=True)
class Awaiting:
    """An unmerged autonomous branch and the tasks whose commits wait on it for a review."""

    branch: str
    tip: str
    tasks: tuple[str, ...]
    commits: int

    def to_json(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "tip": self.tip,
            "tasks": list(self.tasks),
            "commits": self.commits,
        }


def awaiting_review(repo: Repo, base_commit: str | None) -> list[Awaiting]:
    """Our branches (but the memory branch) not merged into the base, with their Task-Ids."""
    if base_commit is None:
        return []
    return _unmerged(repo, repo.autonomous_branches(), base_commit, prefix="")


def remote_awaiting_review(repo: Repo, base_commit: str, remote: str) -> list[Awaiting]:
    """The same for the remote's autonomous branches as last fetched (`origin/autonomous/x`).

    A fresh clone (every scheduled run) has only these: they are how it knows what awaits review.
    """
    return _unmerged(repo, remote_branches(repo, remote), base_commit, prefix=f"{remote}/")


def _unmerged(
    repo: Repo, branches: dict[str, str], base_commit: str, *, prefix: str
) -> list[Awaiting]:
    """The branches (name -> tip) but the memory branch not merged into the base, each named
    with `prefix`, with the Task-Ids of the commits it adds, oldest first."""
    found: list[Awaiting] = []
    for branch, tip in branches.items():
        if branch == MEMORY_BRANCH or repo.is_merged(tip, base_commit):
            continue
        commits = repo.commits_between(tip, base_commit)
        ids = [c.trailers["Task-Id"] for c in reversed(commits) if c.trailers.get("Task-Id")]
        found.append(Awaiting(prefix + branch, tip, tuple(dict.fromkeys(ids)), len(commits)))
    return found


def tasks_awaiting_review(
    repo: Repo, base_commit: str, remote: str = DEFAULT_REMOTE
) -> dict[str, Awaiting]:
    """Task id -> the branch its committed result waits on: local branches first, by name."""
    found: dict[str, Awaiting] = {}
    for waiting in every_awaiting_review(repo, base_commit, remote):
        for task_id in waiting.tasks:
            found.setdefault(task_id, waiting)
    return found


def superseded(repo: Repo, awaiting: Sequence[Awaiting]) -> set[str]:
    """The integration branches another, newer one makes redundant: it carries every task they
    carry. Their results wait on the newer branch; they do not await review themselves."""
    integrations = [a for a in awaiting if INTEGRATION_PREFIX in a.branch and a.tasks]
    made = {a.branch: repo.commit_time(a.tip) for a in integrations}
    return {
        older.branch
        for older in integrations
        if any(
            newer.branch != older.branch
            and set(older.tasks) <= set(newer.tasks)
            and made[newer.branch] > made[older.branch]
            for newer in integrations
        )
    }


def every_awaiting_review(
    repo: Repo, base_commit: str | None, remote: str = DEFAULT_REMOTE
) -> list[Awaiting]:
    """Ours (by name), then the remote's (as last fetched) that we do not hold at the same
    commit, less the integrations a newer one supersedes: in a fresh clone (every scheduled
    run, every CI job) the remote's are all there is."""
    if base_commit is None:
        return []
    local = awaiting_review(repo, base_commit)
    held = {(a.branch, a.tip) for a in local}
    fetched = remote_awaiting_review(repo, base_commit, remote)
    found = local + [a for a in fetched if (a.branch.removeprefix(f"{remote}/"), a.tip) not in held]
    gone = superseded(repo, found)
    return [a for a in found if a.branch not in gone]


class Kept(Enum):
    """Where a committed task's result is now."""

    AWAITING = "awaiting"  # on a branch that awaits review (its session's, or an integration)
    MERGED = "merged"  # in the base branch
    NOT_KEPT = "not_kept"  # on no branch here or on the remote: never pushed, or deleted


@dataclass(frozen=True, slots=True)
class Place:
    kept: Kept
    branch: str | None = None  # the branch it awaits review on

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.kept.value, "branch": self.branch}


def places_of(
    repo: Repo,
    commits: Iterable[tuple[str, str | None]],
    base_commit: str | None,
    awaiting: Sequence[Awaiting],
    remote: str = DEFAULT_REMOTE,
) -> dict[str, Place]:
    """Commit -> where it is, for (commit, its session's branch) pairs; its own branch first.
    A matrix task's own branch is never pushed: its commit is under review on the integration
    branch that merged it, or on no branch when it was left out."""
    if base_commit is None:
        return {}
    found: dict[str, Place] = {}
    for commit, own in commits:
        if not repo.has_commit(commit):
            found[commit] = Place(Kept.NOT_KEPT)
            continue
        if repo.is_merged(commit, base_commit):
            found[commit] = Place(Kept.MERGED)
            continue
        mine = sorted(awaiting, key=lambda a: not own or a.branch not in (own, f"{remote}/{own}"))
        carrier = next((a.branch for a in mine if repo.is_merged(commit, a.tip)), None)
        found[commit] = Place(Kept.NOT_KEPT if carrier is None else Kept.AWAITING, carrier)
    return found
