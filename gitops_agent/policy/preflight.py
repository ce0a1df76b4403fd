"""Pre-flight rules: may this task run at all? Pure functions of the task and the constraints."""

from __future__ import annotations

import re
from functools import lru_cache

from gitops_agent.constraints import Constraints
from gitops_agent.plan import QUEUE_TITLES, Queue, Task
from gitops_agent.policy import Violation

READY = QUEUE_TITLES[Queue.READY]
_WRITES_TESTS = re.compile(r"\b(?:unit |integration )?tests?\b", re.IGNORECASE)


def preflight(task: Task, constraints: Constraints, *, has_agent: bool) -> list[Violation]:
    """Every reason `task` may not run now; empty when it is eligible.

    A task under Not Ready (or under no queue) gets only that reason: it is a person's task.
    """
    if task.queue is not Queue.READY and task.queue is not Queue.PENDING:
        return _queue(task)
    found = [
        *_queue(task),
        *_status(task),
        *_alignment(task, constraints),
        *_estimated_lines(task, constraints),
        *_tests(task, constraints),
        *_forbidden_words(task, constraints),
    ]
    if task.run is None and not has_agent:
        found.append(
            Violation(
                "runner",
                "It has no `Run:` command and no agent is configured (set `agent:` in the "
                "plan's front matter or pass --agent-command).",
            )
        )
    return found


def _queue(task: Task) -> list[Violation]:
    if task.queue is Queue.READY:
        return []
    if task.queue is Queue.PENDING:
        message = f"It waits in Pending Approval; a person approves it by moving it under {READY}."
    elif task.queue is Queue.NOT_READY:
        why = f": {task.reason}" if task.reason else ""
        message = f"It is under Not Ready{why}."
    else:
        message = f"It is not under a queue heading; only tasks under {READY} run."
    return [Violation("queue", message)]


def _status(task: Task) -> list[Violation]:
    status = task.status
    if status is None:
        return []
    if task.queue is Queue.READY:
        if status == "DONE":
            return [Violation("status", "Its Status is DONE: it is already done.")]
        if status != "READY":
            return [
                Violation(
                    "status",
                    f"Its Status is {status} but it sits under {READY}; "
                    "set `Status: READY` or move it.",
                )
            ]
    elif status == "READY" and task.queue is not None:
        return [
            Violation(
                "status",
                f"Its Status is READY but it sits under {task.heading}; "
                f"move it under {READY} to approve it.",
            )
        ]
    return []


def _alignment(task: Task, constraints: Constraints) -> list[Violation]:
    minimum = constraints.min_alignment
    if task.alignment is None:
        return [Violation("alignment", f"It has no Alignment score (at least {minimum} needed).")]
    if task.alignment < minimum:
        return [
            Violation(
                "alignment",
                f"Its alignment score {task.alignment}/100 is below the minimum of {minimum}.",
            )
        ]
    return []


def _estimated_lines(task: Task, constraints: Constraints) -> list[Violation]:
    limit = constraints.max_estimated_lines
    if task.estimated_lines is None:
        return [Violation("estimated-lines", f"It has no Estimated lines (at most {limit}).")]
    if task.estimated_lines > limit:
        return [
            Violation(
                "estimated-lines",
                f"It is estimated at {task.estimated_lines} lines, more than the limit of {limit}.",
            )
        ]
    return []


def _tests(task: Task, constraints: Constraints) -> list[Violation]:
    if not constraints.require_tests or task.tests_defined:
        return []
    if _WRITES_TESTS.search(task.title):
        return []  # the task itself writes tests
    if task.tests_defined is None:
        return [Violation("tests", "It has no `Tests defined:` line, and it does not write tests.")]
    return [Violation("tests", "Its tests are not defined yet, and it does not write tests.")]


@lru_cache(maxsize=256)
def _word_pattern(phrase: str) -> re.Pattern[str]:
    """Whole words, any spacing between them, plural allowed: "delete file" finds "Delete files"."""
    words = [re.escape(w) for w in phrase.split()]
    return re.compile(r"\b" + r"\s+".join(words) + r"(?:e?s)?\b", re.IGNORECASE)


def _forbidden_words(task: Task, constraints: Constraints) -> list[Violation]:
    text = task.text
    lowered = text.lower()
    return [
        Violation("forbidden-words", f"It mentions a forbidden operation: “{phrase}”.")
        for phrase in constraints.forbidden_words
        # A substring test first: the regex runs only for the rare text that may match.
        if phrase.split()[0].lower() in lowered and _word_pattern(phrase).search(text)
    ]
