"""`gitops-agent plan --matrix`: the eligible tasks as a GitHub Actions `strategy.matrix`.

One matrix job runs one task, so the list is what one session would run: eligible (the same
verdicts as `check`), not already awaiting review on an autonomous branch here or on the remote,
and at most the session's task limit, in plan order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_agent.commands.check import check
from gitops_agent.errors import UserError
from gitops_agent.git import Repo
from gitops_agent.git.remote import remote_task_ids
from gitops_agent.project import Project, find_root, load_project_at
from gitops_agent.results import MEMORY_BRANCH

DEFAULT_REMOTE = "origin"


@dataclass(frozen=True, slots=True)
class Base:
    """The branch a run starts from, and the plan and constraints committed on it."""

    repo: Repo
    branch: str
    commit: str
    project: Project


def load_base(
    repo_dir: Path | None, plan: Path | None = None, constraints: Path | None = None
) -> Base:
    """The base as `run` picks it: the plan's `base:` setting, else the branch HEAD names."""
    repo = Repo.open(find_root(repo_dir))
    branch = repo.head_branch()
    if branch is None:
        raise UserError(
            "HEAD is detached; check out the base branch, whose plan names the base",
            str(repo.root),
        )
    commit = repo.resolve_commit(branch)
    project = load_project_at(repo, commit, branch, plan, constraints)
    wanted = project.plan.settings.base
    if wanted is not None and wanted != branch:
        branch, commit = wanted, repo.resolve_commit(wanted)
        project = load_project_at(repo, commit, branch, plan, constraints)
    return Base(repo, branch, commit, project)


def awaiting_review(repo: Repo, base_commit: str, remote: str = DEFAULT_REMOTE) -> dict[str, str]:
    """Task id -> branch, for tasks committed on an unmerged autonomous branch, local or remote."""
    found: dict[str, str] = {}
    for branch, tip in repo.autonomous_branches().items():
        if branch == MEMORY_BRANCH or repo.is_merged(tip, base_commit):
            continue
        for commit in repo.commits_between(tip, base_commit):
            task_id = commit.trailers.get("Task-Id")
            if task_id:
                found.setdefault(task_id, branch)
    for task_id, branch in remote_task_ids(repo, remote, base=base_commit).items():
        found.setdefault(task_id, f"{remote}/{branch}")
    return found


def matrix(base: Base, agent_command: str | None = None) -> dict[str, Any]:
    """`{"include": [{"task": id}, ...]}` for `strategy.matrix`."""
    waiting = awaiting_review(base.repo, base.commit)
    limit = base.project.constraints.max_tasks_per_session
    chosen = [
        v.task.id
        for v in check(base.project, agent_command)
        if v.eligible and v.task.id not in waiting
    ]
    return {"include": [{"task": task_id} for task_id in chosen[:limit]]}
