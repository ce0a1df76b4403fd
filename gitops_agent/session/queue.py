"""Which tasks a session runs, and what it records for the others: pure, no I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gitops_agent.github import PullRequest
from gitops_agent.plan import Queue, Task, TaskStatus
from gitops_agent.policy.eligibility import Verdict
from gitops_agent.rejected import left_behind
from gitops_agent.results import Outcome, SessionResult
from gitops_agent.review import Awaiting


class Decision(enum.Enum):
    RUN = "run"
    BLOCKED = "blocked"  # a pre-flight rule refuses it
    NEEDS_HUMAN = "needs_human"  # its pull request was closed without merging, or it failed
    # `max_failed_sessions` sessions in a row
    AWAITING = "awaiting"  # its result already awaits review


@dataclass(frozen=True, slots=True)
class Choice:
    task: Task
    decision: Decision
    reason: str = ""
    pull: PullRequest | None = None
    failed: int = 0  # NEEDS_HUMAN for failing: the sessions in a row that rolled it back


def considered(verdicts: Sequence[Verdict], task_ids: Sequence[str]) -> list[Verdict]:
    """Tasks named with --task whatever their queue; otherwise the Ready ones not yet done."""
    wanted = set(task_ids)
    return [
        v
        for v in verdicts
        if (
            v.task.id in wanted
            if wanted
            else v.task.queue is Queue.READY and v.task.status is not TaskStatus.DONE
        )
    ]


def failed_sessions(sessions: Sequence[SessionResult], task_id: str) -> int:
    """The sessions in a row (the newest first) that rolled the task back: since it was last
    committed or set to NEEDS_HUMAN (a person who sets it READY again starts it afresh)."""
    count = 0
    for session in sessions:
        result = next((t for t in session.tasks if t.id == task_id), None)
        if result is None:
            continue
        if result.needs_human or result.outcome is Outcome.COMMITTED:
            break
        if result.outcome is Outcome.ROLLED_BACK:
            count += 1
    return count


def choose(
    verdicts: Sequence[Verdict],
    awaiting: Mapping[str, Awaiting],
    rejected: Mapping[str, PullRequest],
    failing: Mapping[str, int] | None = None,
) -> list[Choice]:
    """One decision per considered task, in plan order. `failing`: the tasks that failed
    `max_failed_sessions` sessions in a row, with how many."""
    failing = failing or {}
    choices: list[Choice] = []
    for verdict in verdicts:
        task = verdict.task
        waiting = awaiting.get(task.id)
        pull = rejected.get(task.id)
        if not verdict.eligible:
            choices.append(Choice(task, Decision.BLOCKED, " ".join(verdict.reasons)))
        elif pull is not None and (waiting is None or left_behind(waiting.branch, pull)):
            choices.append(Choice(task, Decision.NEEDS_HUMAN, pull=pull))
        elif waiting is None and task.id in failing:
            choices.append(Choice(task, Decision.NEEDS_HUMAN, failed=failing[task.id]))
        elif waiting is not None:
            choices.append(
                Choice(
                    task,
                    Decision.AWAITING,
                    f"Its result already awaits review on {waiting.branch} ({waiting.tip[:12]}).",
                )
            )
        else:
            choices.append(Choice(task, Decision.RUN))
    return choices
