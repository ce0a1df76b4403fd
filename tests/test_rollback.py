"""`rollback`: revert commits on a new autonomous/rollback-... branch whose merge restores the
earlier tree; the base, HEAD, index and work tree stay as they were.

Real repositories in tmp_path (task commits made with the git CLI, carrying the trailers a run
gives them), a bare remote and the GitHub stand-in on loopback for `--push`; the rollback
branch is merged with the git CLI, as a person would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from gitops_agent.checkpoints import tag_merges
from gitops_agent.commands.rollback import rollback
from gitops_agent.errors import UserError
from gitops_agent.events import EventKind
from gitops_agent.git import Repo
from gitops_agent.memory import load_events
from gitops_agent.plan import parse_plan, set_status
from gitops_agent.render import render
from testing.fixtures import bare_remote, git, make_repo
from testing.github_api import serve
from testing.project import user_state
from testing.redteam import plan_text, task_block

PLAN = plan_text(task_block("t1", "One") + task_block("t2", "Two") + task_block("t3", "Three"))
Cli = Callable[..., CompletedProcess[str]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"PROJECT_PLAN.md": PLAN, "src/app.py": "x = 0\n"})


def task_commit(repo: Path, task: str, session: str) -> str:
    """A commit as `run` makes one: the task's file, its status DONE, and the trailers."""
    (repo / "src" / f"{task}.py").write_text(f"{task} = 1\n", encoding="utf-8")
    plan = repo / "PROJECT_PLAN.md"
    plan.write_text(set_status(plan.read_text(encoding="utf-8"), task, "DONE"), encoding="utf-8")
    git(repo, "add", "-A")
    trailers = f"Task-Id: {task}\nAgent: shell\nSession: {session}\nGitops-Agent-Version: 0.1.0"
    git(repo, "commit", "-q", "-m", f"Do {task}\n\n{trailers}")
    return head(repo)


def merge_session(repo: Path, session: str, *tasks: str) -> str:
    """autonomous/<session> with one commit per task, merged into main (--no-ff)."""
    branch = f"autonomous/{session}"
    git(repo, "checkout", "-q", "-b", branch, "main")
    for task in tasks:
        task_commit(repo, task, session)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", f"Merge {session}", branch)
    return head(repo)


def head(repo: Path, rev: str = "HEAD") -> str:
    return git(repo, "rev-parse", rev).strip()


def tree(repo: Path, rev: str) -> dict[str, str]:
    """Path -> blob id of every file at `rev`."""
    listed = git(repo, "ls-tree", "-r", rev).splitlines()
    return {line.split("\t")[1]: line.split()[2] for line in listed}


def statuses(repo: Path, rev: str) -> dict[str, str]:
    plan = parse_plan(git(repo, "show", f"{rev}:PROJECT_PLAN.md"), "PROJECT_PLAN.md")
    return {task.id: str(task.status) for task in plan.tasks}


def merged_rollback(repo: Path, branch: str) -> None:
    """Merge the rollback branch into main with the git CLI, as a person would."""
    git(repo, "merge", "-q", "--no-ff", "-m", f"Merge {branch}", branch)


def without_plan(files: dict[str, str]) -> dict[str, str]:
    return {path: blob for path, blob in files.items() if path != "PROJECT_PLAN.md"}


