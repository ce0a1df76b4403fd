"""`gitops-agent check`: which tasks would run, and why the others would not."""

from __future__ import annotations

from typing import Any

from gitops_agent.errors import UserError
from gitops_agent.gate import GATE_SCRIPT
from gitops_agent.git import Repo
from gitops_agent.git.repo import find_repo_root
from gitops_agent.plan import Queue
from gitops_agent.policy.eligibility import Verdict, verdicts
from gitops_agent.project import Project
from gitops_agent.review import tasks_awaiting_review
from gitops_agent.runner import Runner

__all__ = ["Verdict", "awaiting_review", "check", "to_json"]


def check(project: Project, agent_command: str | None = None) -> list[Verdict]:
    """A verdict for every task; raises UserError for what would stop `run` before any task
    (the confinement the constraints require, where this machine offers none; a base branch
    the plan names that is not there). Reads the working tree, as `check` does throughout."""
    Runner.create(project.constraints)
    settings = project.plan.settings
    if (
        settings.base is not None
        and find_repo_root(project.root) is not None
        and Repo.open(project.root).branch_tip(settings.base) is None
    ):
        raise UserError(
            f"the plan names base `{settings.base}`, which is not a branch here",
            project.plan.path,
            settings.line_of("base"),
        )
    has_gate = bool(settings.gate) or (project.root / GATE_SCRIPT).is_file()
    return verdicts(project, agent_command, has_gate=has_gate)


def to_json(verdicts: list[Verdict]) -> dict[str, Any]:
    """The contract's `check --json` object."""
    return {
        "tasks": [
            {
                "id": v.task.id,
                "queue": v.task.queue.value if v.task.queue is not None else Queue.NOT_READY.value,
                "eligible": v.eligible,
                "reasons": list(v.reasons),
            }
            for v in verdicts
        ]
    }


def awaiting_review(project: Project) -> set[str]:
    """The tasks whose result already awaits review, on the branch the plan names as the base
    (else the one checked out); none in a repository with no commit yet."""
    if find_repo_root(project.root) is None:
        return set()
    repo = Repo.open(project.root)
    branch = project.plan.settings.base or repo.head_branch()
    tip = repo.branch_tip(branch) if branch else repo.head_commit()
    return set() if tip is None else set(tasks_awaiting_review(repo, tip))
