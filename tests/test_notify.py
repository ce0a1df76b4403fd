"""Notifications through apprise, delivered to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from gitops_agent.notify import notify, notify_urls, session_notification
from gitops_agent.results import Outcome, TaskResult
from testing.inbox import Inbox
from testing.sessions import make_session

NIGHT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def dead_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_session_notification_reaches_a_json_endpoint(inbox: Inbox) -> None:
    result = make_session("20261123-020000-aaaa", NIGHT, stopped="2 consecutive failures")
    note = session_notification(result)
    assert note is not None
    title, body = note

    problems = notify([f"json://127.0.0.1:{inbox.port}/hooks/night"], title, body)

    assert problems == []
    assert len(inbox.received) == 1
    path, payload = inbox.received[0]
    assert path == "/hooks/night"
    assert payload["title"] == (
        "gitops-agent: 1 committed, 1 rolled back, stopped early (20261123-020000-aaaa)"
    )
    message = payload["message"]
    assert "✅ task_3 Add User model with email and password fields" in message
    assert "↩️ task_5 Add password hashing function: The quality gate failed" in message
    assert "Stopped early: 2 consecutive failures" in message
    assert "Review: branch autonomous/20261123-020000-aaaa" in message
    assert "task_4" not in message and "task_8" not in message  # blocked/skipped: no news


def test_a_dead_endpoint_is_a_problem_sentence_not_an_exception() -> None:
    port = dead_port()
    problems = notify([f"json://127.0.0.1:{port}/x"], "title", "body")
    assert len(problems) == 1
    assert problems[0].startswith(f"Notification to json://127.0.0.1:{port}/x failed: ")
    assert problems[0].endswith(".")


def test_a_failing_url_does_not_stop_the_others_and_secrets_stay_out(inbox: Inbox) -> None:
    port = dead_port()
    problems = notify(
        [
            f"json://someone:hunter2secret@127.0.0.1:{port}/x",
            "nosuchservice://token-abc123",
            f"json://127.0.0.1:{inbox.port}/ok",
        ],
        "t",
        "b",
    )
    assert len(problems) == 2
    assert "hunter2secret" not in problems[0]
    assert problems[1].startswith("Notification URL nosuchservice://... is not one apprise")
    assert "token-abc123" not in problems[1]
    assert [path for path, _ in inbox.received] == ["/ok"]


def test_no_urls_no_work() -> None:
    assert notify([], "t", "b") == []


def test_only_state_changes_are_announced() -> None:
    quiet = make_session(
        "s-quiet",
        NIGHT,
        (
            TaskResult("task_4", "Big one", Outcome.BLOCKED, "Too many estimated lines."),
            TaskResult("task_6", "Later", Outcome.SKIPPED, "Already awaits review."),
        ),
    )
    assert session_notification(quiet) is None
    assert session_notification(make_session("s-empty", NIGHT, ())) is None

    stopped = make_session("s-stop", NIGHT, (), stopped="The usage limit was reached.")
    note = session_notification(stopped)
    assert note is not None
    assert "stopped early" in note[0]
    assert "Stopped early: The usage limit was reached." in note[1]

    base = make_session("s-base", NIGHT, (), gate_failed_on_base=True)
    note = session_notification(base)
    assert note is not None and "fails on main itself" in note[1]


def test_urls_come_from_the_plan_and_the_environment() -> None:
    env = {"GITOPS_AGENT_NOTIFY": "json://a.example/x, tgram://bot/chat\nmailto://me"}
    assert notify_urls(("ntfy://topic", "json://a.example/x"), env) == [
        "ntfy://topic",
        "json://a.example/x",
        "tgram://bot/chat",
        "mailto://me",
    ]
    assert notify_urls(None, {}) == []
