"""Tasks a person said no to: the pull request that carried their result was closed unmerged.

A session marks each such task NEEDS_HUMAN with a commit that changes only its `Status:` line
and carries `Task-Status: <id> NEEDS_HUMAN` (never `Task-Id:`, which means "a result awaits
review"), so merging the session's pull request takes the task out of the queue on the base.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from gitops_agent.git import Repo
from gitops_agent.git.remote import DEFAULT_REMOTE, remote_branches, remote_url, token_from_env
from gitops_agent.github import GitHub, PullRequest, repository_from_url
from gitops_agent.plan import TaskStatus
from gitops_agent.results import MEMORY_BRANCH

STATUS_TRAILER = "Task-Status"


def status_trailer(task_id: str, status: TaskStatus = TaskStatus.NEEDS_HUMAN) -> str:
    """The value of the `Task-Status:` trailer of a commit that sets a task's status."""
    return f"{task_id} {status}"


def parse_status_trailer(value: str) -> tuple[str, str] | None:
    """(task id, status) of a `Task-Status:` trailer's value; None when it is not two words."""
    words = value.split()
    return (words[0], words[1]) if len(words) == 2 else None


def rejected_tasks(
    repo: Repo,
    task_ids: Iterable[str],
    *,
    remote: str = DEFAULT_REMOTE,
    env: Mapping[str, str] | None = None,
) -> dict[str, PullRequest]:
    """Task id -> the newest pull request from an autonomous branch that carried the task's
    result and was closed without merging, for the `task_ids` asked about.

    Asks GitHub only when the repository is on it (the remote's URL, else GITHUB_REPOSITORY) and
    a token is in the environment; otherwise it returns {} without a word, as a laptop without
    GitHub is a normal setup (`doctor` says what to configure). A refusal raises GitHubError.
    """
    env = os.environ if env is None else env
    wanted = set(task_ids)
    repository = repository_from_url(remote_url(repo, remote)) or env.get("GITHUB_REPOSITORY")
    if not wanted or not repository or token_from_env(env) is None:
        return {}
    github = GitHub.from_env(repository, env)
    found: dict[str, PullRequest] = {}
    for pull in github.rejected_pulls():  # most recently updated first
        for task_id in github.pull_task_ids(pull.number):
            if task_id in wanted:
                found.setdefault(task_id, pull)
        if wanted <= found.keys():
            break  # every task asked about is accounted for: no more requests
    return found


def marked_awaiting_review(
    repo: Repo, base_commit: str, remote: str = DEFAULT_REMOTE
) -> dict[str, str]:
    """Task id -> an unmerged autonomous branch (ours, else the remote's as last fetched) whose
    commit already sets the task's status to NEEDS_HUMAN: the next session need not again."""
    local = list(repo.autonomous_branches().items())
    fetched = [(f"{remote}/{name}", tip) for name, tip in remote_branches(repo, remote).items()]
    memory = (MEMORY_BRANCH, f"{remote}/{MEMORY_BRANCH}")
    found: dict[str, str] = {}
    for branch, tip in [*local, *fetched]:
        if branch in memory or repo.is_merged(tip, base_commit):
            continue
        for commit in repo.commits_between(tip, base_commit):
            parsed = parse_status_trailer(commit.trailers.get(STATUS_TRAILER, ""))
            if parsed is not None and parsed[1] == TaskStatus.NEEDS_HUMAN:
                found.setdefault(parsed[0], branch)
    return found


def left_behind(branch: str, pull: PullRequest) -> bool:
    """Whether `branch` (ours, or the remote's) is the head of the closed pull request: then
    what it holds was rejected rather than awaiting review."""
    return branch.removeprefix(f"{DEFAULT_REMOTE}/") == pull.head
