"""`gitops-agent check`: which tasks would run, and why the others would not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitops_agent.plan import Task
from gitops_agent.policy.preflight import preflight
from gitops_agent.project import Project


@dataclass(frozen=True, slots=True)
class Verdict:
    task: Task
    reasons: tuple[str, ...]

    @property
    def eligible(self) -> bool:
        return not self.reasons


def check(project: Project, agent_command: str | None = None) -> list[Verdict]:
    """A verdict for every task of the plan, in plan order."""
    has_agent = bool(agent_command or project.plan.settings.agent)
    return [
        Verdict(
            task, tuple(str(v) for v in preflight(task, project.constraints, has_agent=has_agent))
        )
        for task in project.plan.tasks
    ]


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
