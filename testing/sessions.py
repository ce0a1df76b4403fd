"""Session records as `run` makes them, and the branches it leaves for review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gitops_agent.git import Repo
from gitops_agent.results import Outcome, SessionResult, TaskResult


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


def make_session(
    session: str,
    started: datetime,
    tasks: tuple[TaskResult, ...] | None = None,
    *,
    minutes: float = 50,
    branch: str | None = "default",
    **extra: object,
) -> SessionResult:
    """A session record as `run` makes one: by default one task of each outcome."""
    if tasks is None:
        tasks = (
            TaskResult(
                "task_3",
                "Add User model with email and password fields",
                Outcome.COMMITTED,
                "Every rule and the quality gate passed on the first attempt.",
                commit="4f59eeacbc2e516f917717d803baaaca2ecade45",
                attempts=1,
                duration=420,
                changed_files=("src/models/user.py", "tests/test_user.py"),
            ),
            TaskResult(
                "task_5",
                "Add password hashing function",
                Outcome.ROLLED_BACK,
                "The quality gate failed after 3 attempts.",
                attempts=3,
                duration=780,
                violations=("It changed `pyproject.toml`, a protected file.",),
                gate_output="tests/test_hash.py::test_salt FAILED\nE   assert b'x' != b'x'\n",
            ),
            TaskResult(
                "task_4",
                "Add password reset flow",
                Outcome.BLOCKED,
                "Estimated lines 45 is over the limit of 30.",
            ),
            TaskResult(
                "task_8",
                "Document the API",
                Outcome.SKIPPED,
                "The session limit of 5 tasks was reached.",
            ),
        )
    committed = any(t.outcome is Outcome.COMMITTED for t in tasks)
    fields: dict[str, object] = {
        "session": session,
        "branch": (f"autonomous/{session}" if committed else None)
        if branch == "default"
        else branch,
        "base": "main",
        "base_commit": "05e1dc93dbf7cdadb6b1928685252c0f9f230053",
        "started": iso(started),
        "finished": iso(started + timedelta(minutes=minutes)),
        "agent": "claude",
        "tasks": tasks,
        "pr_body": f".git/gitops-agent/sessions/{session}/pr-body.md" if committed else None,
    }
    fields.update(extra)
    return SessionResult(**fields)  # type: ignore[arg-type]


def awaiting_branch(repo: Repo, session: str, task_id: str) -> str:
    """A session branch with one task commit, as `run` leaves it for review."""
    branch = f"autonomous/{session}"
    repo.create_branch(branch, "main")
    return repo.commit_files(
        branch, {"src/user.py": b"class User: ...\n"}, "Add User", trailers={"Task-Id": task_id}
    )
