"""`gitops-agent check`: which tasks would run, and why the others would not."""

from __future__ import annotations

from typing import Any

from gitops_agent.policy.eligibility import Verdict, verdicts
from gitops_agent.project import Project
from gitops_agent.runner import Runner

__all__ = ["Verdict", "check", "to_json"]


def check(project: Project, agent_command: str | None = None) -> list[Verdict]:
    """A verdict for every task; raises UserError for what would stop `run` before any task
    (the confinement the constraints require, where this machine offers none)."""
    Runner.create(project.constraints)
    return verdicts(project, agent_command)


def to_json(verdicts: list[Verdict]) -> dict[str, Any]:
    """The contract's `check --json` object."""
    return {
        "tasks": [
            {
                "id": v.task.id,
                "queue": v.task.queue.value if v.task.queue is not None else "not_ready",
                "eligible": v.eligible,
                "reasons": list(v.reasons),
            }
            for v in verdicts
        ]
    }
