"""`gitops-agent plan --matrix`: the eligible tasks as a GitHub Actions `strategy.matrix`.

One matrix job runs one task, so the list is what one session would run: eligible (the same
verdicts as `check`), not already awaiting review on an autonomous branch here or on the remote,
and at most the session's task limit, in plan order.
"""

from __future__ import annotations

from typing import Any

from gitops_agent.gate import resolve_gate
from gitops_agent.policy.eligibility import verdicts as check
from gitops_agent.policy.preflight import ProgramLookup
from gitops_agent.project import Base
from gitops_agent.review import tasks_awaiting_review


def matrix(base: Base, agent_command: str | None = None) -> dict[str, Any]:
    """`{"include": [{"task": id}, ...]}` for `strategy.matrix`."""
    waiting = tasks_awaiting_review(base.repo, base.commit)
    limit = base.project.constraints.max_tasks_per_session
    chosen = [
        v.task.id
        # The plan job installs no codemod tool; each task's own job checks its program.
        for v in check(
            base.project,
            agent_command,
            programs=ProgramLookup(path=""),
            has_gate=resolve_gate(base.repo, base.commit, base.project.plan.settings) is not None,
        )
        if v.eligible and v.task.id not in waiting
    ]
    return {"include": [{"task": task_id} for task_id in chosen[:limit]]}