def test_rolling_back_a_task_reverts_only_its_commit_and_leaves_the_user_alone(
    project: Path,
) -> None:
    merge_session(project, "s1", "t1", "t2")
    repo = Repo.open(project)
    tag_merges(repo, "main", timezone=None)
    (project / "notes.txt").write_text("a person's work in progress\n", encoding="utf-8")
    git(project, "add", "notes.txt")  # staged, not committed
    before = user_state(project)
    base = head(project, "main")

    result = rollback(project, "t1")

    assert user_state(project) == before  # HEAD, index, files, every ref but our own
    assert head(project, "main") == base
    assert result.kind == "task" and result.branch.startswith("autonomous/rollback-t1-")
    assert result.tasks == ("t1",)
    assert len(result.reverted) == 1 and result.reverted[0].undo.mainline == 0
    log = git(project, "log", "--format=%B%x00", f"main..{result.branch}").split("\0")
    assert log[1].strip().startswith('Revert "Do t1"\n\nThis reverts commit ')
    assert "Rollback-Of: t1" in log[1] and "Gitops-Agent-Version: " in log[1]
    assert "Task-Id:" not in "".join(log)  # nothing on it looks like a result awaiting review
    git(project, "reset", "-q", "notes.txt")
    (project / "notes.txt").unlink()

    merged_rollback(project, result.branch)

    files = tree(project, "main")
    assert "src/t1.py" not in files and "src/t2.py" in files
    assert statuses(project, "main") == {"t1": "NEEDS_HUMAN", "t2": "DONE", "t3": "READY"}
    [event] = [e for e in load_events(repo) if e.kind is EventKind.ROLLBACK]
    assert event.branch == result.branch and event.tasks == ("t1",)
    assert event.data["target"] == "t1" and event.data["pull_request"] is None
    assert event.data["reverted"] == [result.reverted[0].undo.commit]


def test_rolling_back_a_merged_session_reverts_its_merge_and_restores_the_tree(
    project: Path,
) -> None:
    before_merge = head(project)
    merge = merge_session(project, "s1", "t1", "t2")
    merge_session(project, "s2", "t3")

    result = rollback(project, "s1")

    assert result.kind == "session"
    assert [(r.undo.commit, r.undo.mainline) for r in result.reverted] == [(merge, 1)]
    assert result.tasks == ("t1", "t2")
    merged_rollback(project, result.branch)
    files = tree(project, "main")
    assert "src/t1.py" not in files and "src/t2.py" not in files and "src/t3.py" in files
    earlier = {**tree(project, before_merge), "src/t3.py": files["src/t3.py"]}
    assert without_plan(files) == without_plan(earlier)
    assert statuses(project, "main") == {"t1": "NEEDS_HUMAN", "t2": "NEEDS_HUMAN", "t3": "DONE"}


def test_a_fast_forwarded_session_is_reverted_commit_by_commit(project: Path) -> None:
    git(project, "checkout", "-q", "-b", "autonomous/s1")
    first, second = task_commit(project, "t1", "s1"), task_commit(project, "t2", "s1")
    git(project, "checkout", "-q", "main")
    git(project, "merge", "-q", "--ff-only", "autonomous/s1")

    result = rollback(project, "s1")

    assert [r.undo.commit for r in result.reverted] == [second, first]  # newest first
    merged_rollback(project, result.branch)
    assert "src/t1.py" not in tree(project, "main") and "src/t2.py" not in tree(project, "main")


def test_rolling_back_a_checkpoint_restores_its_tree_through_the_cli(
    project: Path, cli: Cli
) -> None:
    merge_session(project, "s1", "t1")
    tag_merges(Repo.open(project), "main", timezone=None)
    [checkpoint] = git(project, "tag", "--list", "checkpoint/*").split()
    at_checkpoint = tree(project, checkpoint)
    merge_session(project, "s2", "t2", "t3")
    (project / "src" / "app.py").write_text("x = 1  # changed by a person\n", encoding="utf-8")
    git(project, "commit", "-q", "-am", "A person's change")
    later = head(project)

    ran = cli("rollback", checkpoint.removeprefix("checkpoint/"), "--json", cwd=project)

    assert ran.returncode == 0, ran.stderr
    data = json.loads(ran.stdout)
    assert set(data) == {"target", "kind", "branch", "reverted", "tasks", "pull_request"}
    assert (data["target"], data["kind"], data["pull_request"]) == (checkpoint, "checkpoint", None)
    assert data["reverted"][0] == later and len(data["reverted"]) == 2  # the merge and after
    assert set(data["tasks"]) == {"t2", "t3"}
    assert f"Rollback of checkpoint {checkpoint}: 2 commits reverted" in ran.stderr
    assert head(project, "main") == later
    merged_rollback(project, data["branch"])
    files = tree(project, "main")
    assert without_plan(files) == without_plan(at_checkpoint)
    assert statuses(project, "main") == {"t1": "DONE", "t2": "NEEDS_HUMAN", "t3": "NEEDS_HUMAN"}


