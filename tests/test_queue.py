"""The session's pure queue rules: which sessions count against a task that keeps failing."""

from __future__ import annotations

from gitops_agent.results import Outcome, SessionResult, TaskResult
from gitops_agent.session.queue import failed_sessions


def night(n: int, outcome: Outcome | None, *, needs_human: bool = False) -> SessionResult:
    tasks = (
        () if outcome is None else (TaskResult("t1", "T", outcome, "why", needs_human=needs_human),)
    )
    return SessionResult(
        f"s{n}",
        None,
        "main",
        "0" * 40,
        f"2026-11-{n:02d}T02:00:00+00:00",
        f"2026-11-{n:02d}T02:10:00+00:00",
        None,
        tasks,
    )


def test_only_failures_since_the_last_success_or_mark_count() -> None:
    R, C, S, B = Outcome.ROLLED_BACK, Outcome.COMMITTED, Outcome.SKIPPED, Outcome.BLOCKED
    newest_first = [night(9, R), night(8, S), night(7, None), night(6, R), night(5, C), night(4, R)]
    assert failed_sessions(newest_first, "t1") == 2  # skipped and absent nights do not count
    assert failed_sessions([night(3, R), night(2, B), night(1, R)], "t1") == 2
    # Marked NEEDS_HUMAN, then set READY again by a person: it starts afresh.
    marked = [night(3, R), night(2, B, needs_human=True), night(1, R)]
    assert failed_sessions(marked, "t1") == 1
    assert failed_sessions(newest_first, "other") == 0
