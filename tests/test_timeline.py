"""`timeline`: checkpoints, merges and rollbacks, oldest first, from the memory branch's events
and the checkpoint tags; it writes nothing.

Real repositories in tmp_path; the console script in a subprocess for what people see.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from gitops_agent.checkpoints import tag_merges
from gitops_agent.commands.rollback import rollback
from gitops_agent.commands.timeline import timeline
from gitops_agent.events import Event, EventKind
from gitops_agent.git import Repo
from gitops_agent.memory import record_event
from gitops_agent.plan import set_status
from testing.fixtures import git, make_repo
from testing.redteam import plan_text, task_block

PLAN = plan_text(task_block("t1", "One") + task_block("t2", "Two"))
Cli = Callable[..., CompletedProcess[str]]
KEYS = {"kind", "time", "title", "checkpoint", "commit", "branch", "tasks", "pull_request"}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-11-30T09:00:00Z")
    return make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": PLAN, "src/app.py": "x = 0\n"})


def merge_session(repo: Path, session: str, task: str, title: str = "") -> str:
    """autonomous/<session> with the task's commit, as `run` makes it, merged into main."""
    branch = f"autonomous/{session}"
    git(repo, "checkout", "-q", "-b", branch, "main")
    (repo / "src" / f"{task}.py").write_text(f"{task} = 1\n", encoding="utf-8")
    plan = repo / "PROJECT_PLAN.md"
    plan.write_text(set_status(plan.read_text(encoding="utf-8"), task, "DONE"), encoding="utf-8")
    git(repo, "add", "-A")
    trailers = f"Task-Id: {task}\nAgent: shell\nSession: {session}"
    git(repo, "commit", "-q", "-m", f"Do {task}\n\n{trailers}")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", title or f"Merge {session}", branch)
    return git(repo, "rev-parse", "HEAD").strip()


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def test_an_empty_timeline_is_said_and_is_an_empty_list(project: Path, cli: Cli) -> None:
    shown = cli("timeline", cwd=project, env={"COLUMNS": "300"})
    assert shown.returncode == 0, shown.stderr
    assert "No checkpoints, merges or rollbacks yet." in shown.stderr and shown.stdout == ""
    assert timeline(project).to_json() == {"events": []}


def test_checkpoints_merges_and_rollbacks_are_listed_oldest_first(
    project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    merge = merge_session(project, "s1", "t1")
    repo = Repo.open(project)
    merged = Event.create(
        EventKind.MERGED,
        datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
        "Merged autonomous/s1 into main",
        branch="autonomous/s1",
        commit=merge,
        tasks=["t1"],
        data={"pull_request": "https://github.com/octo-org/widgets/pull/3"},
    )
    record_event(repo, merged, timezone=None)
    tag_merges(repo, "main", timezone=None)
    monkeypatch.setenv("GITOPS_AGENT_NOW", "2026-11-30T10:00:00Z")
    rolled = rollback(project, "t1")
    before = refs(project)

    listed = cli("timeline", "--json", cwd=project)

    assert listed.returncode == 0, listed.stderr
    events = json.loads(listed.stdout)["events"]
    assert all(set(e) == KEYS for e in events)
    assert [(e["kind"], e["time"]) for e in events] == [
        ("merged", "2026-11-30T09:00:00+00:00"),
        ("checkpoint", "2026-11-30T09:00:00+00:00"),
        ("rollback", "2026-11-30T10:00:00+00:00"),
    ]
    assert events[0]["pull_request"] == "https://github.com/octo-org/widgets/pull/3"
    assert events[1]["checkpoint"] == "checkpoint/2026-11-30-1"
    assert (events[1]["commit"], events[1]["tasks"]) == (merge, ["t1"])
    assert events[2]["branch"] == rolled.branch and events[2]["tasks"] == ["t1"]
    assert events[2]["checkpoint"] is None and events[2]["pull_request"] is None
    assert refs(project) == before  # it wrote nothing

    shown = cli("timeline", cwd=project, env={"COLUMNS": "300"})
    assert shown.returncode == 0 and shown.stdout == ""
    assert "checkpoint/2026-11-30-1" in shown.stderr and rolled.branch in shown.stderr
    assert "Rollback of task t1" in shown.stderr


def test_a_checkpoint_tag_without_its_event_is_listed_from_the_tag(project: Path, cli: Cli) -> None:
    merge = merge_session(project, "s9", "t2", title="Merge [bold]s9[/bold] from elsewhere")
    git(project, "tag", "checkpoint/2026-11-30-4", merge)  # pushed by another machine
    before = refs(project)

    [entry] = timeline(project).entries

    assert entry.kind is EventKind.CHECKPOINT and entry.checkpoint == "checkpoint/2026-11-30-4"
    assert (entry.commit, entry.tasks, entry.time) == (merge, ("t2",), "2026-11-30T09:00:00+00:00")
    assert refs(project) == before
    # The commit's title is shown as written, not taken as markup.
    shown = cli("timeline", cwd=project, env={"COLUMNS": "300"})
    assert "Merge [bold]s9[/bold] from elsewhere" in shown.stderr