def test_an_unknown_target_is_exit_status_2_naming_it(project: Path, cli: Cli) -> None:
    merge_session(project, "s1", "t1")

    ran = cli("rollback", "no-such-thing", cwd=project)

    assert ran.returncode == 2
    assert "'no-such-thing'" in ran.stderr and "Traceback" not in ran.stderr
    assert git(project, "branch", "--list", "autonomous/rollback-*") == ""


def test_a_revert_that_conflicts_names_the_paths_and_writes_no_branch(project: Path) -> None:
    merge_session(project, "s1", "t1")
    (project / "src" / "t1.py").write_text("t1 = 2  # changed since\n", encoding="utf-8")
    git(project, "commit", "-q", "-am", "A person's change to t1")

    with pytest.raises(UserError, match=r"conflicts .* in: src/t1\.py"):
        rollback(project, "t1")

    assert git(project, "branch", "--list", "autonomous/rollback-*") == ""


def test_a_checkpoint_at_the_tip_has_nothing_to_revert(project: Path) -> None:
    merge_session(project, "s1", "t1")
    tag_merges(Repo.open(project), "main", timezone=None)
    [checkpoint] = git(project, "tag", "--list", "checkpoint/*").split()

    with pytest.raises(UserError, match="nothing to revert"):
        rollback(project, checkpoint)


def test_with_push_the_branch_goes_to_origin_and_a_pull_request_is_opened(
    tmp_path: Path, project: Path, cli: Cli
) -> None:
    merge_session(project, "s1", "t1")
    remote = bare_remote(tmp_path, project)
    main_on_remote = head(remote, "main")

    with serve() as github:
        ran = cli("rollback", "t1", "--push", "--json", cwd=project, env=github.env())
        assert ran.returncode == 0, ran.stderr
        data: dict[str, Any] = json.loads(ran.stdout)
        [pull] = github.pulls

    assert pull["head"]["ref"] == data["branch"] and pull["base"]["ref"] == "main"
    assert pull["title"] == "gitops-agent: roll back t1"
    assert "NEEDS_HUMAN" in pull["body"] and data["branch"] in pull["body"]
    assert data["pull_request"] == pull["html_url"]
    assert head(remote, data["branch"]) == head(project, data["branch"])
    assert head(remote, "main") == main_on_remote  # never the base
    # The event (with its pull request) reached the remote's memory too.
    events = git(remote, "ls-tree", "-r", "--name-only", "autonomous/memory", "state/events")
    shown = [git(remote, "show", f"autonomous/memory:{path}") for path in events.split()]
    assert any(pull["html_url"] in text and '"rollback"' in text for text in shown)


def test_the_pull_request_text_shows_commit_titles_as_written_forming_nothing() -> None:
    body = render(
        "rollback-pr.md.j2",
        target="t1",
        kind="task",
        branch="autonomous/rollback-t1-20261130-100000",
        base="main",
        base_commit="0" * 40,
        reverted=[
            {"commit": "1" * 40, "title": "Do @octocat [x](http://e.test) <!--", "merge": False}
        ],
        tasks=["t1"],
        plan="PROJECT_PLAN.md",
    )
    assert "- `1111111` Do `@octocat` \\[x\\](http://e.test) \\<!--" in body
    assert "Merging this sets the status of t1 in `PROJECT_PLAN.md` to `NEEDS_HUMAN`" in body
