"""`gitops-agent status`: the dashboard, on a real repository with a real (or dead) run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gitops_agent.git import Repo
from gitops_agent.memory import record_session
from gitops_agent.results import SessionResult
from testing.fixtures import make_repo
from testing.project import seed_repo
from testing.sessions import awaiting_branch, make_session

WIDE = {"COLUMNS": "200"}


def recorded(tmp_path: Path) -> tuple[Path, SessionResult]:
    root = seed_repo(tmp_path)
    repo = Repo.open(root)
    commit = awaiting_branch(repo, "s-last", "task_3")
    last = make_session("s-last", datetime.now(UTC) - timedelta(hours=5), minutes=30)
    last = SessionResult.from_record(
        {
            **last.to_record(),
            "tasks": [
                {**last.tasks[0].to_record(), "commit": commit},
                *(t.to_record() for t in last.tasks[1:]),
            ],
        }
    )
    record_session(repo, last, timezone=None)
    return root, last


def write_run(root: Path, pid: int, **fields: object) -> Path:
    started = datetime.now(UTC) - timedelta(minutes=42)
    state = {
        "session": "s-running",
        "pid": pid,
        "started": started.isoformat(timespec="seconds"),
        "task": "task_5",
        "phase": "gate",
        "attempt": 2,
        "max_attempts": 3,
        "updated": (started + timedelta(minutes=40)).isoformat(timespec="seconds"),
        **fields,
    }
    path = root / ".git" / "gitops-agent" / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state), encoding="utf-8")
    return path


def table_rows(shown: str) -> list[list[str]]:
    """The header and body rows of the tables (and panels) in `shown`: each row's cells, read
    between the box characters and stripped, whatever padding rich gave the columns."""
    return [
        [cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
        for line in shown.splitlines()
        if line.startswith(("│", "┃"))
    ]


def dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def test_status_shows_the_last_session_review_branches_and_queue(tmp_path: Path, cli) -> None:
    root, _last = recorded(tmp_path)
    result = cli("status", cwd=root, env=WIDE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # a dashboard for people: stderr
    shown = result.stderr
    assert "No run in progress." in shown
    assert "s-last, finished" in shown and "(4 h 30 min ago)" in shown
    assert "1 committed, 1 rolled back, 1 blocked, 1 skipped" in shown
    assert "branch autonomous/s-last" in shown
    assert "stopped early" not in shown
    rows = table_rows(shown)
    assert ["autonomous/s-last", "task_3", "1"] in rows
    queue = rows[
        rows.index(
            ["Ready", "Pending", "Not ready", "Done", "Eligible", "Awaiting review", "Can run"]
        )
        + 1
    ]
    assert queue == ["2", "1", "2", "0", "2", "1", "1"]  # the same counts as every view
    assert "Next up: task_5" in shown


def test_status_json(tmp_path: Path, cli) -> None:
    root, last = recorded(tmp_path)
    result = cli("status", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["run"] is None
    assert data["last_session"] == last.to_record()
    assert [(a["branch"], a["tasks"]) for a in data["awaiting_review"]] == [
        ("autonomous/s-last", ["task_3"])
    ]
    assert data["queue"] == {
        "ready": 2,
        "pending": 1,
        "not_ready": 2,
        "done": 0,
        "eligible": 2,
        "awaiting_review": 1,
        "can_run": 1,
    }
    assert data["next_tasks"] == ["task_5"]
    assert data["heartbeat"]["overdue"] is False


def test_a_run_in_progress_shows_task_phase_attempt_and_elapsed(tmp_path: Path, cli) -> None:
    root, _last = recorded(tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_run(root, sleeper.pid)
        shown = cli("status", cwd=root, env=WIDE)
        data = json.loads(cli("status", "--json", cwd=root).stdout)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert shown.returncode == 0, shown.stderr
    assert "Run in progress" in shown.stderr
    assert f"session s-running (pid {sleeper.pid})" in shown.stderr
    assert "task task_5, phase gate, attempt 2/3" in shown.stderr
    assert "running for 42 min, last update 2 min ago" in shown.stderr
    assert data["run"]["stale"] is False
    assert data["run"]["task"] == "task_5" and data["run"]["attempt"] == 2
    assert 42 * 60 <= data["run"]["elapsed"] < 44 * 60


def test_a_run_whose_process_is_gone_is_called_stale(tmp_path: Path, cli) -> None:
    root, _last = recorded(tmp_path)
    pid = dead_pid()
    write_run(root, pid)
    shown = cli("status", cwd=root, env=WIDE)
    assert shown.returncode == 0, shown.stderr
    assert f"Stale: session s-running (pid {pid}) is no longer running" in shown.stderr
    assert "The next run clears what it left." in shown.stderr
    data = json.loads(cli("status", "--json", cwd=root).stdout)
    assert data["run"]["stale"] is True and data["run"]["session"] == "s-running"


def test_an_unreadable_run_file_is_said_so(tmp_path: Path, cli) -> None:
    root, _last = recorded(tmp_path)
    path = write_run(root, 1)
    path.write_text("{half a file", encoding="utf-8")
    shown = cli("status", cwd=root, env=WIDE)
    assert shown.returncode == 0, shown.stderr
    assert "cannot be read; the next run clears it" in shown.stderr


def test_status_in_a_repository_without_plan_or_sessions(tmp_path: Path, cli) -> None:
    root = make_repo(tmp_path / "repo")
    shown = cli("status", cwd=root, env=WIDE)
    assert shown.returncode == 0, shown.stderr
    assert "No session has run yet." in shown.stderr
    assert "The plan does not load: PROJECT_PLAN.md: no plan committed on main" in shown.stderr
    data = json.loads(cli("status", "--json", cwd=root).stdout)
    assert data["last_session"] is None and data["queue"] is None
    assert [p["kind"] for p in data["problems"]] == ["plan"]


def test_every_view_gives_the_same_counts_in_the_same_words(tmp_path: Path, cli) -> None:
    root, _last = recorded(tmp_path)  # task_3 eligible, its result awaiting review
    status = json.loads(cli("status", "--json", cwd=root).stdout)["queue"]
    report = json.loads(cli("report", "--json", cwd=root).stdout)["queue"]
    assert status == report
    assert (status["eligible"], status["awaiting_review"], status["can_run"]) == (2, 1, 1)
    # status and report assume the last session's agent; check and plan are told it.
    agent = _last.agent or "claude"
    checked = cli("check", "--agent-command", agent, cwd=root, env=WIDE).stderr
    assert (
        f"{status['eligible']} eligible ({status['awaiting_review']} awaiting review, "
        f"{status['can_run']} can run)."
    ) in checked
    assert f"{status['ready']} ready, {status['pending']} pending" in checked
    assert len(cli("plan", "--agent-command", agent, cwd=root).stdout.split()) == status["can_run"]
    page = tmp_path / "report.html"
    assert cli("report", "--html", str(page), cwd=root).returncode == 0
    html = page.read_text()
    for figure, label in (
        (status["awaiting_review"], "awaiting review"),
        (status["can_run"], "can run"),
    ):
        assert f'{figure}</div><div class="l">{label}</div>' in html
