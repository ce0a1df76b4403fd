"""Whether each task may run, and why not: what `check` prints and `run` obeys (one rule set)."""

from __future__ import annotations

from dataclasses import dataclass

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


def verdicts(project: Project, agent_command: str | None = None) -> list[Verdict]:
    """A verdict for every task of the plan, in plan order."""
    has_agent = bool(agent_command or project.plan.settings.agent)
    return [
        Verdict(
            task, tuple(str(v) for v in preflight(task, project.constraints, has_agent=has_agent))
        )
        for task in project.plan.tasks
    ]
