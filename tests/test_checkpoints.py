"""Checkpoints: every state where the tool's work entered the base is tagged once and recorded.

Real repositories in tmp_path; task commits are made with the git CLI, carrying the trailers a
run gives them, and come into main as people bring them: merge, fast-forward, squash.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_agent.checkpoints import tag_merges
from gitops_agent.events import EventKind
from gitops_agent.git import Repo
from gitops_agent.memory import load_events
from gitops_agent.plan import set_status
from testing.fixtures import bare_remote, git, make_repo
from testing.redteam import plan_text, task_block

PLAN = plan_text(task_block("t1", "One") + task_block("t2", "Two") + task_block("t3", "Three"))
DAY = "2026-11-30"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project on main; every commit made here is dated on DAY (the tags are named by it)."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"{DAY}T12:00:00Z")
    return make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": PLAN, "src/app.py": "x = 0\n"})


def task_commit(repo: Path, task: str, session: str | None, *, extra: str = "") -> str:
    """A commit as `run` makes one: the task's file, its status DONE, and the trailers."""
    (repo / "src" / f"{task}.py").write_text(f"{task} = 1\n", encoding="utf-8")
    plan = repo / "PROJECT_PLAN.md"
    plan.write_text(set_status(plan.read_text(encoding="utf-8"), task, "DONE"), encoding="utf-8")
    git(repo, "add", "-A")
    trailers = f"Task-Id: {task}\nAgent: shell\n"
    trailers += f"Session: {session}\n" if session else ""
    git(repo, "commit", "-q", "-m", f"Do {task}\n\n{extra}{trailers}Gitops-Agent-Version: 0.1.0")
    return git(repo, "rev-parse", "HEAD").strip()


def session_branch(repo: Path, session: str, *tasks: str) -> str:
    """autonomous/<session> from main with one commit per task; main stays checked out."""
    branch = f"autonomous/{session}"
    git(repo, "checkout", "-q", "-b", branch, "main")
    for task in tasks:
        task_commit(repo, task, session)
    git(repo, "checkout", "-q", "main")
    return branch


def person_commit(repo: Path, name: str) -> str:
    (repo / name).write_text("by a person\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"Add {name}")
    return git(repo, "rev-parse", "HEAD").strip()


def tags(repo: Path) -> dict[str, str]:
    listed = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/tags")
    return dict(line.split() for line in listed.splitlines())


def test_a_merged_session_is_tagged_once_and_recorded_as_a_checkpoint(project: Path) -> None:
    branch = session_branch(project, "s1", "t1", "t2")
    git(project, "merge", "-q", "--no-ff", "-m", "Merge s1", branch)
    merge = git(project, "rev-parse", "HEAD").strip()
    repo = Repo.open(project)

    [event] = tag_merges(repo, "main", timezone=None)

    assert tags(project) == {f"checkpoint/{DAY}-1": merge}
    assert event.kind is EventKind.CHECKPOINT and event.commit == merge
    assert event.tasks == ("t1", "t2")
    assert event.data == {"checkpoint": f"checkpoint/{DAY}-1", "base": "main", "sessions": ["s1"]}
    assert event.time == f"{DAY}T12:00:00+00:00"  # when it entered the base
    assert [e.id for e in load_events(repo)] == [event.id]
    # Idempotent: nothing new is tagged or recorded.
    assert tag_merges(repo, "main", timezone=None) == []
    assert tags(project) == {f"checkpoint/{DAY}-1": merge}
    assert len(load_events(repo)) == 1


def test_each_merge_gets_the_next_number_of_its_day_and_other_merges_none(project: Path) -> None:
    git(project, "checkout", "-q", "-b", "feature")
    person_commit(project, "notes.md")
    git(project, "checkout", "-q", "main")
    git(project, "merge", "-q", "--no-ff", "-m", "Merge a person's feature", "feature")
    first = session_branch(project, "s1", "t1")
    git(project, "merge", "-q", "--no-ff", "-m", "Merge s1", first)
    one = git(project, "rev-parse", "HEAD").strip()
    person_commit(project, "more.md")
    second = session_branch(project, "s2", "t2")
    git(project, "merge", "-q", "--no-ff", "-m", "Merge s2", second)
    two = git(project, "rev-parse", "HEAD").strip()

    events = tag_merges(Repo.open(project), "main", timezone=None)

    assert tags(project) == {f"checkpoint/{DAY}-1": one, f"checkpoint/{DAY}-2": two}
    assert [(e.data["checkpoint"], e.tasks) for e in events] == [
        (f"checkpoint/{DAY}-1", ("t1",)),
        (f"checkpoint/{DAY}-2", ("t2",)),
    ]


def test_a_fast_forwarded_session_is_one_checkpoint_at_its_newest_commit(project: Path) -> None:
    git(project, "merge", "-q", "--ff-only", session_branch(project, "s1", "t1", "t2"))
    newest_of_s1 = git(project, "rev-parse", "HEAD").strip()
    git(project, "merge", "-q", "--ff-only", session_branch(project, "s2", "t3"))
    s2 = git(project, "rev-parse", "HEAD").strip()

    events = tag_merges(Repo.open(project), "main", timezone=None)

    assert tags(project) == {f"checkpoint/{DAY}-1": newest_of_s1, f"checkpoint/{DAY}-2": s2}
    assert [(e.tasks, e.data["sessions"]) for e in events] == [
        (("t1", "t2"), ["s1"]),
        (("t3",), ["s2"]),
    ]


def test_a_squash_that_kept_the_trailers_is_a_checkpoint_with_all_its_tasks(
    project: Path,
) -> None:
    squash = task_commit(project, "t2", None, extra="* Do t1\n\nTask-Id: t1\n\n* Do t2\n\n")

    [event] = tag_merges(Repo.open(project), "main", timezone=None)

    assert tags(project) == {f"checkpoint/{DAY}-1": squash}
    assert set(event.tasks) == {"t1", "t2"}


def test_a_tag_of_that_name_is_never_moved_and_the_day_is_the_plans(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    initial = git(project, "rev-parse", "HEAD").strip()
    git(project, "tag", "checkpoint/2026-12-01-1", initial)  # another machine's, or a person's
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-11-30T23:30:00Z")  # 00:30 in Warsaw
    git(project, "merge", "-q", "--no-ff", "-m", "Merge s1", session_branch(project, "s1", "t1"))
    merge = git(project, "rev-parse", "HEAD").strip()

    tag_merges(Repo.open(project), "main", timezone="Europe/Warsaw")

    assert tags(project) == {
        "checkpoint/2026-12-01-1": initial,
        "checkpoint/2026-12-01-2": merge,
    }


def test_history_older_than_the_newest_checkpoint_is_not_walked_again(project: Path) -> None:
    git(project, "merge", "-q", "--no-ff", "-m", "Merge s1", session_branch(project, "s1", "t1"))
    tag_merges(Repo.open(project), "main", timezone=None)
    git(project, "tag", "-d", f"checkpoint/{DAY}-1")
    later = person_commit(project, "later.md")
    git(project, "tag", f"checkpoint/{DAY}-7", later)  # the newest checkpoint is past the merge

    assert tag_merges(Repo.open(project), "main", timezone=None) == []
    assert tags(project) == {f"checkpoint/{DAY}-7": later}


def test_a_squash_by_merge_lists_its_tasks_in_one_trailer(project: Path) -> None:
    (project / "src" / "both.py").write_text("both = 1\n", encoding="utf-8")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "Squash s1\n\nTask-Id: t1, t2\nGitops-Agent-Version: 0.1.0")

    [event] = tag_merges(Repo.open(project), "main", timezone=None)

    assert event.tasks == ("t1", "t2")


def test_a_base_that_moved_on_the_remote_is_tagged_from_its_tracking_branch(
    tmp_path: Path, project: Path
) -> None:
    bare_remote(tmp_path, project)
    git(project, "merge", "-q", "--no-ff", "-m", "Merge s1", session_branch(project, "s1", "t1"))
    merge = git(project, "rev-parse", "HEAD").strip()
    git(project, "push", "-q", "origin", "main")
    git(project, "reset", "-q", "--hard", "HEAD~1")  # here, main is behind: merged on GitHub
    git(project, "fetch", "-q", "origin")

    [event] = tag_merges(Repo.open(project), "origin/main", timezone=None)

    assert tags(project) == {f"checkpoint/{DAY}-1": merge}
    assert event.data["base"] == "origin/main"


def test_a_checkpoint_recorded_elsewhere_gets_its_recorded_name_and_no_second_event(
    project: Path,
) -> None:
    git(project, "merge", "-q", "--no-ff", "-m", "Merge s1", session_branch(project, "s1", "t1"))
    merge = git(project, "rev-parse", "HEAD").strip()
    repo = Repo.open(project)
    tag_merges(repo, "main", timezone=None)
    git(project, "tag", "-d", f"checkpoint/{DAY}-1")  # as on a machine whose fetch brings no tags

    assert tag_merges(repo, "main", timezone=None) == []
    assert tags(project)[f"checkpoint/{DAY}-1"] == merge
    assert len(load_events(repo)) == 1
